"""The generation loop, on device: prefill, then decode steps inside `lax.while_loop` until every
sequence has met the stop token or the token budget is spent."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from zoo.constraints import Constrain, no_constraint
from zoo.errors import ZooError
from zoo.inference import check_prompt, decode_step, prefill
from zoo.kv_cache import CACHE_NAMES, KVCache, init_cache
from zoo.logical_axes import Role
from zoo.sampling import GREEDY, Sampling, sample
from zoo.transformer import Transformer


class Generated(eqx.Module):
    tokens: Int[Array, "B M"]  # generated ids; after a stop token, the stop token repeats
    lengths: Int[Array, " B"]  # tokens generated per sequence, the stop token included


def generate(
    model: Transformer,
    prompt: Int[Array, "B T"],
    key,
    *,
    max_new_tokens: int,
    sampling: Sampling = GREEDY,
    stop_token: int | None = None,
    cache: KVCache | None = None,
    constrain: Constrain = no_constraint,
    decode_constrain: Constrain | None = None,
) -> Generated:
    """Generates up to `max_new_tokens` tokens after `prompt`. Jit it with the keyword arguments
    static (see `generate_jit`); a given cache (e.g. one placed by a layout) must be empty.
    `decode_constrain` places the decode steps when they use another layout than prefill; the
    cache moves to its decode placement once, between the phases."""
    if max_new_tokens < 1:
        raise ZooError(f"max_new_tokens must be a positive integer, got {max_new_tokens}")
    batch, length = prompt.shape
    if cache is None:
        cache = init_cache(model.config, batch, length + max_new_tokens)
    check_prompt(model, prompt, cache.max_len, max_new_tokens - 1)
    stop = jnp.int32(-1 if stop_token is None else stop_token)

    logits, cache = prefill(model, prompt, cache, constrain=constrain)
    if decode_constrain is None:
        decode_constrain = constrain
    else:
        cache = KVCache(
            decode_constrain(cache.k, Role.CACHE, CACHE_NAMES), decode_constrain(cache.v, Role.CACHE, CACHE_NAMES), cache.length
        )
    key, step_key = jax.random.split(key)
    first = sample(logits, step_key, sampling)
    tokens = jnp.zeros((batch, max_new_tokens), jnp.int32).at[:, 0].set(first)

    def running(state):
        step, _, _, _, done, _ = state
        return (step < max_new_tokens) & ~jnp.all(done)

    def advance(state):
        step, tokens, cache, last, done, key = state
        logits, cache = decode_step(model, last, cache, constrain=decode_constrain)
        key, step_key = jax.random.split(key)
        chosen = jnp.where(done, stop, sample(logits, step_key, sampling))
        tokens = jax.lax.dynamic_update_slice_in_dim(tokens, chosen[:, None], step, axis=1)
        return step + 1, tokens, cache, chosen, done | (chosen == stop), key

    initial = (jnp.int32(1), tokens, cache, first, first == stop, key)
    step, tokens, _, _, _, _ = jax.lax.while_loop(running, advance, initial)
    # Slots the loop never reached (every sequence had stopped) hold the stop token.
    reached = jnp.arange(max_new_tokens)[None, :] < step
    tokens = jnp.where(reached, tokens, stop)
    is_stop = tokens == stop
    lengths = jnp.where(jnp.any(is_stop, axis=1), jnp.argmax(is_stop, axis=1) + 1, max_new_tokens)
    return Generated(tokens, lengths.astype(jnp.int32))


generate_jit = eqx.filter_jit(generate)
