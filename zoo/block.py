"""One Transformer layer: PaLM's parallel block or Megatron's serial block, chosen by the config."""

import equinox as eqx
import jax
from jaxtyping import Array, Float, Int

from zoo.attention import Attention
from zoo.config import ModelConfig
from zoo.constraints import Constrain
from zoo.logical_axes import BATCH, MATMUL_EMBED, RESIDUAL_EMBED, SEQ, Role
from zoo.mlp import FeedForward
from zoo.norm import LayerNorm

RESIDUAL_NAMES = (BATCH, SEQ, RESIDUAL_EMBED)
_MATMUL_INPUT_NAMES = (BATCH, SEQ, MATMUL_EMBED)

LayerCache = tuple[Float[Array, "B S K Q"], Float[Array, "B S K Q"]]


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
        positions: Int[Array, "B T"],
        cache: LayerCache | None,
        write_index: Int[Array, ""] | None,
        constrain: Constrain,
    ) -> tuple[Float[Array, "B T E"], LayerCache | None]:
        if self.config.block == "parallel":
            # y = x + MLP(LN(x)) + Attn(LN(x)): one norm and one input collective feed both the
            # query and the FFN input projections, and both output projections are summed before
            # the single reduction that leaves the residual layout (paper §3.4's fusion).
            h = constrain(self.attention_norm(x), Role.ACTIVATION, _MATMUL_INPUT_NAMES)
            attention_out, cache = self.attention(h, positions, cache, write_index, constrain)
            update = constrain(attention_out + self.mlp(h, constrain), Role.ACTIVATION, RESIDUAL_NAMES)
            return x + update, cache
        h = constrain(self.attention_norm(x), Role.ACTIVATION, _MATMUL_INPUT_NAMES)
        attention_out, cache = self.attention(h, positions, cache, write_index, constrain)
        x = x + constrain(attention_out, Role.ACTIVATION, RESIDUAL_NAMES)
        h = constrain(self.mlp_norm(x), Role.ACTIVATION, _MATMUL_INPUT_NAMES)
        x = x + constrain(self.mlp(h, constrain), Role.ACTIVATION, RESIDUAL_NAMES)
        return x, cache
