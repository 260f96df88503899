"""One Transformer layer: PaLM's parallel block or Megatron's serial block, chosen by the config."""

import equinox as eqx
import jax
from jaxtyping import Array, Float, Int

from zoo.attention import Attention
from zoo.config import ModelConfig
from zoo.constraints import Constrain, placed
from zoo.kv_cache import LayerSlot
from zoo.logical_axes import BATCH, MATMUL_EMBED, RESIDUAL_EMBED, SEQ, Role
from zoo.mlp import FeedForward
from zoo.norm import LayerNorm
from zoo.weights import use_bias, with_weights_used

RESIDUAL_NAMES = (BATCH, SEQ, RESIDUAL_EMBED)
RESIDUAL = placed(Role.ACTIVATION, RESIDUAL_NAMES)
_MATMUL_INPUT_NAMES = (BATCH, SEQ, MATMUL_EMBED)
MATMUL_INPUT = placed(Role.ACTIVATION, _MATMUL_INPUT_NAMES)


def _projection_weights(block: "Block") -> tuple:
    return (block.attention.w_q, block.attention.w_kv, block.attention.w_o, block.mlp.w_in, block.mlp.w_out)


class Block(eqx.Module):
    attention_norm: LayerNorm
    mlp_norm: LayerNorm | None  # the serial block's second norm; the parallel block shares one
    attention: Attention
    mlp: FeedForward
    config: ModelConfig = eqx.field(static=True)

    def __init__(self, config: ModelConfig, *, key):
        key_attention, key_mlp = jax.random.split(key)
        self.attention_norm = LayerNorm(config)
        self.mlp_norm = LayerNorm(config) if config.block == "serial" else None
        self.attention = Attention(config, key=key_attention)
        self.mlp = FeedForward(config, key=key_mlp)
        self.config = config

    def __call__(
        self,
        x: Float[Array, "B T E"],
        positions: Int[Array, "1 T"],
        cache: LayerSlot | None,
        write_index: Int[Array, ""] | None,
        constrain: Constrain,
    ) -> tuple[Float[Array, "B T E"], LayerSlot | None]:
        """`x` is the residual stream (RESIDUAL_NAMES); so is the result."""
        dtype = x.dtype
        if self.config.block == "parallel":
            # y = x + MLP(LN(x)) + Attn(LN(x)): one norm and one input collective feed both the
            # query and the FFN input projections, and both output projections are summed before
            # the single reduction that leaves the residual layout (paper §3.4's fusion).
            h = normalized_input(self.attention_norm, x, constrain)
            (attention_out, attention_placed), cache = self.attention(h, MATMUL_INPUT, positions, cache, write_index, constrain)
            mlp_out, mlp_placed = self.mlp(h, MATMUL_INPUT, constrain)
            update = constrain(attention_out + mlp_out, Role.ACTIVATION, RESIDUAL_NAMES, source=(attention_placed, mlp_placed))
            update = update + self._output_biases(dtype, constrain, self.attention.b_o, self.mlp.b_out)
            return x + update, cache
        h = normalized_input(self.attention_norm, x, constrain)
        (attention_out, attention_placed), cache = self.attention(h, MATMUL_INPUT, positions, cache, write_index, constrain)
        x = x + constrain(attention_out, Role.ACTIVATION, RESIDUAL_NAMES, source=attention_placed)
        x = x + self._output_biases(dtype, constrain, self.attention.b_o)
        h = normalized_input(self.mlp_norm, x, constrain)
        mlp_out, mlp_placed = self.mlp(h, MATMUL_INPUT, constrain)
        x = x + constrain(mlp_out, Role.ACTIVATION, RESIDUAL_NAMES, source=mlp_placed)
        return x + self._output_biases(dtype, constrain, self.mlp.b_out), cache

    def with_weights_used(self, dtype, constrain: Constrain) -> "Block":
        """This layer with its projection weights placed for use now, once (`zoo.weights.UsedWeight`),
        for a loop that then runs it over several chunks of the prompt."""
        return with_weights_used(self, _projection_weights, dtype, constrain)

    @staticmethod
    def _output_biases(dtype, constrain: Constrain, *biases) -> Array | float:
        """Output projections' biases, added once their partial sums are reduced into the residual."""
        return sum((use_bias(bias, dtype, constrain, Role.ACTIVATION, RESIDUAL_NAMES[2:]) for bias in biases), 0.0)


def normalized_input(norm: LayerNorm, x: Float[Array, "B T E"], constrain: Constrain):
    """The residual stream normalised and moved to where the projections take their input (E_x
    under 2D weight-stationary), for projections only. The norm runs after the move, on the
    gathered input, so its statistics need little or no communication; unless the layout runs
    that gather inside the first projection's loop (collective matmul), when it runs before."""
    if constrain.loops_gathers:
        h = norm(x, RESIDUAL, constrain)
        return constrain(h, Role.ACTIVATION, _MATMUL_INPUT_NAMES, source=RESIDUAL, into_contraction=True)
    return norm(constrain(x, Role.ACTIVATION, _MATMUL_INPUT_NAMES, source=RESIDUAL), MATMUL_INPUT, constrain)
