"""int8 weights (docs/paper-model.md §4, paper §3.6): per-output-channel symmetric int8 with bf16 scales for the
matmul weights; arithmetic stays in the compute dtype.

A weight's scale is the largest magnitude over its contracted (input) dimensions divided by 127, one
scale per output channel (and per layer of a stack). Norms, biases and learned positions are small
and stay as they are.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from zoo.logical_axes import EMBED, HEAD_DIM, HEADS, MLP
from zoo.transformer import Transformer
from zoo.weights import Int8Weight, Weight

INT8_MAX = 127

# The dimensions each matmul weight is contracted over, by its place in the model. Names alone
# cannot say it: EMBED is the input of W_q but the output of W_out. The tied embedding is the output
# head, so its output channels are vocabulary rows.
_CONTRACTED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("embedding",): (EMBED,),
    ("unembedding",): (EMBED,),
    ("blocks", "attention", "w_q"): (EMBED,),
    ("blocks", "attention", "w_kv"): (EMBED,),
    ("blocks", "attention", "w_o"): (HEADS, HEAD_DIM),
    ("blocks", "mlp", "w_in"): (EMBED,),
    ("blocks", "mlp", "w_out"): (MLP,),
}


def is_matmul_weight(path: tuple[str, ...]) -> bool:
    """Whether the weight at `path` (attribute names from the model down) enters a matmul: the
    weights that int8 quantizes; norms, biases and learned positions do not."""
    return tuple(path) in _CONTRACTED


def quantize_weight(weight: Weight, contracted: tuple[str, ...]) -> Int8Weight:
    axes = tuple(axis for axis, name in enumerate(weight.names) if name in contracted)
    value = weight.value.astype(jnp.float32)
    largest = jnp.max(jnp.abs(value), axis=axes, keepdims=True)
    scale = (largest / INT8_MAX).astype(jnp.bfloat16)
    # Rounding the scale to bf16 may shrink it, which would push the largest value past 127; the
    # next bf16 up keeps every value in range, so the error stays within half a step.
    scale = jnp.where(scale.astype(jnp.float32) * INT8_MAX < largest, jnp.nextafter(scale, jnp.bfloat16(jnp.inf)), scale)
    step = jnp.where(scale > 0, scale, jnp.bfloat16(1)).astype(jnp.float32)
    quantized = jnp.clip(jnp.round(value / step), -INT8_MAX, INT8_MAX).astype(jnp.int8)
    scale_names = tuple(None if axis in axes else name for axis, name in enumerate(weight.names))
    return Int8Weight(quantized, scale, weight.names, scale_names)


def quantize(model: Transformer) -> Transformer:
    """The model with every matmul weight in int8 (already-quantized weights are kept)."""
    for path, contracted in _CONTRACTED.items():
        select = lambda tree, path=path: _get(tree, path)  # noqa: E731
        weight = _get(model, path)
        if isinstance(weight, Weight):
            model = eqx.tree_at(select, model, quantize_weight(weight, contracted))
    return model


def _get(tree, path: tuple[str, ...]):
    for attribute in path:
        tree = getattr(tree, attribute)
    return tree


def reconstruction_error_bound(weight: Int8Weight) -> Float[Array, "..."]:
    """The largest |original − dequantized| an element may have, per output channel: half a
    quantization step, plus the bf16 rounding of the product when dequantizing in bf16."""
    scale = weight.scale.astype(jnp.float32)
    return scale / 2 + INT8_MAX * scale * jnp.float32(2.0**-8)


def quantized_weights(model: Transformer) -> dict[tuple[str, ...], Int8Weight]:
    """The int8 weights of a quantized model, by their place in it."""
    found = {path: _get(model, path) for path in _CONTRACTED}
    return {path: weight for path, weight in found.items() if isinstance(weight, Int8Weight)}



def abstract_model(config, weights: str = "bf16") -> Transformer:
    """The model's shapes and dtypes, allocating nothing: as built, or with int8 weights (`weights`
    "int8") quantized abstractly. What a compile is lowered with and a checkpoint is restored into."""
    from zoo.transformer import build_abstract

    model = build_abstract(config)
    return eqx.filter_eval_shape(quantize, model) if weights == "int8" else model
