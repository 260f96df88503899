"""LayerNorm, computed in fp32 whatever the weight dtype."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from zoo.config import ModelConfig
from zoo.logical_axes import EMBED
from zoo.weights import AbstractWeight, init_weight


class LayerNorm(eqx.Module):
    scale: AbstractWeight  # [E]
    bias: AbstractWeight | None  # [E]; PaLM has none
    epsilon: float = eqx.field(static=True)

    def __init__(self, config: ModelConfig, *, key=None):
        del key  # norms start at scale 1, bias 0
        self.scale = init_weight(None, (config.d_model,), (EMBED,), config.dtype, fan_in=None)
        self.bias = init_weight(None, (config.d_model,), (EMBED,), config.dtype, fan_in=None, zero=True) if config.norm_bias else None
        self.epsilon = config.norm_epsilon

    def __call__(self, x: Float[Array, "B T E"]) -> Float[Array, "B T E"]:
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axis=-1, keepdims=True)
        variance = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
        y = (x32 - mean) * jnp.reciprocal(jnp.sqrt(variance + self.epsilon)) * self.scale.materialize(jnp.float32)
        if self.bias is not None:
            y = y + self.bias.materialize(jnp.float32)
        return y.astype(x.dtype)
