"""Measured runs: a cell's real prefill and decode steps executed on the local devices (forced CPU
devices, a GPU, a TPU slice) and timed.

Each phase is compiled once (the same program `zoo compile` reports, built by `compile_phase`),
timed apart from the steps; then run after a warm-up for several repetitions with
`block_until_ready`, and the median is reported. Weights are random (timing does not depend on
their values) and created directly in their shards. A decode step is timed at `context_len`: the
cache (sized for context_len + gen_tokens) holds context_len tokens and the step writes the next.
"""

import os
import statistics
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from layouts.bench.cell import Cell, ResolvedCell
from layouts.compiled.aot import compile_phase
from layouts.cost.terms import check_phase
from layouts.errors import TargetError
from layouts.compiled.hlo_analysis import collectives, row_bytes
from layouts.bench.result_row import ResultRow
from layouts.compiled.local_memory import LocalMemoryError, check_fits_locally
from layouts.compiled.targets import LOCAL, local_chip, local_chip_count
from zoo.kv_cache import KVCache, init_cache
from zoo.transformer import Transformer

def _materialize(config, weights: str, arguments, phase: str, context_len: int, seed: int):
    """Real arrays with the abstract arguments' shardings: random weights, tokens and a cache."""
    from zoo.quantization import quantize

    model_arguments, token_argument, cache_arguments = arguments
    model_shardings = jax.tree.map(lambda leaf: leaf.sharding, model_arguments)
    make_model = (lambda key: quantize(Transformer(config, key=key))) if weights == "int8" else (lambda key: Transformer(config, key=key))
    model = jax.jit(make_model, out_shardings=model_shardings)(jax.random.key(seed))
    tokens = jax.jit(
        lambda key: jax.random.randint(key, token_argument.shape, 0, config.vocab, dtype=jnp.int32), out_shardings=token_argument.sharding
    )(jax.random.key(seed + 1))
    batch, max_len = cache_arguments.k.shape[1], cache_arguments.k.shape[2]
    cache_shardings = jax.tree.map(lambda leaf: leaf.sharding, cache_arguments)
    new_cache = jax.jit(partial(init_cache, config, batch, max_len, str(cache_arguments.k.dtype)), out_shardings=cache_shardings)
    written = 0 if phase == "prefill" else context_len

    def fresh_cache(previous: KVCache | None = None) -> KVCache:
        cache = new_cache() if previous is None else previous
        return KVCache(cache.k, cache.v, jnp.int32(written))

    return model, tokens, fresh_cache


def run_phase(resolved: ResolvedCell, phase: str, *, repeats: int, warmup: int, seed: int) -> ResultRow:
    cell, config = resolved.cell, resolved.config
    chip = local_chip()
    devices = jax.devices()[: cell.chips]
    row = resolved.row(phase, "run", target=f"local:{devices[0].platform}", hbm_bytes=chip.hbm_bytes if chip else None)
    row.details = {"device_kind": devices[0].device_kind, "repeats": repeats, "warmup": warmup}

    compiled, mesh, arguments, compile_seconds = compile_phase(resolved, phase, devices)
    row.compile_time_s = compile_seconds
    if isinstance(compiled, Exception):
        return row.failed(f"compile failed: {compiled}")
    weight_bytes = sum(int(np.prod(leaf.sharding.shard_shape(leaf.shape))) * leaf.dtype.itemsize for leaf in jax.tree.leaves(arguments[0]))
    cache = arguments[2]
    kv_bytes = sum(int(np.prod(leaf.sharding.shard_shape(leaf.shape))) * leaf.dtype.itemsize for leaf in (cache.k, cache.v))
    memory = compiled.memory_analysis()
    total = None
    if memory is not None:
        total = int(memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes + memory.temp_size_in_bytes)
    needed = total if total is not None else weight_bytes + kv_bytes
    try:
        check_fits_locally(needed * len(devices), f"this step on {len(devices)} device(s)", devices)
    except LocalMemoryError as error:
        return row.failed(f"does not fit: {error}")

    model, tokens, fresh_cache = _materialize(config, cell.weights, arguments, phase, cell.decode_context, seed)
    cache = fresh_cache()
    times = []
    for repetition in range(warmup + repeats):
        started = time.perf_counter()
        logits, cache = compiled(model, tokens, cache)
        jax.block_until_ready((logits, cache))
        if repetition >= warmup:
            times.append(time.perf_counter() - started)
        # Prefill starts each repetition from an empty cache; decode re-times the same last slot.
        cache = fresh_cache(cache if phase == "decode" else None)

    step = statistics.median(times)
    tokens_per_step = cell.batch * cell.input_len if phase == "prefill" else cell.batch
    row.step_time_s = step
    row.latency_s = step if phase == "prefill" else step * cell.gen_tokens
    row.tokens_per_s = tokens_per_step / step
    row.cost_chip_ms_per_token = cell.chips * step * 1000 / tokens_per_step
    row.memory_per_chip_bytes = {
        "weights": weight_bytes,
        "kv_cache": kv_bytes,
        "other": None if total is None else total - weight_bytes - kv_bytes,
        "total": total,
    }
    row.fits = True
    # The executed program is the compiled one: its collectives are known exactly.
    row.comm_bytes_per_chip = row_bytes(collectives(compiled, mesh))
    row.details["step_times_s"] = times
    if phase == "decode":
        row.details["ms_per_token"] = step * 1000
    if chip is not None:
        row.mfu = 2 * config.mfu_params * tokens_per_step / (cell.chips * chip.peak_flops * step)
        # Each step reads every weight and the whole KV cache from HBM once.
        row.details["memory_bandwidth_utilisation"] = (weight_bytes + kv_bytes) / step / chip.hbm_bandwidth
    return row


def run_cell(cell: Cell, *, repeats: int = 5, warmup: int = 1, seed: int = 0) -> list[ResultRow]:
    """One `run` row per phase, measured on the local devices. Input errors raise; a cell that
    does not fit the local memory or fails to compile is an error row."""
    resolved = cell.resolve()
    if repeats < 1 or warmup < 0:
        raise TargetError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    if cell.target != LOCAL:
        raise TargetError(f"zoo run measures on the local devices, so its target is {LOCAL}, not {cell.target!r}; `zoo compile --target {cell.target}` compiles for it")
    present = jax.devices()
    if cell.chips > len(present):
        hint = f" (on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count={cell.chips} splits it into {cell.chips})" if present[0].platform == "cpu" else ""
        raise TargetError(f"zoo run measures on the local devices: the cell needs {cell.chips}, {len(present)} {present[0].platform} device(s) are present; pass --chips {local_chip_count()}{hint}")
    for phase in cell.phases:
        check_phase(resolved, phase)
    return [run_phase(resolved, phase, repeats=repeats, warmup=warmup, seed=seed) for phase in cell.phases]
