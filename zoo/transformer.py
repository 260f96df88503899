"""The decoder-only Transformer: embedding, a stack of blocks run under `lax.scan`, the output head."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.block import RESIDUAL, RESIDUAL_NAMES, Block
from zoo.config import ModelConfig
from zoo.constraints import EMBEDDING_LOOKUP_SCOPE, Constrain, placed
from zoo.kv_cache import LayerSlot
from zoo.logical_axes import BATCH, EMBED, HEAD_BATCH, LOGITS_VOCAB, MATMUL_EMBED, POSITIONS, SEQ, VOCAB, Role
from zoo.matmul_form import DECLARED, MatmulForm, project
from zoo.norm import LayerNorm
from zoo.weights import AbstractWeight, init_weight, prepend_layers_axis, strip_layers_axis_names, use_weight, used

# Keys and values of every layer, [N, B, S, K, Q] each (batch and heads unchecked: see LayerCache).
StackedCache = tuple[Float[Array, "N _ S _ Q"], Float[Array, "N _ S _ Q"]]
TOKEN_NAMES = (BATCH, SEQ)
TOKENS = placed(Role.ACTIVATION, TOKEN_NAMES)
LOGITS_NAMES = (BATCH, SEQ, LOGITS_VOCAB)
_POSITION_IDS = placed(Role.ACTIVATION, (None, SEQ))  # [1, T]: every sequence has the same positions
_HEAD_TOKEN_NAMES = (HEAD_BATCH, SEQ)
_HEAD_INPUT_NAMES = (HEAD_BATCH, SEQ, MATMUL_EMBED)


class Transformer(eqx.Module):
    embedding: AbstractWeight  # [V, E]; the output head too when tied
    positions: AbstractWeight | None  # [P, E], learned positions only
    # Every array stacked on a leading N axis, run under `lax.scan`; or one Block per layer, run
    # one after another (`zoo.execution.unstack_layers`: what a backend that copies a scanned
    # layer's weights out of the stack before every matmul runs).
    blocks: Block | tuple[Block, ...]
    final_norm: LayerNorm
    unembedding: AbstractWeight | None  # [E, V] when not tied
    config: ModelConfig = eqx.field(static=True)
    matmuls: MatmulForm = eqx.field(static=True)  # the output head's, as a backend runs it (`zoo.execution`)

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
        self.matmuls = DECLARED

    def embed(self, tokens: Int[Array, "B T"], positions: Int[Array, "1 T"], constrain: Constrain, chunk: int | None = None) -> Float[Array, "B T E"]:
        """Token embeddings (plus learned positions) in the residual stream's placement; `chunk`
        tokens per sequence at a time when it is below T (the lookup's partial rows are whole
        over E before they are reduced: chunked prefill chunks them too)."""
        length = tokens.shape[1]
        if chunk is None or chunk >= length:
            return self._embed(tokens, positions, constrain)

        def run(x, start, size):
            piece = self._embed(jax.lax.dynamic_slice_in_dim(tokens, start, size, 1), jax.lax.dynamic_slice_in_dim(positions, start, size, 1), constrain)
            return jax.lax.dynamic_update_slice_in_dim(x, piece, start, axis=1)

        # The first chunk gives the residual stream's shape on this chip (the sequence is never split).
        first = self._embed(tokens[:, :chunk], positions[:, :chunk], constrain)
        x = jax.lax.dynamic_update_slice_in_dim(jnp.zeros((first.shape[0], length, *first.shape[2:]), first.dtype), first, 0, axis=1)
        return _over_chunks(run, x, chunk, length, chunk)

    def _embed(self, tokens: Int[Array, "B T"], positions: Int[Array, "1 T"], constrain: Constrain) -> Float[Array, "B T E"]:
        dtype = jnp.dtype(self.config.dtype)
        # The table is looked up where it is stored, as the output head uses it: a weight-gathered
        # layout never gathers it. The ids go where the head's input goes (HEAD_BATCH), off the
        # axes the table is split over; the partial rows are reduced into the residual stream.
        table = use_weight(self.embedding, dtype, constrain, Role.WEIGHT)
        positions_table = None if self.positions is None else use_weight(self.positions, dtype, constrain)
        with jax.named_scope(EMBEDDING_LOOKUP_SCOPE):
            ids = constrain(tokens, Role.ACTIVATION, _HEAD_TOKEN_NAMES, source=TOKENS)
            x = constrain.lookup(table, used(self.embedding, Role.WEIGHT), ids, placed(Role.ACTIVATION, _HEAD_TOKEN_NAMES), Role.ACTIVATION, RESIDUAL_NAMES)
            if positions_table is not None:
                x = x + constrain.lookup(positions_table, used(self.positions), positions, _POSITION_IDS, Role.ACTIVATION, (None, *RESIDUAL_NAMES[1:]))
        return x

    def __call__(
        self,
        x: Float[Array, "B T E"],
        positions: Int[Array, "1 T"],
        cache: StackedCache | None,
        write_index: Int[Array, ""] | None,
        constrain: Constrain,
        chunk: int | None = None,
    ) -> tuple[Float[Array, "B T E"], StackedCache | None]:
        """Runs every block on the residual stream `x`; `cache` holds the stacked [N, B, S, K, Q]
        keys and values. The final norm is the output head's (`logits`).

        With a cache, `chunk` tokens per sequence at a time when `chunk` is below T (chunked
        prefill): each layer runs over the prompt's chunks in order, each chunk attending over the
        cache written so far, so the result equals the unchunked pass while a layer's working
        memory (attention scores, the FFN hidden) is that of one chunk. Layers are the outer loop
        and chunks the inner one, so each layer's weights are placed for use (gathered, under a
        weight-gathered layout) once per prefill rather than once per chunk.

        Stacked blocks run under `lax.scan`; unstacked ones (a tuple) one after another, each
        reading its own arrays, which the program then holds as separate buffers."""

        unstacked = isinstance(self.blocks, tuple)
        if cache is None:

            def layer(x, block):
                return strip_layers_axis_names(block)(x, positions, None, None, constrain)[0], None

            if unstacked:
                for block in self.blocks:
                    x = block(x, positions, None, None, constrain)[0]
                return x, None
            return jax.lax.scan(layer, x, self.blocks)[0], None

        length = x.shape[1]
        chunked = chunk is not None and chunk < length

        # The cache rides in the loop's carry and each layer writes into it in place (LayerSlot).
        def cached_layer(carry, block: Block, index):
            x, k, v = carry
            slot = LayerSlot(k, v, index)
            if chunked:
                x, slot = _run_in_chunks(block.with_weights_used(x.dtype, constrain), x, positions, slot, write_index, chunk, constrain)
            else:
                x, slot = block(x, positions, slot, write_index, constrain)
            return x, slot.k, slot.v

        carry = (x, *cache)
        if unstacked:
            for index, block in enumerate(self.blocks):
                carry = cached_layer(carry, block, jnp.int32(index))
        else:
            layer_indices = jnp.arange(self.config.n_layers, dtype=jnp.int32)
            scanned_layer = lambda carry, scanned: (cached_layer(carry, strip_layers_axis_names(scanned[0]), scanned[1]), None)  # noqa: E731
            carry, _ = jax.lax.scan(scanned_layer, carry, (self.blocks, layer_indices))
        x, k, v = carry
        return x, (k, v)

    def logits(self, x: Float[Array, "B T E"], constrain: Constrain) -> Float[Array, "B T V"]:
        """The final norm and the output head on the residual stream `x`, logits in fp32."""
        dtype = x.dtype
        # The head is a projection like any other, with its weight where it is stored under every
        # layout (the table is the largest weight, and decode reads one position of it per
        # sequence): its input takes the matmul-input layout (B L E_x under 2D weight-stationary)
        # less the batch axes the table is split over, so the partial sums are reduced into the
        # vocabulary's shards instead of the table moving to match the input. The norm runs
        # there, after the move, as in the blocks; the move is never a collective matmul's loop,
        # since the contraction may still slice E to where the table has it.
        head_input = placed(Role.ACTIVATION, _HEAD_INPUT_NAMES)
        x = self.final_norm(constrain(x, Role.ACTIVATION, _HEAD_INPUT_NAMES, source=RESIDUAL), head_input, constrain)
        # Partial sums are reduced in the compute dtype, as in every other projection (the paper's
        # bf16 volumes); the reduced logits are then sampled in fp32.
        weight, subscripts = (self.embedding, "BTE,VE->BTV") if self.unembedding is None else (self.unembedding, "BTE,EV->BTV")
        logits = project(constrain, subscripts, x, head_input, use_weight(weight, dtype, constrain, Role.WEIGHT), used(weight, Role.WEIGHT), self.matmuls)
        return constrain(logits[0], Role.ACTIVATION, LOGITS_NAMES, source=logits[1]).astype(jnp.float32)


def _run_in_chunks(
    block: Block, x: Float[Array, "B T E"], positions: Int[Array, "1 T"], slot: LayerSlot, write_index: Int[Array, ""], chunk: int, constrain: Constrain
) -> tuple[Float[Array, "B T E"], LayerSlot]:
    """One layer over `x` in chunks of `chunk` tokens per sequence, in order; each chunk's output
    overwrites its input in `x`."""

    def run(carry, start, size):
        x, slot = carry
        piece = jax.lax.dynamic_slice_in_dim(x, start, size, axis=1)
        piece_positions = jax.lax.dynamic_slice_in_dim(positions, start, size, axis=1)
        out, slot = block(piece, piece_positions, slot, write_index + start, constrain)
        return jax.lax.dynamic_update_slice_in_dim(x, out.astype(x.dtype), start, axis=1), slot

    return _over_chunks(run, (x, slot), 0, x.shape[1], chunk)


def _over_chunks(run, carry, start: int, length: int, chunk: int):
    """`carry` after `run(carry, start, size)` on each chunk from `start` to `length`, in order: a
    loop over the whole chunks of `chunk` tokens, then the remainder, if any."""
    whole = (length - start) // chunk
    starts = start + jnp.arange(whole, dtype=jnp.int32) * chunk
    carry, _ = jax.lax.scan(lambda carry, at: (run(carry, at, chunk), None), carry, starts)
    if (length - start) % chunk:
        carry = run(carry, jnp.int32(start + whole * chunk), (length - start) % chunk)
    return carry


def build_abstract(config: ModelConfig) -> Transformer:
    """The model's shapes, dtypes and logical names, allocating nothing (full sizes in milliseconds)."""
    return eqx.filter_eval_shape(Transformer, config, key=jax.random.key(0))
