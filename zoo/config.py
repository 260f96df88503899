"""The model configuration: one frozen dataclass covers both families (PaLM and Megatron-Turing NLG);
what makes them differ is a field, never a subclass."""

import dataclasses
from typing import Literal

from zoo.errors import ConfigError

Block = Literal["parallel", "serial"]
Mlp = Literal["swiglu", "gelu"]
Positions = Literal["rope", "learned"]
DType = Literal["float32", "bfloat16"]

_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "int8": 1}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A decoder-only Transformer.

    Shape letters: N layers, E d_model, F d_ff, H query heads, K KV heads (1 = multiquery,
    H = multihead), Q head dim, V vocab.
    """

    name: str
    n_layers: int  # N
    d_model: int  # E
    d_ff: int  # F
    n_heads: int  # H
    n_kv_heads: int  # K
    d_head: int  # Q
    vocab: int  # V
    block: Block = "parallel"  # PaLM: y = x + MLP(LN(x)) + Attn(LN(x)); Megatron: serial
    mlp: Mlp = "swiglu"  # SwiGLU has 3 matrices (gate, up, down), GeLU 2
    positions: Positions = "rope"
    max_positions: int = 2048  # table size of learned positions; RoPE ignores it
    use_bias: bool = False  # biases on every projection
    norm_bias: bool = False  # LayerNorm with a bias (Megatron) or scale only (PaLM)
    tie_embeddings: bool = True  # the output head reuses the input embedding
    dtype: DType = "bfloat16"  # weight and matmul dtype; accumulation, softmax, norms stay fp32
    norm_epsilon: float = 1e-5
    rope_base: float = 10_000.0
    # The round figure a paper quotes for the model (8B, 540B): the N of its MFU definition.
    nominal_params: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for field in ("n_layers", "d_model", "d_ff", "n_heads", "n_kv_heads", "d_head", "vocab", "max_positions"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{self.name}: {field} must be a positive integer, got {value!r}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"{self.name}: n_kv_heads={self.n_kv_heads} must divide n_heads={self.n_heads} "
                "(1 = multiquery, n_heads = multihead)"
            )
        if self.d_head % 2 and self.positions == "rope":
            raise ConfigError(f"{self.name}: RoPE needs an even d_head, got {self.d_head}")
        for field, allowed in (
            ("block", ("parallel", "serial")),
            ("mlp", ("swiglu", "gelu")),
            ("positions", ("rope", "learned")),
            ("dtype", ("float32", "bfloat16")),
        ):
            if getattr(self, field) not in allowed:
                raise ConfigError(f"{self.name}: {field} must be one of {', '.join(allowed)}, got {getattr(self, field)!r}")

    # Derived numbers --------------------------------------------------------------------------

    @property
    def is_multiquery(self) -> bool:
        return self.n_kv_heads == 1

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.mlp == "swiglu" else 2

    @property
    def params_per_layer(self) -> int:
        E, F, H, K, Q = self.d_model, self.d_ff, self.n_heads, self.n_kv_heads, self.d_head
        attention = 2 * E * H * Q + 2 * E * K * Q
        mlp = self.mlp_matrices * E * F
        norms = (1 if self.block == "parallel" else 2) * E * (2 if self.norm_bias else 1)
        biases = 0
        if self.use_bias:
            biases = H * Q + 2 * K * Q + E + (self.mlp_matrices - 1) * F + E
        return attention + mlp + norms + biases

    @property
    def embedding_params(self) -> int:
        tables = 1 if self.tie_embeddings else 2
        positions = self.max_positions * self.d_model if self.positions == "learned" else 0
        return tables * self.vocab * self.d_model + positions

    @property
    def param_count(self) -> int:
        final_norm = self.d_model * (2 if self.norm_bias else 1)
        return self.n_layers * self.params_per_layer + self.embedding_params + final_norm

    @property
    def forward_flops_per_token(self) -> int:
        """The paper's 2·N FLOPs of one token's forward pass, N counting every parameter (embeddings
        and norms too), attention over the context excluded."""
        return 2 * self.param_count

    def kv_bytes_per_token(self, dtype: str = "bfloat16") -> int:
        """KV-cache bytes one token holds, over all layers: 2 (K and V) · N · K · Q · bytes."""
        return 2 * self.n_layers * self.n_kv_heads * self.d_head * _DTYPE_BYTES[dtype]

    @property
    def mfu_params(self) -> float:
        """N of the paper's MFU definition: the nominal size where one is quoted, else the count."""
        return float(self.nominal_params if self.nominal_params is not None else self.param_count)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def dtype_bytes(dtype: str) -> int:
    return _DTYPE_BYTES[dtype]
