"""Capacity planning: the largest batch, or the longest context, a cell's layout serves on its chips.

The estimate finds the boundary exactly (memory grows with the batch and the context, so `fits`
flips once); compiling confirms it: a bisection on the compiler's own verdict, started at the
estimate's boundary, to within `context_tolerance` of it for a context and to one batch step for a
batch. A batch takes the steps the layout can split (multiples of the ways its batch axes need).

The context searched is a decode step's `context_len` (tokens in the cache when decoding starts;
the cache also holds `gen_tokens`) and a prefill's `input_len` (the prompt, in the chunk the cell
takes: by default the largest that fits).

    capacity(Cell("palm-540b-64h", chips=64, batch=128, decode_attention="batch", phase="decode"), "context", confirm=True)
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.bench.result_row import ResultRow
from layouts.compiled.targets import target_chip
from layouts.layout import MESH_AXES
from zoo.errors import ZooError
from zoo.generation import MAX_CACHE_LEN
from zoo.logical_axes import ATTENTION_BATCH, Role

LIMITS = ("context", "batch")
CONTEXT_TOLERANCE = 1 / 256  # a compiled context boundary to within this fraction of the estimate's


class CapacityError(ZooError):
    """A capacity search that cannot start: an unknown limit, or a phase it does not apply to."""


@dataclasses.dataclass
class CapacityRow:
    """One phase's boundary: `estimated` is the largest value of `field` whose estimate fits,
    `compiled` the largest whose compiled program fits (None unless confirmed), each with the
    memory per chip it needs there; None where not even the smallest value fits."""

    model: str
    layout: str
    attention: str
    chips: int
    mesh: str
    target: str
    phase: str
    weights: str
    field: str  # "context_len", "input_len" or "batch": what was searched
    batch: int | None
    context_len: int | None
    input_len: int | None
    gen_tokens: int
    step: int  # the granularity of the search
    kv_share: float | None  # the KV cache held to this share of the chip's HBM too (Table 1's rule)
    estimated: int | None
    estimated_bytes: int | None
    compiled: int | None = None
    compiled_above: int | None = None  # the smallest value compiled that did not fit, if any
    compiled_bytes: int | None = None
    compiles: int = 0  # programs compiled to confirm the boundary
    hbm_bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def capacity(
    cell: Cell, limit: str, *, confirm: bool = False, kv_share: float | None = None, context_tolerance: float = CONTEXT_TOLERANCE
) -> list[CapacityRow]:
    """One row per phase of `cell`: the longest context (`limit` "context") at the cell's batch, or
    the largest batch (`limit` "batch") at its context, by the estimate and, if `confirm`, by
    compiling (see the module). `kv_share`: the KV cache must also stay within that share of the
    chip's HBM (the paper's Table 1 gives it 30% of 32 GiB). Bad input raises ZooError before
    anything is compiled."""
    if limit not in LIMITS:
        raise CapacityError(f"limit must be one of {', '.join(LIMITS)}, got {limit!r}")
    if kv_share is not None and not 0 < kv_share <= 1:
        raise CapacityError(f"kv_share is a share of the chip's HBM, above 0 and at most 1, got {kv_share!r}")
    kv_budget = None if kv_share is None else kv_share * target_chip(cell.target, cell.chips).hbm_bytes
    resolved = cell.resolve()
    rows = []
    for phase in cell.phases:
        at = dataclasses.replace(cell, phase=phase)
        field = "batch" if limit == "batch" else ("input_len" if phase == "prefill" else "context_len")
        step = _batch_step(at) if field == "batch" else 1
        with_value = lambda value, field=field, at=at: dataclasses.replace(at, **{field: value})  # noqa: E731
        start = at.decode_context if field == "context_len" else getattr(at, field)
        estimated, _, estimated_row = _boundary(lambda value: estimate_cell(with_value(value))[0], start, step, step, kv_budget)
        sizes = {"batch": cell.batch, "context_len": cell.decode_context if phase == "decode" else None, "input_len": cell.input_len if phase == "prefill" else None}
        row = CapacityRow(
            model=cell.model, layout=resolved.layout_name(phase), attention=resolved.attention_name(phase), chips=cell.chips,
            mesh=resolved.mesh_name(phase), target=cell.target, phase=phase, weights=cell.weights, field=field,
            **(sizes | {field: None}), gen_tokens=cell.gen_tokens, step=step, kv_share=kv_share,
            estimated=estimated, estimated_bytes=_total(estimated_row), hbm_bytes=estimated_row.hbm_bytes if estimated_row else None,
        )  # fmt: skip
        if confirm and estimated is not None:
            compiled_rows: list[ResultRow] = []

            def compiled_at(value: int, compiled_rows=compiled_rows, with_value=with_value) -> ResultRow:
                compiled_rows.append(compile_cell(with_value(value))[0])
                return compiled_rows[-1]

            tolerance = step if field == "batch" else max(1, int(estimated * context_tolerance))
            row.compiled, row.compiled_above, compiled_row = _boundary(compiled_at, estimated, step, tolerance, kv_budget)
            row.compiled_bytes, row.compiles = _total(compiled_row), len(compiled_rows)
        rows.append(row)
    return rows


def _total(row: ResultRow | None) -> int | None:
    return None if row is None else row.memory_per_chip_bytes["total"]


def _fits(row: ResultRow, kv_budget: float | None) -> bool:
    if kv_budget is not None and row.memory_per_chip_bytes["kv_cache"] is not None and row.memory_per_chip_bytes["kv_cache"] > kv_budget:
        return False
    if row.status == "ok":
        return bool(row.fits)
    if row.fits is False:  # a program that does not fit is an error row with its figures kept
        return False
    raise ZooError(f"capacity search stopped: {row.error}")


def _boundary(
    row_at: Callable[[int], ResultRow], start: int, step: int, tolerance: int, kv_budget: float | None
) -> tuple[int | None, int | None, ResultRow | None]:
    """The largest multiple of `step` whose row fits (rows fit below a boundary and not above),
    to within `tolerance`, searched from `start`; the smallest found not to fit; and the fitting
    one's row. From `start` the bracket grows or shrinks by a quarter until it holds the boundary,
    then halves."""
    snap = lambda value: max(step, value // step * step)  # noqa: E731
    fitting: dict[int, ResultRow] = {}

    def fits(value: int) -> bool:
        row = row_at(value)
        if _fits(row, kv_budget):
            fitting[value] = row
            return True
        return False

    value = snap(start)
    if fits(value):
        low, high = value, None
        while high is None:
            grown = min(MAX_CACHE_LEN // step * step, snap(value * 5 // 4 + step))
            if grown == value:
                return value, None, fitting[value]
            if fits(grown):
                value = low = grown
            else:
                high = grown
    else:
        low, high = None, value
        while low is None:
            if value == step:
                return None, high, None
            value = snap(value * 4 // 5)
            if fits(value):
                low = value
            else:
                high = value
    while high - low > tolerance:
        middle = snap((low + high) // 2)
        if middle in (low, high):
            break
        if fits(middle):
            low = middle
        else:
            high = middle
    return low, high, fitting[low]


def _batch_step(cell: Cell) -> int:
    """The smallest batch the cell's layouts split over their mesh whole (every larger one is a
    multiple of it, and a smaller one splits over fewer axes: `layouts.fit`): the ways of
    the axes attention splits the batch over, the larger of the two phases'."""
    resolved = dataclasses.replace(cell, batch=cell.chips).resolve()  # every split divides the chip count
    return max(
        math.prod(dict(zip(MESH_AXES, resolved.mesh_shapes[phase]))[axis] for axis in resolved.partitionings[phase].axes(Role.ACTIVATION, ATTENTION_BATCH))
        for phase in cell.phases
    )
