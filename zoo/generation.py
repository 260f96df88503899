"""The generation loop, on device: prefill, then decode steps inside `lax.while_loop` until every
sequence has met the stop token or the token budget is spent."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from zoo.config import ModelConfig, dtype_bytes
from zoo.constraints import Constrain, no_constraint
from zoo.errors import ZooError
from zoo.execution import AS_DECLARED, Execution
from zoo.inference import check_prompt, decode_step, prefill
from zoo.kv_cache import CACHE_NAMES, KVCache, allocated_len, init_cache
from zoo.logical_axes import Role
from zoo.sampling import GREEDY, Sampling, sample
from zoo.transformer import Transformer

# Positions and the cache's fill level are int32 on device: a longer cache would wrap them around.
MAX_CACHE_LEN = 2**31 - 1

# XLA's CPU backend computes bf16 matmuls with bf16 products in float32 and hoists the weights'
# conversion out of the layer scan and the decode loop, so a model stored in bf16 and run as
# declared also holds float32 copies of its weights there: XLA's memory analysis of the compiled
# `generate` puts its temporaries at 2.2 (palm-150m) to 2.5 (palm-4m, palm-8b) times the bf16
# weights. int8 weights are dequantized inside the loop, with no such copies; nor do matmuls with
# float32 products, as the CPU runs a model on one device (`zoo.execution`: 44 MB of temporaries
# for palm-150m, against 673 MB; `benchmarks/cpu_forms.py`).
_CPU_FLOAT32_COPIES = 2.5


class TokenBudgetError(ZooError):
    """A number of new tokens that is not a positive integer, or whose cache overflows int32 positions."""


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
    prefill_chunk: int | None = None,
) -> Generated:
    """Generates up to `max_new_tokens` tokens after `prompt`. Jit it with the keyword arguments
    static (see `generate_jit`); a given cache (e.g. one placed by a layout) must be empty.
    `decode_constrain` places the decode steps when they use another layout than prefill; the
    cache moves to its decode placement once, between the phases. `prefill_chunk`: the prompt's
    tokens per sequence each layer takes at a time (see `prefill`)."""
    batch, length = prompt.shape
    check_token_budget(length, max_new_tokens)
    if cache is None:
        cache = init_cache(model.config, batch, length + max_new_tokens)
    check_prompt(model, prompt, cache.max_len, max_new_tokens - 1)
    stop = jnp.int32(-1 if stop_token is None else stop_token)

    logits, cache = prefill(model, prompt, cache, constrain=constrain, chunk=prefill_chunk)
    if decode_constrain is None:
        decode_constrain = constrain
    else:
        cache = KVCache(
            decode_constrain.place_whole(cache.k, Role.CACHE, CACHE_NAMES), decode_constrain.place_whole(cache.v, Role.CACHE, CACHE_NAMES), cache.length
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


def check_token_budget(prompt_len: int, max_new_tokens: int) -> None:
    """Raises TokenBudgetError unless `max_new_tokens` is positive and the cache it needs after a
    prompt of `prompt_len` tokens stays within int32 positions."""
    if max_new_tokens < 1:
        raise TokenBudgetError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if prompt_len + max_new_tokens > MAX_CACHE_LEN:
        raise TokenBudgetError(
            f"a prompt of {prompt_len} tokens + {max_new_tokens} new tokens needs a cache of {prompt_len + max_new_tokens}, "
            f"more than the {MAX_CACHE_LEN} int32 positions reach; ask for at most {MAX_CACHE_LEN - prompt_len} new tokens"
        )


def generation_bytes(
    config: ModelConfig,
    batch: int,
    prompt_len: int,
    max_new_tokens: int,
    *,
    weights: str | None = None,
    weight_bytes: int | None = None,
    platform: str = "cpu",
    execution: Execution = AS_DECLARED,
) -> int:
    """About the device memory `generate` needs, worked out before anything is allocated.

    The weights: `weight_bytes` as stored, by default the parameter count at the config's dtype;
    `weights` names their stored format ("bfloat16", "float32" or "int8"; default the config's
    dtype), since on `platform` "cpu" bf16 weights run as `execution` says may add the float32
    copies above. The KV cache, once:
    the layer loop writes it in place (`zoo.kv_cache.LayerSlot`). The generated ids.
    Prefill's working memory: layers run one at a time under the scan, so one layer's activations,
    led by the float32 attention scores and their softmax [B, H, T, S], plus the [B, V] logits.
    """
    cache_len = prompt_len + max_new_tokens
    compute_weight_bytes = config.param_count * dtype_bytes(config.dtype)
    stored_weight_bytes = compute_weight_bytes if weight_bytes is None else weight_bytes
    cpu_copies = platform == "cpu" and (config.dtype if weights is None else weights) == "bfloat16" and not execution.matmuls.float32_product
    copies = _CPU_FLOAT32_COPIES * compute_weight_bytes if cpu_copies else 0
    cache = config.kv_bytes_per_token(config.dtype) * batch * allocated_len(cache_len)
    ids = 4 * batch * max_new_tokens
    scores = 2 * 4 * batch * config.n_heads * prompt_len * cache_len
    logits = 4 * batch * config.vocab
    return int(stored_weight_bytes + copies + cache + ids + scores + logits)
