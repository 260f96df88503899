"""LayerNorm, computed in fp32 whatever the weight dtype."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from zoo.config import ModelConfig
from zoo.constraints import NORM_STATISTICS_SCOPE, Constrain, Placed, placed
from zoo.logical_axes import EMBED, Role
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

    def __call__(self, x: Float[Array, "B T E"], x_placed: Placed, constrain: Constrain) -> Float[Array, "B T E"]:
        """Normalises over E, wherever `x_placed` says the layout splits it (`constrain.mean`
        reduces the statistics over those chips)."""
        x32 = x.astype(jnp.float32)
        with jax.named_scope(NORM_STATISTICS_SCOPE):
            mean = constrain.mean(x32, x_placed)
            variance = constrain.mean(jnp.square(x32 - mean), x_placed)
        role, name = x_placed.dims[-1]
        y = (x32 - mean) * jnp.reciprocal(jnp.sqrt(variance + self.epsilon)) * self._placed(self.scale, role, name, constrain)
        if self.bias is not None:
            y = y + self._placed(self.bias, role, name, constrain)
        return y.astype(x.dtype)

    @staticmethod
    def _placed(weight: AbstractWeight, role: Role, name: str | None, constrain: Constrain) -> Float[Array, " E"]:
        return constrain(weight.materialize(jnp.float32), role, (name,), source=placed(Role.WEIGHT, weight.names))
