"""Changing a model's stored dtype (e.g. the fp32 weights of training to the bf16 a preset serves in)."""

import jax
import jax.numpy as jnp

from checkpoints.array_tree import named_arrays, with_arrays
from checkpoints.errors import CheckpointError
from zoo import Transformer, build_abstract
from zoo.weights import Int8Weight, is_weight

DTYPES = ("bfloat16", "float32")


def convert_dtype(model: Transformer, dtype: str) -> Transformer:
    """The same weights stored in `dtype`, with the config saying so."""
    if dtype not in DTYPES:
        raise CheckpointError(f"cannot convert to dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    if any(isinstance(weight, Int8Weight) for weight in jax.tree.leaves(model, is_leaf=is_weight)):
        raise CheckpointError("cannot change the dtype of int8 weights; convert the bf16 checkpoint, then quantize")
    converted = {name: array.astype(jnp.dtype(dtype)) for name, array in named_arrays(model).items()}
    return with_arrays(build_abstract(model.config.replace(dtype=dtype)), converted)
