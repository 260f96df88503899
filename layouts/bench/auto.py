"""`auto` layouts, and the best layout for a cell: the estimator's search (`layouts.cost.search`)
applied to a benchmark cell."""

import dataclasses

from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.bench.result_row import ResultRow
from layouts.compiled.targets import target_chip
from layouts.cost.search import Choice, best_choice
from layouts.layout import Layout
from layouts.mesh import format_mesh
from layouts.registry import get_layout
from zoo.presets import get_preset

AUTO = "auto"


def best_for(cell: Cell, phase: str, *, mode: str = "calibrated", objective: str = "latency", all_meshes: bool = False, ffn: Layout | None = None) -> Choice:
    """The registered layout the estimator finds fastest (or cheapest) for `phase` of `cell`
    (the best attention layout for `ffn`, if given)."""
    chip = target_chip(cell.target, cell.chips)
    return best_choice(get_preset(cell.model), chip, cell.chips, cell.workload, phase, mode=mode, objective=objective, all_meshes=all_meshes, ffn=ffn)


def best_layout(cell: Cell, phase: str, *, mode: str = "calibrated", objective: str = "latency", all_meshes: bool = False) -> ResultRow:
    """The estimate row of `phase` of `cell` under its best layout (see `best_for`)."""
    choice = best_for(cell, phase, mode=mode, objective=objective, all_meshes=all_meshes)
    chosen = dataclasses.replace(
        cell, phase=phase, mesh=format_mesh(choice.mesh_shape) if all_meshes else None,
        **{f"{phase}_layout": choice.layout, f"{phase}_attention": choice.attention},
    )  # fmt: skip
    (row,) = estimate_cell(chosen, mode)
    return row


def is_auto(cell: Cell) -> bool:
    """Whether some layout of `cell` is left to the estimator."""
    return AUTO in (cell.prefill_layout, cell.decode_layout, cell.prefill_attention, cell.decode_attention)


def resolve_auto(cell: Cell) -> Cell:
    """A cell whose `auto` layouts are replaced by the estimator's fastest for that phase: an
    `auto` FFN layout with its attention layout, an `auto` attention layout alone for the FFN
    layout given."""
    defaults = {field.name: field.default for field in dataclasses.fields(Cell)}
    # While one phase is searched, the other phase's `auto` stands for the default it would resolve from.
    placeholder = {
        f"{phase}_{kind}": defaults[f"{phase}_{kind}"] for phase in ("prefill", "decode") for kind in ("layout", "attention") if getattr(cell, f"{phase}_{kind}") == AUTO
    }
    choices = {}
    for phase in cell.phases:
        layout, attention = getattr(cell, f"{phase}_layout"), getattr(cell, f"{phase}_attention")
        if layout == AUTO:
            best = best_for(dataclasses.replace(cell, **placeholder), phase)
            choices |= {f"{phase}_layout": best.layout, f"{phase}_attention": best.attention}
        elif attention == AUTO:
            best = best_for(dataclasses.replace(cell, **placeholder), phase, ffn=get_layout(layout))
            choices |= {f"{phase}_attention": best.attention}
    return dataclasses.replace(cell, **(placeholder | choices)) if placeholder else cell
