"""Estimate rows: a Cell costed by the analytical model, one DESIGN.md row per phase (source
`estimate`), with the breakdown behind each number in `details`.

    estimate(Cell("palm-540b-64h", chips=64, batch=64, decode_attention="batch", weights="int8"), mode="calibrated")

Per-chip memory is what the phase holds at once: the stored weights, the KV cache for the context
plus the generated tokens, and `other`: one layer's live activations (the residual stream in and
out, and the FFN hidden with the fused query heads), the logits, and for a weight-gathered layout
two chunks of a gathered weight (the looped collective einsum of §3.5 streams the largest matrix
in pieces the size of one stored shard, double-buffered, rather than holding a whole layer).
"""

import dataclasses
import functools

from layouts.cost.calibration import get_mode
from layouts.bench.cell import Cell, ResolvedCell, error_rows
from layouts.cost.terms import ACTIVATION_BYTES, axis_ways, phase_passes, phase_template
from layouts.mesh import format_mesh
from layouts.bench.result_row import ResultRow
from zoo.config import dtype_bytes
from zoo.errors import ZooError


def _memory(resolved: ResolvedCell, phase: str, mesh_shape) -> dict[str, int]:
    cell, config = resolved.cell, resolved.config
    template = phase_template(resolved.partitionings[phase], phase)
    ways = axis_ways(mesh_shape)
    matrix_bytes = 1 if cell.weights == "int8" else dtype_bytes(config.dtype)
    weights = sum(term.value(ways, 1, 1, 1) * (matrix_bytes if matrix else dtype_bytes(config.dtype)) for term, matrix in template.stored_weights)
    cache_length = cell.cache_len(phase)
    kv_cache = template.kv_capacity.value(ways, cell.batch, 1, cache_length) * config.n_layers * dtype_bytes(cell.kv_dtype)
    length = cell.input_len if phase == "prefill" else 1
    residual, hidden, *gathered = template.activation_elements
    other = (2 * residual.value(ways, cell.batch, length, 1) + hidden.value(ways, cell.batch, length, 1)) * ACTIVATION_BYTES
    other += 2 * max((term.value(ways, 1, 1, 1) for term in gathered), default=0) * matrix_bytes
    other += template.head_flops.value(ways, cell.batch, 1, 1) / (2 * config.d_model) * 4  # fp32 logits
    sizes = {"weights": int(weights), "kv_cache": int(kv_cache), "other": int(other)}
    return sizes | {"total": sum(sizes.values())}


@functools.cache
def _calibration_dict(calibration) -> tuple[tuple[str, object], ...]:
    return tuple(dataclasses.asdict(calibration).items())


def _factors(calibration) -> dict:
    return dict(_calibration_dict(calibration))


def _row(resolved: ResolvedCell, phase: str, mode: str) -> ResultRow:
    cell, config = resolved.cell, resolved.config
    calibration = get_mode(mode)
    passes = phase_passes(resolved, phase)
    chip, reported = passes.chip, passes.reported
    step = calibration.pass_seconds(reported, chip)
    latency = step if phase == "prefill" else calibration.pass_seconds(passes.mean, chip) * passes.passes
    memory = _memory(resolved, phase, passes.mesh_shape)
    layers = reported.layers
    comm = {kind: layers * reported.layer.comm_bytes[kind] + reported.head.comm_bytes[kind] for kind in reported.layer.comm_bytes}
    details = {
        "mode": mode,
        "calibration": _factors(calibration),
        "model_variant": config.description,
        "params": config.param_count,
        "mfu_params": config.mfu_params,
        "chip": chip.name,
        "peak_flops": chip.peak_flops,
        "layers": layers,
        # Seconds of one pass (the reported step) at the chip's peaks, before the mode combines them.
        "compute_s": layers * reported.layer.compute_seconds(chip) + reported.head.compute_seconds(chip),
        "memory_s": layers * reported.layer.memory_seconds(chip) + reported.head.memory_seconds(chip),
        "comm_s": layers * reported.layer.comm_seconds + reported.head.comm_seconds,
        "collectives": layers * reported.layer.collectives + reported.head.collectives,
        "matmul_flops_per_chip": layers * reported.layer.matmul_flops + reported.head.matmul_flops,
        "attention_flops_per_chip": layers * reported.layer.attention_flops,
        "weight_bytes_read_per_chip": layers * reported.layer.weight_bytes + reported.head.weight_bytes,
        "kv_bytes_per_chip": layers * reported.layer.kv_bytes,
        "per_layer": {
            "matmul_flops": reported.layer.matmul_flops,
            "attention_flops": reported.layer.attention_flops,
            "weight_bytes": reported.layer.weight_bytes,
            "kv_bytes": reported.layer.kv_bytes,
            "comm_bytes": dict(reported.layer.comm_bytes),
            "collectives": reported.layer.collectives,
            "seconds": calibration.stage_seconds(reported.layer, chip),
        },
    }
    row = resolved.row(phase, "estimate", hbm_bytes=chip.hbm_bytes)
    row.mesh = format_mesh(passes.mesh_shape)
    row.step_time_s = step
    row.latency_s = latency
    row.tokens_per_s = passes.tokens / latency
    row.mfu = 2 * config.mfu_params * passes.tokens / (cell.chips * chip.peak_flops * latency)
    row.cost_chip_ms_per_token = cell.chips * latency * 1000 / passes.tokens
    row.memory_per_chip_bytes = memory
    row.fits = memory["total"] <= chip.hbm_bytes
    row.comm_bytes_per_chip = comm | {"other": 0.0}
    row.details = details
    return row


def estimate(cell: Cell, mode: str = "calibrated") -> list[ResultRow]:
    """One row per phase of `cell`. Bad input (an indivisible dimension, a chip count the chip
    cannot form, an unknown name) raises the library's one-line ZooError."""
    get_mode(mode)
    resolved = cell.resolve()
    return [_row(resolved, phase, mode) for phase in cell.phases]


def estimate_or_error_rows(cell: Cell, mode: str = "calibrated") -> list[ResultRow]:
    """Like `estimate`, but a cell that cannot be estimated gives error rows (one per phase,
    the cell's keys kept and a one-line reason) instead of raising: what a matrix runner wants."""
    try:
        return estimate(cell, mode)
    except ZooError as error:
        return error_rows(cell, "estimate", str(error))
