"""`auto` layouts: a cell's phases given the estimator's fastest FFN and attention layout."""

import dataclasses

from layouts.bench.cell import Cell

AUTO = "auto"


def resolve_auto(cell: Cell) -> Cell:
    """A cell whose `auto` layouts are replaced by the estimator's fastest FFN and attention
    layout for that phase."""
    from layouts.cost.search import best_layout

    defaults = {field.name: field.default for field in dataclasses.fields(Cell)}
    # While one phase is searched, the other phase's `auto` stands for the default it would resolve from.
    placeholder = {f"{phase}_layout": defaults[f"{phase}_layout"] for phase in ("prefill", "decode") if getattr(cell, f"{phase}_layout") == AUTO}
    choices = {}
    for phase in cell.phases:
        if getattr(cell, f"{phase}_layout") == AUTO:
            best = best_layout(dataclasses.replace(cell, **placeholder), phase)
            choices |= {f"{phase}_layout": best.layout, f"{phase}_attention": best.attention}
    return dataclasses.replace(cell, **(placeholder | choices)) if placeholder else cell
