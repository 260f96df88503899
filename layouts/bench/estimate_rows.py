"""Estimate rows: a Cell costed by the analytical model (`layouts.cost.estimate_phase`), one
result row (README.md, "Result rows") per phase (source `estimate`), with the breakdown behind each number in `details`.

    estimate_cell(Cell("palm-540b-64h", chips=64, batch=64, decode_attention="batch", weights="int8"), mode="calibrated")
"""

from layouts.bench.cell import Cell, error_rows
from layouts.bench.result_row import ResultRow
from layouts.compiled.targets import slice_shape, target_chip
from layouts.cost.calibration import get_mode
from layouts.cost.estimator import estimate_phase
from layouts.mesh import format_mesh
from zoo.errors import ZooError


def estimate_cell(cell: Cell, mode: str = "calibrated") -> list[ResultRow]:
    """One row per phase of `cell`. Bad input (an indivisible dimension, a chip count the chip
    cannot form, an unknown name) raises the library's one-line ZooError."""
    get_mode(mode)
    resolved = cell.resolve()
    chip = target_chip(cell.target, cell.chips)
    shape = slice_shape(cell.target, cell.chips)
    rows = []
    for phase in cell.phases:
        found = estimate_phase(resolved.partitionings[phase], chip, resolved.mesh_shapes[phase], resolved.workload(phase), phase, mode, cell.collective_matmul, shape)
        row = resolved.row(phase, "estimate", hbm_bytes=chip.program_hbm_bytes)
        row.mesh = format_mesh(found.mesh_shape)
        row.step_time_s, row.latency_s, row.tokens_per_s = found.step_time_s, found.latency_s, found.tokens_per_s
        row.mfu, row.cost_chip_ms_per_token = found.mfu, found.cost_chip_ms_per_token
        row.memory_per_chip_bytes, row.fits, row.comm_bytes_per_chip = found.memory_per_chip_bytes, found.fits, found.comm_bytes_per_chip
        row.details = found.details
        rows.append(row)
    return rows


def estimate_or_error_rows(cell: Cell, mode: str = "calibrated") -> list[ResultRow]:
    """Like `estimate_cell`, but a cell that cannot be estimated gives error rows (one per phase,
    the cell's keys kept and a one-line reason) instead of raising: what a matrix runner wants."""
    try:
        return estimate_cell(cell, mode)
    except ZooError as error:
        return error_rows(cell, "estimate", str(error))
