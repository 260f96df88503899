"""The decoder-only Transformer: embedding, a stack of blocks run under `lax.scan`, the output head."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.block import MATMUL_INPUT, RESIDUAL_NAMES, Block, normalized_input
from zoo.config import ModelConfig
from zoo.constraints import EMBEDDING_LOOKUP_SCOPE, Constrain, placed
from zoo.kv_cache import LayerSlot
from zoo.logical_axes import BATCH, EMBED, LOGITS_VOCAB, POSITIONS, SEQ, VOCAB, Role
from zoo.norm import LayerNorm
from zoo.weights import AbstractWeight, init_weight, prepend_layers_axis, strip_layers_axis_names, use_weight, used

# Keys and values of every layer, [N, B, S, K, Q] each (batch and heads unchecked: see LayerCache).
StackedCache = tuple[Float[Array, "N _ S _ Q"], Float[Array, "N _ S _ Q"]]
TOKEN_NAMES = (BATCH, SEQ)
TOKENS = placed(Role.ACTIVATION, TOKEN_NAMES)
LOGITS_NAMES = (BATCH, SEQ, LOGITS_VOCAB)
_POSITION_IDS = placed(Role.ACTIVATION, (None, SEQ))  # [1, T]: every sequence has the same positions


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

    def embed(self, tokens: Int[Array, "B T"], positions: Int[Array, "1 T"], constrain: Constrain) -> Float[Array, "B T E"]:
        """Token embeddings (plus learned positions) in the residual stream's placement."""
        dtype = jnp.dtype(self.config.dtype)
        # The table as matmuls use it (gathered by weight-gathered layouts) is the output head's
        # too: only the lookup itself is work the paper's formulas leave out.
        table = use_weight(self.embedding, dtype, constrain)
        positions_table = None if self.positions is None else use_weight(self.positions, dtype, constrain)
        with jax.named_scope(EMBEDDING_LOOKUP_SCOPE):
            rows, rows_placed = constrain.lookup(table, used(self.embedding), tokens, TOKENS)
            x = constrain(rows, Role.ACTIVATION, RESIDUAL_NAMES, source=rows_placed)
            if positions_table is not None:
                rows, rows_placed = constrain.lookup(positions_table, used(self.positions), positions, _POSITION_IDS)
                x = x + constrain(rows, Role.ACTIVATION, (None, *RESIDUAL_NAMES[1:]), source=rows_placed)
        return x

    def __call__(
        self,
        x: Float[Array, "B T E"],
        positions: Int[Array, "1 T"],
        cache: StackedCache | None,
        write_index: Int[Array, ""] | None,
        constrain: Constrain,
    ) -> tuple[Float[Array, "B T E"], StackedCache | None]:
        """Runs every block on the residual stream `x`; `cache` holds the stacked [N, B, S, K, Q]
        keys and values. The final norm is the output head's (`logits`)."""

        if cache is None:

            def layer(x, block):
                return strip_layers_axis_names(block)(x, positions, None, None, constrain)[0], None

            return jax.lax.scan(layer, x, self.blocks)[0], None

        # The cache rides in the loop's carry and each layer writes into it in place (LayerSlot).
        def cached_layer(carry, scanned):
            x, k, v = carry
            block, index = scanned
            x, slot = strip_layers_axis_names(block)(x, positions, LayerSlot(k, v, index), write_index, constrain)
            return (x, slot.k, slot.v), None

        (x, k, v), _ = jax.lax.scan(cached_layer, (x, *cache), (self.blocks, jnp.arange(self.config.n_layers, dtype=jnp.int32)))
        return x, (k, v)

    def logits(self, x: Float[Array, "B T E"], constrain: Constrain) -> Float[Array, "B T V"]:
        """The final norm and the output head on the residual stream `x`, logits in fp32."""
        dtype = x.dtype
        # The head is a projection like any other: its input takes the matmul-input layout (B L E_x
        # under 2D weight-stationary), so the partial sums are reduced into the vocabulary's shards
        # instead of the compiler moving the whole [V, E] table to match a residual-layout input.
        # The norm runs there too, as in the blocks.
        x = normalized_input(self.final_norm, x, constrain)
        # Partial sums are reduced in the compute dtype, as in every other projection (the paper's
        # bf16 volumes); the reduced logits are then sampled in fp32.
        if self.unembedding is None:
            logits = constrain.contract("BTE,VE->BTV", x, MATMUL_INPUT, use_weight(self.embedding, dtype, constrain), used(self.embedding))
        else:
            logits = constrain.contract("BTE,EV->BTV", x, MATMUL_INPUT, use_weight(self.unembedding, dtype, constrain), used(self.unembedding))
        return constrain(logits[0], Role.ACTIVATION, LOGITS_NAMES, source=logits[1]).astype(jnp.float32)


def build_abstract(config: ModelConfig) -> Transformer:
    """The model's shapes, dtypes and logical names, allocating nothing (full sizes in milliseconds)."""
    return eqx.filter_eval_shape(Transformer, config, key=jax.random.key(0))
