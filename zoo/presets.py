"""Named model sizes: the paper's four models, its two PaLM 540B variants, and small sizes that run
anywhere. One registry; a preset is a ModelConfig, nothing more."""

import difflib

from zoo.config import ModelConfig
from zoo.errors import UnknownPresetError
from zoo.model_file import is_model_file, read_model_file

_PALM = dict(block="parallel", mlp="swiglu", positions="rope", use_bias=False, norm_bias=False, tie_embeddings=True)
# Megatron-Turing NLG's output head is treated as tied to its input embedding, as the paper's
# parameter count (12·L·E² + V·E) does.
_MEGATRON = dict(block="serial", mlp="gelu", positions="learned", max_positions=2048, use_bias=True, norm_bias=True, tie_embeddings=True)

_PRESETS: tuple[ModelConfig, ...] = (
    ModelConfig(
        "palm-8b", n_layers=32, d_model=4096, d_ff=16384, n_heads=16, n_kv_heads=1, d_head=256,
        vocab=256_000, nominal_params=8e9, description="PaLM 8B, multiquery", **_PALM,
    ),
    ModelConfig(
        "palm-62b", n_layers=64, d_model=8192, d_ff=32768, n_heads=32, n_kv_heads=1, d_head=256,
        vocab=256_000, nominal_params=62e9, description="PaLM 62B, multiquery", **_PALM,
    ),
    ModelConfig(
        "palm-540b", n_layers=118, d_model=18432, d_ff=73728, n_heads=48, n_kv_heads=1, d_head=256,
        vocab=256_000, nominal_params=540e9, description="PaLM 540B as trained: 48 query heads, multiquery", **_PALM,
    ),
    ModelConfig(
        "palm-540b-64h", n_layers=118, d_model=18432, d_ff=73728, n_heads=64, n_kv_heads=1, d_head=256,
        vocab=256_000, nominal_params=540e9,
        description="PaLM 540B with heads padded 48 -> 64 for inference on 64+ chips (+18B parameters)", **_PALM,
    ),
    ModelConfig(
        "palm-540b-multihead", n_layers=118, d_model=18432, d_ff=73728, n_heads=64, n_kv_heads=64, d_head=128,
        vocab=256_000, nominal_params=540e9,
        description="The paper's multihead ablation of PaLM 540B: 64 heads of 128 (same attention parameters)", **_PALM,
    ),
    ModelConfig(
        "mtnlg-530b", n_layers=105, d_model=20480, d_ff=81920, n_heads=128, n_kv_heads=128, d_head=160,
        vocab=51_200, nominal_params=530e9, description="Megatron-Turing NLG 530B, multihead", **_MEGATRON,
    ),
    ModelConfig(
        "palm-150m", n_layers=10, d_model=1024, d_ff=4096, n_heads=16, n_kv_heads=1, d_head=64, vocab=256,
        description="PaLM architecture at 150M parameters, byte vocabulary: CPU and single-GPU benchmarks", **_PALM,
    ),
    ModelConfig(
        "palm-4m", n_layers=4, d_model=256, d_ff=1024, n_heads=8, n_kv_heads=1, d_head=32, vocab=256,
        description="PaLM architecture at 3.8M parameters, byte vocabulary: the shipped trained model", **_PALM,
    ),
    ModelConfig(
        "palm-tiny", n_layers=2, d_model=128, d_ff=512, n_heads=8, n_kv_heads=1, d_head=16, vocab=256,
        description="PaLM architecture, a few hundred thousand parameters: tests", **_PALM,
    ),
    ModelConfig(
        "mtnlg-tiny", n_layers=2, d_model=128, d_ff=512, n_heads=8, n_kv_heads=8, d_head=16, vocab=256,
        description="Megatron architecture, a few hundred thousand parameters: tests", **{**_MEGATRON, "max_positions": 256},
    ),
)

PRESETS: dict[str, ModelConfig] = {config.name: config for config in _PRESETS}
PAPER_MODELS: tuple[str, ...] = ("palm-8b", "palm-62b", "palm-540b", "mtnlg-530b")


def get_preset(name: str) -> ModelConfig:
    """The preset called `name`, or the model a `.toml` file describes (`zoo.model_file`); an
    unknown name raises with the valid ones and the nearest."""
    if is_model_file(name):
        return read_model_file(name)
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownPresetError(unknown_name_message("model", name, PRESETS)) from None


def unknown_name_message(kind: str, name: str, valid) -> str:
    """One line naming the unknown `name`, the nearest valid one, and all valid ones."""
    valid = sorted(valid)
    nearest = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {nearest[0]!r}?)" if nearest else ""
    return f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid)}"
