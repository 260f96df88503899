"""Timing a compiled phase on the local devices (forced CPU devices, a GPU, a TPU slice).

The program is the one `compile_phase` built (the same that `zoo compile` reports), its compile
time kept apart. It runs after a warm-up for several repetitions with `block_until_ready`. Weights
are random (timing does not depend on their values) and created directly in their shards. A decode
step is timed at `context_len`: the cache (sized for context_len + gen_tokens) holds context_len
tokens and the step writes the next.
"""

import time
from functools import partial

import jax
import jax.numpy as jnp

from layouts.compiled.aot import CompiledPhase
from layouts.compiled.local_memory import check_fits_locally
from layouts.workload import Workload
from layouts.sharding import init_in_shards
from zoo.config import ModelConfig
from zoo.kv_cache import KVCache, init_cache


def _materialize(config, weights: str, compiled: CompiledPhase, cache_formats, phase: str, context_len: int, seed: int):
    """Real arrays with the abstract arguments' shardings (the cache in the memory layout the
    compiled step takes it in): random weights, in the form the program runs them, tokens and a cache."""
    model_arguments, token_argument, cache_arguments = compiled.arguments
    shardings = jax.tree.map(lambda leaf: leaf.sharding, model_arguments)
    model = init_in_shards(config, shardings, jax.random.key(seed), weights, compiled.execution)
    tokens = jax.jit(
        lambda key: jax.random.randint(key, token_argument.shape, 0, config.vocab, dtype=jnp.int32), out_shardings=token_argument.sharding
    )(jax.random.key(seed + 1))
    batch, max_len = cache_arguments.k.shape[1], cache_arguments.k.shape[2]
    new_cache = jax.jit(partial(init_cache, config, batch, max_len, str(cache_arguments.k.dtype)), out_shardings=cache_formats)
    written = 0 if phase == "prefill" else context_len

    def fresh_cache(previous: KVCache | None = None) -> KVCache:
        # A step's cache comes out in the layout it goes in (donated, updated in place), so
        # placing it again moves nothing; it would relayout one the compiler gave back otherwise.
        cache = new_cache() if previous is None else jax.device_put(previous, cache_formats)
        return KVCache(cache.k, cache.v, jnp.int32(written))

    return model, tokens, fresh_cache


def step_bytes(compiled: CompiledPhase) -> int:
    """Per-device bytes the step holds while it runs: the compiler's total, or its arguments."""
    memory = compiled.compiler_memory()
    return memory["total"] if memory is not None else compiled.weight_bytes + compiled.kv_bytes


class PhaseTimer:
    """A compiled step ready to time: its model, tokens and cache made once (after checking they
    fit), then `step()` runs it once and returns the seconds it took."""

    def __init__(self, compiled: CompiledPhase, config: ModelConfig, workload: Workload, phase: str, *, seed: int = 0) -> None:
        """Raises LocalMemoryError (one line) before allocating anything when the devices do not
        have the memory for the step."""
        devices = compiled.mesh.devices.flatten().tolist()
        check_fits_locally(step_bytes(compiled) * len(devices), f"this step on {len(devices)} device(s)", devices)
        cache_formats = compiled.program.input_formats[0][2]
        self.program, self.phase = compiled.program, phase
        self.model, self.tokens, self.fresh_cache = _materialize(config, workload.weights, compiled, cache_formats, phase, workload.context_len, seed)
        self.cache = self.fresh_cache()

    def step(self) -> float:
        started = time.perf_counter()
        logits, cache = self.program(self.model, self.tokens, self.cache)
        jax.block_until_ready((logits, cache))
        seconds = time.perf_counter() - started
        # Prefill starts each repetition from an empty cache; decode re-times the same last slot.
        self.cache = self.fresh_cache(cache if self.phase == "decode" else None)
        return seconds


def time_phase(compiled: CompiledPhase, config: ModelConfig, workload: Workload, phase: str, *, repeats: int, warmup: int, seed: int) -> list[float]:
    """Seconds of each timed repetition of the compiled step, after `warmup` untimed ones. Raises
    LocalMemoryError (one line) before allocating anything when the devices do not have the memory."""
    timer = PhaseTimer(compiled, config, workload, phase, seed=seed)
    times = [timer.step() for _ in range(warmup + repeats)]
    return times[warmup:]
