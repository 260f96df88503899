"""What one phase of serving processes: the sizes the cost model (and the compiled step) are built for."""

import dataclasses
from typing import Literal

from zoo.errors import ZooError
from zoo.kv_cache import allocated_len

WeightsDType = Literal["bf16", "int8"]
WEIGHT_DTYPES = ("bf16", "int8")
PHASES = ("prefill", "decode")


@dataclasses.dataclass(frozen=True)
class Workload:
    """prefill: `batch` prompts of `input_len` tokens; decode: `gen_tokens` steps for `batch`
    sequences whose KV cache holds `context_len` tokens when decoding starts. Weights are stored
    as `weights` (matmuls stay bf16 either way), the cache as `kv_dtype`. Prefill takes
    `prefill_chunk` tokens per sequence at a time (chunked prefill; None, the whole prompt)."""

    batch: int
    input_len: int
    context_len: int
    gen_tokens: int
    weights: WeightsDType = "bf16"
    kv_dtype: str = "bfloat16"
    prefill_chunk: int | None = None

    def __post_init__(self) -> None:
        for field in ("batch", "input_len", "context_len", "gen_tokens", "prefill_chunk"):
            value = getattr(self, field)
            if field == "prefill_chunk" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ZooError(f"{field} must be a positive integer, got {value!r}")
        if self.weights not in WEIGHT_DTYPES:
            raise ZooError(f"weights must be one of {', '.join(WEIGHT_DTYPES)}, got {self.weights!r}")

    def cache_len(self, phase: str) -> int:
        """Tokens the KV cache holds in `phase`: the prompt in prefill; in decode, the context plus
        every generated token (what the generation needs), allocated in whole tiles
        (`zoo.kv_cache.allocated_len`). Estimate, compile and run all size the cache by this."""
        return allocated_len(self.input_len if phase == "prefill" else self.context_len + self.gen_tokens)

    @property
    def chunk_len(self) -> int:
        """Tokens per sequence that prefill's layers take at a time."""
        return self.input_len if self.prefill_chunk is None else min(self.prefill_chunk, self.input_len)

    @property
    def chunked(self) -> bool:
        """Whether prefill's layers take the prompt in more than one chunk."""
        return self.chunk_len < self.input_len

    @property
    def prefill_chunks(self) -> int:
        """How many times each layer runs in prefill: the whole chunks and the remainder, if any."""
        return -(-self.input_len // self.chunk_len)

    def pass_tokens(self, phase: str) -> int:
        """Tokens in one pass (B·L): the whole prompt batch in prefill, one per sequence in decode."""
        return self.batch * (self.input_len if phase == "prefill" else 1)

    def tokens(self, phase: str) -> int:
        """Tokens the phase processes (prefill) or generates (decode)."""
        return self.batch * (self.input_len if phase == "prefill" else self.gen_tokens)
