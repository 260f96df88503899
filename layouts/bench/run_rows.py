"""Run rows: a Cell's phases compiled for and timed on the local devices (`layouts.compiled`), one
result row (README.md, "Result rows") per phase (source `run`): the median of the timed repetitions, compile time apart."""

import statistics

import jax

from layouts.bench.cell import Cell
from layouts.bench.result_row import ResultRow
from layouts.compiled.aot import CompiledPhase, compile_phase
from layouts.compiled.hlo_analysis import row_bytes
from layouts.compiled.local_memory import LocalMemoryError
from layouts.compiled.targets import LOCAL, local_chip, local_chip_count
from layouts.compiled.timing import step_bytes, time_phase
from layouts.cost.metrics import chip_ms_per_token, model_flops_utilization
from layouts.cost.terms import check_phase
from layouts.errors import TargetError
from layouts.hardware import Chip
from zoo.config import ModelConfig


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
        check_phase(resolved.partitionings[phase], resolved.mesh_shapes[phase], cell.batch, phase)
    chip = local_chip()
    devices = present[: cell.chips]
    rows = []
    for phase in cell.phases:
        row = resolved.row(phase, "run", target=f"local:{devices[0].platform}", hbm_bytes=chip.hbm_bytes if chip else None)
        row.details = {"device_kind": devices[0].device_kind, "repeats": repeats, "warmup": warmup, "processes": jax.process_count()}
        compiled = compile_phase(resolved.partitionings[phase], resolved.mesh_shapes[phase], resolved.workload(phase), phase, devices, cell.partitioner, cell.collective_matmul)
        row.compile_time_s = compiled.seconds
        row.details["compile_cache"] = compiled.cache
        row.details["execution"] = compiled.execution.describe()
        if compiled.failure is not None:
            rows.append(row.failed(f"compile failed: {compiled.failure_reason}"))
            continue
        try:
            times = time_phase(compiled, resolved.config, resolved.workload(phase), phase, repeats=repeats, warmup=warmup, seed=seed)
        except LocalMemoryError as error:
            rows.append(row.failed(f"does not fit: {error}"))
            continue
        rows.append(_fill(row, cell, resolved.config, compiled, times, chip))
    return rows


def _fill(row: ResultRow, cell: Cell, config: ModelConfig, compiled: CompiledPhase, times: list[float], chip: Chip | None) -> ResultRow:
    step = statistics.median(times)
    tokens = cell.batch * cell.input_len if row.phase == "prefill" else cell.batch
    weights, kv_cache, total = compiled.weight_bytes, compiled.kv_bytes, step_bytes(compiled)
    row.step_time_s = step
    row.latency_s = step if row.phase == "prefill" else step * cell.gen_tokens
    row.tokens_per_s = tokens / step
    row.cost_chip_ms_per_token = chip_ms_per_token(cell.chips, step, tokens)
    row.memory_per_chip_bytes = {"weights": weights, "kv_cache": kv_cache, "other": total - weights - kv_cache, "total": total}
    row.fits = True
    # The executed program is the compiled one: its collectives are known exactly.
    row.comm_bytes_per_chip = row_bytes(compiled.collectives())
    row.details["step_times_s"] = times
    if row.phase == "decode":
        row.details["ms_per_token"] = step * 1000
    if chip is not None:
        row.mfu = model_flops_utilization(config, tokens, cell.chips, chip.peak_flops, step)
        # Each step reads every weight and the whole KV cache from HBM once.
        row.details["memory_bandwidth_utilisation"] = (weights + kv_cache) / step / chip.hbm_bandwidth
    return row
