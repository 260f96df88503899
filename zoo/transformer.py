"""The decoder-only Transformer: embedding, a stack of blocks run under `lax.scan`, the output head."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.block import RESIDUAL_NAMES, Block
from zoo.config import ModelConfig
from zoo.constraints import Constrain
from zoo.logical_axes import BATCH, EMBED, LOGITS_VOCAB, MATMUL_EMBED, POSITIONS, SEQ, VOCAB, Role
from zoo.norm import LayerNorm
from zoo.weights import AbstractWeight, init_weight, prepend_layers_axis, strip_layers_axis_names, use_weight

# Keys and values of every layer, [N, B, S, K, Q] each.
StackedCache = tuple[Float[Array, "N B S K Q"], Float[Array, "N B S K Q"]]


class Transformer(eqx.Module):
    embedding: AbstractWeight  # [V, E]; the output head too when tied
    positions: AbstractWeight | None  # [P, E], learned positions only
    blocks: Block  # every array stacked on a leading N axis
    final_norm: LayerNorm
    unembedding: AbstractWeight | None  # [E, V] when not tied
    config: ModelConfig = eqx.field(static=True)

    def __init__(self, config: ModelConfig, *, key):
        key_embedding, key_positions, key_blocks, key_head = jax.random.split(key, 4)
        E, V = config.d_model, config.vocab
        self.embedding = init_weight(key_embedding, (V, E), (VOCAB, EMBED), config.dtype, fan_in=E)
        self.positions = (
            init_weight(key_positions, (config.max_positions, E), (POSITIONS, EMBED), config.dtype, fan_in=E)
            if config.positions == "learned"
            else None
        )
        # Building the stack under vmap keeps tracing cost flat in depth: 118 layers trace like one.
        make_block = lambda block_key: Block(config, key=block_key)  # noqa: E731
        self.blocks = prepend_layers_axis(eqx.filter_vmap(make_block)(jax.random.split(key_blocks, config.n_layers)))
        self.final_norm = LayerNorm(config)
        self.unembedding = None if config.tie_embeddings else init_weight(key_head, (E, V), (EMBED, VOCAB), config.dtype, fan_in=E)
        self.config = config

    def embed(self, tokens: Int[Array, "B T"], positions: Int[Array, "B T"], constrain: Constrain) -> Float[Array, "B T E"]:
        dtype = jnp.dtype(self.config.dtype)
        x = jnp.take(self.embedding.materialize(dtype), tokens, axis=0)
        if self.positions is not None:
            x = x + jnp.take(self.positions.materialize(dtype), positions, axis=0)
        return constrain(x, Role.ACTIVATION, RESIDUAL_NAMES)

    def __call__(
        self,
        x: Float[Array, "B T E"],
        positions: Int[Array, "B T"],
        cache: StackedCache | None,
        write_index: Int[Array, ""] | None,
        constrain: Constrain,
    ) -> tuple[Float[Array, "B T E"], StackedCache | None]:
        """Runs every block; `cache` holds the stacked [N, B, S, K, Q] keys and values."""

        def layer(x, scanned):
            block, layer_cache = scanned
            x, layer_cache = strip_layers_axis_names(block)(x, positions, layer_cache, write_index, constrain)
            return x, layer_cache

        x, cache = jax.lax.scan(layer, x, (self.blocks, cache))
        return self.final_norm(x), cache

    def logits(self, x: Float[Array, "B T E"], constrain: Constrain) -> Float[Array, "B T V"]:
        dtype = x.dtype
        # The head is a projection like any other: its input takes the matmul-input layout (B L E_x
        # under 2D weight-stationary), so the partial sums are reduced into the vocabulary's shards
        # instead of the compiler moving the whole [V, E] table to match a residual-layout input.
        x = constrain(x, Role.ACTIVATION, (BATCH, SEQ, MATMUL_EMBED))
        if self.unembedding is None:
            logits = jnp.einsum("BTE,VE->BTV", x, use_weight(self.embedding, dtype, constrain), preferred_element_type=jnp.float32)
        else:
            logits = jnp.einsum("BTE,EV->BTV", x, use_weight(self.unembedding, dtype, constrain), preferred_element_type=jnp.float32)
        return constrain(logits, Role.ACTIVATION, (BATCH, SEQ, LOGITS_VOCAB))


def build_abstract(config: ModelConfig) -> Transformer:
    """The model's shapes, dtypes and logical names, allocating nothing (full sizes in milliseconds)."""
    return eqx.filter_eval_shape(Transformer, config, key=jax.random.key(0))
