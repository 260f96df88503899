"""The inference API: a teacher-forcing forward pass, prefill, and one decode step.

All three are pure functions of (model, tokens, cache) usable under `jax.jit` with the cache donated.
The `constrain` hook is how a layout places activations; without one they run unsharded.
"""

import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.constraints import Constrain, no_constraint, placed
from zoo.errors import PromptError
from zoo.kv_cache import CACHE_NAMES, KVCache
from zoo.logical_axes import Role
from zoo.transformer import LOGITS_NAMES, Transformer


def check_prompt(model: Transformer, tokens, cache_len: int | None = None, new_tokens: int = 0) -> None:
    """Raises PromptError for a prompt the model cannot take (before any work is traced)."""
    shape = getattr(tokens, "shape", None)
    if shape is None or len(shape) != 2:
        raise PromptError(f"tokens must be a [batch, length] array of token ids, got shape {shape}")
    batch, length = shape
    if batch < 1 or length < 1:
        raise PromptError(f"a prompt needs at least one sequence of at least one token, got shape {tuple(shape)}")
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise PromptError(f"tokens must be integer ids, got dtype {tokens.dtype}")
    total = length + new_tokens
    if cache_len is not None and total > cache_len:
        raise PromptError(f"prompt of {length} tokens + {new_tokens} new tokens does not fit a cache of {cache_len}")
    config = model.config
    if config.positions == "learned" and total > config.max_positions:
        raise PromptError(f"{config.name} has learned positions up to {config.max_positions}; {total} tokens requested")


def forward(model: Transformer, tokens: Int[Array, "B T"], *, constrain: Constrain = no_constraint) -> Float[Array, "B T V"]:
    """Logits of every position, computed without a cache (teacher forcing)."""
    check_prompt(model, tokens)

    def body(model, tokens, cache):
        positions = jnp.arange(tokens.shape[1], dtype=jnp.int32)[None, :]
        x = model.embed(tokens, positions, constrain)
        x, _ = model(x, positions, None, None, constrain)
        return model.logits(x, constrain), cache

    return constrain.step(body, model, tokens, None, LOGITS_NAMES)[0]


def _extend(
    model: Transformer, tokens: Int[Array, "B T"], cache: KVCache, constrain: Constrain, chunk: int | None = None
) -> tuple[Float[Array, "B V"], KVCache]:
    def body(model, tokens, cache):
        positions = cache.length + jnp.arange(tokens.shape[1], dtype=jnp.int32)[None, :]
        x = model.embed(tokens, positions, constrain, chunk)
        x, (k, v) = model(x, positions, (cache.k, cache.v), cache.length, constrain, chunk)
        logits = model.logits(x[:, -1:], constrain)[:, 0]
        at_cache = placed(Role.CACHE, CACHE_NAMES)
        k = constrain(k, Role.CACHE, CACHE_NAMES, source=at_cache)
        v = constrain(v, Role.CACHE, CACHE_NAMES, source=at_cache)
        return logits, KVCache(k, v, cache.length + tokens.shape[1])

    return constrain.step(body, model, tokens, cache, (LOGITS_NAMES[0], LOGITS_NAMES[2]))


def prefill(
    model: Transformer, tokens: Int[Array, "B T"], cache: KVCache, *, constrain: Constrain = no_constraint, chunk: int | None = None
) -> tuple[Float[Array, "B V"], KVCache]:
    """Writes the prompt's keys and values into the cache; returns the last position's logits.
    `chunk`: tokens per sequence each layer takes at a time (chunked prefill, equal to the whole
    prompt at once but with one chunk's working memory); None, the whole prompt."""
    check_prompt(model, tokens, cache.max_len)
    check_prefill_chunk(chunk)
    if tokens.shape[0] != cache.batch:
        raise PromptError(f"prompt batch {tokens.shape[0]} does not match the cache's batch {cache.batch}")
    return _extend(model, tokens, cache, constrain, chunk)


def check_prefill_chunk(chunk) -> None:
    """Raises PromptError unless `chunk` is None or a positive integer."""
    if chunk is not None and (not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1):
        raise PromptError(f"a prefill chunk is a positive number of tokens per sequence, got {chunk!r}")


def decode_step(
    model: Transformer, last_tokens: Int[Array, " B"], cache: KVCache, *, constrain: Constrain = no_constraint
) -> tuple[Float[Array, "B V"], KVCache]:
    """Feeds one token per sequence at position `cache.length`; returns the next-token logits."""
    if last_tokens.shape != (cache.batch,):
        raise PromptError(f"decode takes one token per sequence: shape ({cache.batch},), got {last_tokens.shape}")
    return _extend(model, last_tokens[:, None], cache, constrain)
