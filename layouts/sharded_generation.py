"""Generation under a layout: the zoo's on-device loop, jitted with the layouts' constraints and the
cache created directly in its prefill sharding."""

from functools import partial

import jax
from jax.sharding import Mesh

from layouts.layout import Partitioning
from layouts.sharding import cache_shardings, make_constrain, param_shardings
from zoo.generation import Generated, generate
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
) -> Generated:
    batch, length = prompt.shape
    max_len = length + max_new_tokens
    cache_sharding = cache_shardings(abstract_cache(model.config, batch, max_len), prefill_partitioning, mesh)
    cache = jax.jit(partial(init_cache, model.config, batch, max_len), out_shardings=cache_sharding)()
    model = jax.device_put(model, param_shardings(model, prefill_partitioning, mesh))
    run = jax.jit(
        partial(
            generate,
            max_new_tokens=max_new_tokens,
            sampling=sampling,
            stop_token=stop_token,
            constrain=make_constrain(prefill_partitioning, mesh),
            decode_constrain=make_constrain(decode_partitioning, mesh),
        ),
        donate_argnames=("cache",),
    )
    return run(model, prompt, key, cache=cache)
