"""`auto` layouts, and the best layout for a cell: the estimator's search (`layouts.cost.search`)
applied to a benchmark cell."""

import dataclasses

from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.bench.result_row import ResultRow
from layouts.compiled.targets import target_chip
from layouts.cost.search import Choice, best_choice
from layouts.mesh import format_mesh
from zoo.presets import get_preset

AUTO = "auto"


def best_for(cell: Cell, phase: str, *, mode: str = "calibrated", objective: str = "latency", all_meshes: bool = False) -> Choice:
    """The registered layout the estimator finds fastest (or cheapest) for `phase` of `cell`."""
    chip = target_chip(cell.target, cell.chips)
    return best_choice(get_preset(cell.model), chip, cell.chips, cell.workload, phase, mode=mode, objective=objective, all_meshes=all_meshes)


def best_layout(cell: Cell, phase: str, *, mode: str = "calibrated", objective: str = "latency", all_meshes: bool = False) -> ResultRow:
    """The estimate row of `phase` of `cell` under its best layout (see `best_for`)."""
    choice = best_for(cell, phase, mode=mode, objective=objective, all_meshes=all_meshes)
    chosen = dataclasses.replace(
        cell, phase=phase, mesh=format_mesh(choice.mesh_shape) if all_meshes else None,
        **{f"{phase}_layout": choice.layout, f"{phase}_attention": choice.attention},
    )  # fmt: skip
    (row,) = estimate_cell(chosen, mode)
    return row


def resolve_auto(cell: Cell) -> Cell:
    """A cell whose `auto` layouts are replaced by the estimator's fastest FFN and attention
    layout for that phase."""
    defaults = {field.name: field.default for field in dataclasses.fields(Cell)}
    # While one phase is searched, the other phase's `auto` stands for the default it would resolve from.
    placeholder = {f"{phase}_layout": defaults[f"{phase}_layout"] for phase in ("prefill", "decode") if getattr(cell, f"{phase}_layout") == AUTO}
    choices = {}
    for phase in cell.phases:
        if getattr(cell, f"{phase}_layout") == AUTO:
            best = best_for(dataclasses.replace(cell, **placeholder), phase)
            choices |= {f"{phase}_layout": best.layout, f"{phase}_attention": best.attention}
    return dataclasses.replace(cell, **(placeholder | choices)) if placeholder else cell
