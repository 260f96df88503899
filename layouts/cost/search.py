"""Choosing layouts with the estimator: the paper's rule, a plain search over the registry, and the
Pareto frontier of latency against cost.

The paper's rule (reference/paper.md §4): 2D weight-stationary communication at its optimum mesh is
4·BL·√(EF/n)/bw per layer and weight-gathered's is 4E·√(BLF/n)/bw, equal at BL = E tokens; prefill
uses 2D weight-stationary below that and weight-gathered above it, gathering over the N = X, XY or
XYZ chips nearest to √(BL·n/F); decode uses 2D weight-stationary. Attention runs over heads in
prefill and over the batch in decode when the K/V head is single (multiquery) and the batch divides.
"""

import dataclasses
import math
from collections.abc import Iterable

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_or_error_rows
from layouts.mesh import factorizations, format_mesh
from layouts.bench.result_row import ResultRow
from zoo.errors import ZooError
from zoo.presets import get_preset

# Decode attention layouts from most to least split batch: the first whose batch axes divide wins.
_DECODE_ATTENTION = ("batch", "batch-yz", "batch-z", "heads")


def paper_layout(model: str, phase: str, *, chips: int, batch: int, input_len: int) -> tuple[str, str]:
    """(FFN layout, attention layout) by the paper's rule for one phase."""
    config = get_preset(model)
    if phase == "prefill":
        tokens = batch * input_len
        if tokens < config.d_model:
            return "2d-ws", "heads"
        target = math.sqrt(tokens * chips / config.d_ff)
        side = round(chips ** (1 / 3))
        gathered = {"wg-x": side, "wg-xy": side * side, "wg-xyz": chips}
        return min(gathered, key=lambda name: abs(math.log(gathered[name] / target))), "heads"
    if phase != "decode":
        raise ZooError(f"phase must be prefill or decode, got {phase!r}")
    if not config.is_multiquery:
        return "2d-ws", "heads"
    for attention in _DECODE_ATTENTION:
        ways = math.prod(_balanced_axes(chips, ATTENTION_LAYOUTS[attention].batch_axes))
        if batch % ways == 0:
            return "2d-ws", attention
    return "2d-ws", "heads"


def _balanced_axes(chips: int, axes: tuple[str, ...]) -> list[int]:
    shape = min(factorizations(chips), key=lambda s: max(s) / min(s))
    return [dict(zip("xyz", shape))[axis] for axis in axes]


def candidate_cells(cell: Cell, phase: str, *, all_meshes: bool = False) -> list[Cell]:
    """`cell` for `phase` with every registered FFN layout meant for that phase, every attention
    layout, and the layout's preferred mesh (or every factorization of the chip count)."""
    meshes = [format_mesh(shape) for shape in factorizations(cell.chips)] if all_meshes else [None]
    cells = []
    for name, layout in FFN_LAYOUTS.items():
        if layout.phase not in (phase, "any"):
            continue
        for attention in ATTENTION_LAYOUTS:
            for mesh in meshes:
                layouts = {f"{phase}_layout": name, f"{phase}_attention": attention}
                cells.append(dataclasses.replace(cell, phase=phase, mesh=mesh, **layouts))
    return cells


def best_layout(
    cell: Cell, phase: str, *, mode: str = "calibrated", objective: str = "latency", all_meshes: bool = False
) -> ResultRow:
    """The estimate row of the fastest (objective `latency`) or cheapest (`cost`) layout for
    `phase` of `cell` among those that divide the model and fit in HBM."""
    if objective not in ("latency", "cost"):
        raise ZooError(f"objective must be latency or cost, got {objective!r}")
    key = (lambda row: row.latency_s) if objective == "latency" else (lambda row: row.cost_chip_ms_per_token)
    rows = [row for candidate in candidate_cells(cell, phase, all_meshes=all_meshes) for row in estimate_or_error_rows(candidate, mode)]
    usable = [row for row in rows if row.status == "ok" and row.fits]
    if not usable:
        reasons = sorted({row.error or "does not fit in HBM" for row in rows})
        raise ZooError(f"no layout can run {cell.model} {phase} on {cell.chips} {cell.target} chips at batch {cell.batch}: {reasons[0]}")
    return min(usable, key=key)


def pareto_frontier(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """The rows no other row strictly dominates in (latency_s, cost_chip_ms_per_token): another
    row dominates when it is no worse in both and better in one. Error and non-fitting rows are
    left out. Sorted by latency."""
    points = [row for row in rows if row.status == "ok" and row.fits]

    def dominates(a: ResultRow, b: ResultRow) -> bool:
        no_worse = a.latency_s <= b.latency_s and a.cost_chip_ms_per_token <= b.cost_chip_ms_per_token
        return no_worse and (a.latency_s < b.latency_s or a.cost_chip_ms_per_token < b.cost_chip_ms_per_token)

    frontier = [row for row in points if not any(dominates(other, row) for other in points)]
    return sorted(frontier, key=lambda row: (row.latency_s, row.cost_chip_ms_per_token))


def pareto_sweep(
    model: str,
    phase: str,
    *,
    chips: Iterable[int],
    batches: Iterable[int],
    weights: Iterable[str] = ("bf16", "int8"),
    target: str = "tpu-v4",
    input_len: int = 2048,
    gen_tokens: int = 64,
    mode: str = "calibrated",
) -> list[ResultRow]:
    """The latency-cost frontier of `phase` over chips × batch × registered layouts × weight dtype."""
    rows = []
    for chip_count in chips:
        for batch in batches:
            for dtype in weights:
                cell = Cell(model, chips=chip_count, batch=batch, weights=dtype, target=target, input_len=input_len, gen_tokens=gen_tokens)
                for candidate in candidate_cells(cell, phase):
                    rows += estimate_or_error_rows(candidate, mode)
    return pareto_frontier(rows)
