"""Generation under a layout: the zoo's on-device loop, jitted with the layouts' placements (each
prefill and decode step run by the chosen partitioner) and the cache created directly in its
prefill sharding."""

from functools import partial

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from layouts.fit import fit, mesh_shape
from layouts.layout import Partitioning
from layouts.partitioners import DEFAULT_PARTITIONER, placement_hook
from layouts.sharding import cache_shardings, param_shardings, placed
from layouts.steps import check_chunkable
from zoo.generation import Generated, generate
from zoo.inference import check_prefill_chunk
from zoo.kv_cache import abstract_cache, init_cache
from zoo.sampling import GREEDY, Sampling
from zoo.transformer import Transformer


def sharded_generate(
    model: Transformer,
    prompt,
    key,
    *,
    prefill_partitioning: Partitioning,
    decode_partitioning: Partitioning,
    mesh: Mesh,
    max_new_tokens: int,
    sampling: Sampling = GREEDY,
    stop_token: int | None = None,
    partitioner: str = DEFAULT_PARTITIONER,
    collective_matmul: str = "none",
    prefill_chunk: int | None = None,
) -> Generated:
    """`generate` with its prefill under `prefill_partitioning` (`prefill_chunk` tokens per sequence
    at a time; None, the whole prompt) and its decode steps under `decode_partitioning`, their
    collectives written by `partitioner` (see `build_steps`). Each splits the heads and the batch as
    far as they divide (`layouts.fit`)."""
    batch, length = prompt.shape
    prefill_partitioning, decode_partitioning = (fit(partitioning, mesh_shape(mesh), batch) for partitioning in (prefill_partitioning, decode_partitioning))
    check_prefill_chunk(prefill_chunk)
    check_chunkable(prefill_partitioning, prefill_chunk, length)
    max_len = length + max_new_tokens
    cache_sharding = cache_shardings(abstract_cache(model.config, batch, max_len), prefill_partitioning, mesh)
    cache = jax.jit(partial(init_cache, model.config, batch, max_len), out_shardings=cache_sharding)()
    model = placed(model, param_shardings(model, prefill_partitioning, mesh))
    # The prompt and the key every process holds whole: one global copy, replicated over the mesh.
    replicated = NamedSharding(mesh, PartitionSpec())
    prompt, key_data = placed((prompt, jax.random.key_data(key)), (replicated, replicated))

    impl = jax.random.key_impl(key)

    def generate_from_key_data(model, prompt, key_data, cache, **options):
        return generate(model, prompt, jax.random.wrap_key_data(key_data, impl=impl), cache=cache, **options)

    run = jax.jit(
        partial(
            generate_from_key_data,
            max_new_tokens=max_new_tokens,
            sampling=sampling,
            stop_token=stop_token,
            constrain=placement_hook(prefill_partitioning, mesh, partitioner, collective_matmul),
            decode_constrain=placement_hook(decode_partitioning, mesh, partitioner, collective_matmul),
            prefill_chunk=prefill_chunk,
        ),
        donate_argnames=("cache",),
    )
    return run(model, prompt, key_data, cache=cache)
