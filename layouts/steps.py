"""Jitted prefill and decode steps for a model under a prefill and a decode partitioning.

Each step has explicit in and out shardings and donates the cache. Between the phases the cache is
moved to its decode sharding (`to_decode`), as the paper does when prefill runs over heads and decode
over batch. The same object gives the abstract, sharded arguments that ahead-of-time compilation
lowers with, so compiled and executed programs are the same programs.
"""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
from jax.experimental.layout import Format, Layout
from jax.sharding import Mesh

from layouts.fit import fit, mesh_shape
from layouts.errors import LayoutError
from layouts.layout import Partitioning
from layouts.partitioners import DEFAULT_PARTITIONER, placement_hook
from layouts.sharding import activation_sharding, cache_shardings, param_shardings
from zoo.inference import check_prefill_chunk, decode_step, prefill
from zoo.kv_cache import KVCache, abstract_cache
from zoo.logical_axes import BATCH, LOGITS_VOCAB, SEQ, Role
from zoo.transformer import Transformer


@dataclasses.dataclass(frozen=True)
class PhaseProgram:
    """One phase's jitted step and the shardings of its arguments."""

    step: jax.stages.Wrapped  # (model, tokens, cache) -> (logits [B, V], cache)
    # The same step with the cache's memory layout left to the compiler, for ahead-of-time
    # compilation (`layouts.compiled.aot`): a layout fixed at the step's boundary that the layer
    # loop does not want makes the compiler copy the whole cache in and out.
    ahead_of_time: jax.stages.Wrapped
    model_shardings: object
    token_sharding: jax.sharding.NamedSharding
    cache_shardings: KVCache
    token_shape: tuple[int, ...]

    def abstract_arguments(self, model: Transformer, cache: KVCache):
        """ShapeDtypeStructs carrying the shardings: what `step.lower` takes to compile ahead of time."""

        def with_sharding(leaf, sharding):
            return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)

        return (
            jax.tree.map(with_sharding, model, self.model_shardings),
            jax.ShapeDtypeStruct(self.token_shape, jnp.int32, sharding=self.token_sharding),
            jax.tree.map(with_sharding, cache, self.cache_shardings),
        )


def _phase_program(
    partitioning: Partitioning, mesh: Mesh, model: Transformer, cache: KVCache, token_shape, function, partitioner: str, collective_matmul: str
) -> PhaseProgram:
    model_shardings = param_shardings(model, partitioning, mesh)
    cache_sharding = cache_shardings(cache, partitioning, mesh)
    names = (BATCH, SEQ) if len(token_shape) == 2 else (BATCH,)
    token_sharding = activation_sharding(partitioning, mesh, names, token_shape, "tokens")
    batch = token_shape[0]
    logits_sharding = activation_sharding(partitioning, mesh, (BATCH, LOGITS_VOCAB), (batch, model.config.vocab), "logits")
    body = partial(function, constrain=placement_hook(partitioning, mesh, partitioner, collective_matmul))

    def jitted(cache_placement):
        return jax.jit(
            body, in_shardings=(model_shardings, token_sharding, cache_placement), out_shardings=(logits_sharding, cache_placement), donate_argnums=(2,)
        )

    any_layout = jax.tree.map(lambda sharding: Format(Layout.AUTO, sharding), cache_sharding)
    return PhaseProgram(jitted(cache_sharding), jitted(any_layout), model_shardings, token_sharding, cache_sharding, tuple(token_shape))


def check_chunkable(partitioning: Partitioning, chunk: int | None, input_len: int) -> None:
    """Raises LayoutError if `partitioning` splits the sequence and prefill is to be chunked: a
    chunk is a slice of the sequence, which must then be whole on every chip."""
    if chunk is not None and chunk < input_len and partitioning.axes(Role.ACTIVATION, SEQ):
        raise LayoutError(
            f"layout {partitioning.name} splits the sequence over {','.join(partitioning.axes(Role.ACTIVATION, SEQ))}, so prefill cannot "
            f"run in chunks of {chunk} tokens; give a chunk of at least the prompt's {input_len} tokens"
        )


@dataclasses.dataclass(frozen=True)
class ShardedSteps:
    prefill: PhaseProgram
    decode: PhaseProgram
    mesh: Mesh

    def place_model(self, model: Transformer, phase: str) -> Transformer:
        """The model in the phase's weight shardings (a no-op when it is already there)."""
        return jax.device_put(model, getattr(self, phase).model_shardings)

    def to_decode(self, cache: KVCache) -> KVCache:
        return jax.device_put(cache, self.decode.cache_shardings)


def build_steps(
    model: Transformer,
    prefill_partitioning: Partitioning,
    decode_partitioning: Partitioning,
    mesh: Mesh,
    *,
    batch: int,
    input_len: int,
    max_len: int,
    cache_dtype: str | None = None,
    partitioner: str = DEFAULT_PARTITIONER,
    collective_matmul: str = "none",
    prefill_chunk: int | None = None,
) -> ShardedSteps:
    """Steps for `batch` prompts of `input_len` tokens and a cache of `max_len` (model may be
    abstract), their collectives written out by `partitioner` ("explicit" or "compiler"), the
    explicit partitioner's projection reduce-scatters as collective matmuls if `collective_matmul`
    is "unidirectional" or "bidirectional". Prefill takes `prefill_chunk` tokens per sequence at a
    time (`zoo.inference.prefill`; None, the whole prompt). Each partitioning splits the heads and
    the batch as far as they divide (`layouts.fit`)."""
    prefill_partitioning, decode_partitioning = (fit(partitioning, mesh_shape(mesh), batch) for partitioning in (prefill_partitioning, decode_partitioning))
    check_prefill_chunk(prefill_chunk)
    check_chunkable(prefill_partitioning, prefill_chunk, input_len)
    cache = abstract_cache(model.config, batch, max_len, cache_dtype)
    chunked_prefill = partial(prefill, chunk=prefill_chunk)
    return ShardedSteps(
        prefill=_phase_program(prefill_partitioning, mesh, model, cache, (batch, input_len), chunked_prefill, partitioner, collective_matmul),
        decode=_phase_program(decode_partitioning, mesh, model, cache, (batch,), decode_step, partitioner, collective_matmul),
        mesh=mesh,
    )
