"""The model zoo: PaLM and Megatron-Turing NLG as Equinox modules, with a KV cache, prefill and
decode steps, on-device generation and a byte tokenizer.

    from zoo import get_preset, Transformer, init_cache, prefill, decode_step
"""

import zoo.platforms  # noqa: F401  (first: before anything initialises a JAX backend)
from zoo.config import ModelConfig
from zoo.constraints import Constrain, no_constraint
from zoo.errors import ConfigError, PromptError, UnknownPresetError, ZooError
from zoo.generation import Generated, generate, generate_jit
from zoo.inference import decode_step, forward, prefill
from zoo.kv_cache import KVCache, abstract_cache, init_cache
from zoo.presets import PAPER_MODELS, PRESETS, get_preset
from zoo.quantization import quantize
from zoo.sampling import GREEDY, Sampling, sample
from zoo.transformer import Transformer, build_abstract
from zoo.weights import AbstractWeight, Int8Weight, Weight

__all__ = [
    "AbstractWeight",
    "Constrain",
    "ConfigError",
    "GREEDY",
    "Generated",
    "Int8Weight",
    "KVCache",
    "ModelConfig",
    "PAPER_MODELS",
    "PRESETS",
    "PromptError",
    "Sampling",
    "Transformer",
    "UnknownPresetError",
    "Weight",
    "ZooError",
    "abstract_cache",
    "build_abstract",
    "decode_step",
    "forward",
    "generate",
    "generate_jit",
    "get_preset",
    "init_cache",
    "no_constraint",
    "prefill",
    "quantize",
    "sample",
]
