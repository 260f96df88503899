"""Running a matrix: every (cell, source) once, failures as error rows, results cached per cell so
an interrupted matrix resumes where it stopped."""

import dataclasses
import hashlib
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cli.matrix import AUTO, Matrix
from cli.report import write_atomically
from layouts.cell import Cell, error_rows
from layouts.result_row import ResultRow
from zoo.errors import ZooError

CACHE_FOLDER = "cells"


def _estimate(cell: Cell) -> list[ResultRow]:
    from layouts.estimate import estimate

    return estimate(cell)


def _compile(cell: Cell) -> list[ResultRow]:
    from layouts.compile import compile_cell

    return compile_cell(cell)


def _run(cell: Cell) -> list[ResultRow]:
    from layouts.measure import run_cell

    return run_cell(cell)


SOURCE_FUNCTIONS: dict[str, Callable[[Cell], list[ResultRow]]] = {"estimate": _estimate, "compile": _compile, "run": _run}


def resolve_auto(cell: Cell) -> Cell:
    """A cell whose `auto` layouts are replaced by the estimator's fastest FFN and attention
    layout for that phase."""
    from layouts.search import best_layout

    defaults = {field.name: field.default for field in dataclasses.fields(Cell)}
    # While one phase is searched, the other phase's `auto` stands for the default it would resolve from.
    placeholder = {f"{phase}_layout": defaults[f"{phase}_layout"] for phase in ("prefill", "decode") if getattr(cell, f"{phase}_layout") == AUTO}
    choices = {}
    for phase in cell.phases:
        if getattr(cell, f"{phase}_layout") == AUTO:
            best = best_layout(dataclasses.replace(cell, **placeholder), phase)
            choices |= {f"{phase}_layout": best.layout, f"{phase}_attention": best.attention}
    return dataclasses.replace(cell, **(placeholder | choices)) if placeholder else cell


def rows_for(cell: Cell, source: str) -> list[ResultRow]:
    """The cell's rows from one source, one phase at a time so that a phase that cannot run (a
    batch the decode attention cannot split) does not take the other down. Input errors and
    unexpected failures alike become error rows, so the matrix goes on."""
    rows = []
    for phase in cell.phases:
        single = dataclasses.replace(cell, phase=phase)
        try:
            rows += SOURCE_FUNCTIONS[source](resolve_auto(single))
        except ZooError as error:
            rows += error_rows(single, source, str(error))  # type: ignore[arg-type]
        except Exception as error:  # a bug in one cell must not lose the rest of the matrix
            traceback.print_exc(file=sys.stderr)
            rows += error_rows(single, source, f"{type(error).__name__}: {error}")  # type: ignore[arg-type]
    return rows


def cell_key(cell: Cell, source: str) -> str:
    text = json.dumps({"cell": cell.__dict__, "source": source}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def work_items(matrices: list[Matrix]) -> list[tuple[Cell, str]]:
    """Every (cell, source) of the matrices, without repeats, checked before anything runs."""
    items: dict[str, tuple[Cell, str]] = {}
    for matrix in matrices:
        for cell in matrix.cells():
            for source in matrix.source:
                items.setdefault(cell_key(cell, source), (cell, source))
    return list(items.values())


def run_matrix(items: list[tuple[Cell, str]], out_dir: Path, *, show_progress: bool = True, fresh: bool = False) -> tuple[list[ResultRow], int]:
    """Rows of every item, computing only those not cached in `out_dir/cells` (all with `fresh`).
    Returns the rows and how many items were computed now."""
    cache = out_dir / CACHE_FOLDER
    cache.mkdir(parents=True, exist_ok=True)
    rows: list[ResultRow] = []
    computed = 0
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not show_progress, transient=False) as progress:
        task = progress.add_task("bench", total=len(items))
        for cell, source in items:
            path = cache / f"{cell_key(cell, source)}.json"
            progress.update(task, description=f"{source:8s} {cell.model} {cell.prefill_layout}/{cell.decode_layout} {cell.chips} chips b{cell.batch}")
            if path.exists() and not fresh:
                rows.extend(ResultRow(**row) for row in json.loads(path.read_text()))
            else:
                found = rows_for(cell, source)
                write_atomically(path, json.dumps([row.as_dict() for row in found]))
                rows.extend(found)
                computed += 1
            progress.advance(task)
    return rows, computed
