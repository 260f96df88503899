"""Running a matrix: every (cell, source) once, failures as error rows, results cached per cell so
an interrupted matrix resumes where it stopped."""

import dataclasses
import sys
import traceback
from collections import Counter
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from layouts.bench.auto import resolve_auto
from layouts.bench.cache import CellCache, Lookup, cell_key
from layouts.bench.cell import Cell, error_rows
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.bench.matrix import Matrix
from layouts import processes
from layouts.bench.result_row import ResultRow
from layouts.bench.run_rows import run_cell
from zoo.errors import ZooError

SOURCE_FUNCTIONS: dict[str, Callable[[Cell], list[ResultRow]]] = {"estimate": estimate_cell, "compile": compile_cell, "run": run_cell}


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
            if processes.count() > 1:
                raise  # the processes may no longer run the same steps: each would wait on the others
            traceback.print_exc(file=sys.stderr)
            rows += error_rows(single, source, f"{type(error).__name__}: {error}")  # type: ignore[arg-type]
    return rows


def work_items(matrices: list[Matrix]) -> list[tuple[Cell, str]]:
    """Every (cell, source) of the matrices, without repeats, checked before anything runs."""
    items: dict[str, tuple[Cell, str]] = {}
    for matrix in matrices:
        for cell in matrix.cells():
            for source in matrix.source:
                items.setdefault(cell_key(cell, source), (cell, source))
    return list(items.values())


def run_matrix(items: list[tuple[Cell, str]], cache: CellCache | None, *, show_progress: bool = True, fresh: bool = False) -> tuple[list[ResultRow], Counter]:
    """Rows of every item, computing only those the cache does not hold for this code and these
    versions (all with `fresh`). Returns the rows and how many items each lookup outcome had.
    An unreadable entry is reported on one line and recomputed; the matrix goes on.

    With several processes (`layouts.processes`) every process must run the same cells, since
    each run step spans them all: the leader's cache decides, and the others (`cache` None) run
    what it computes and return no rows."""
    lookups = [(Lookup.MISSING, None) if fresh or cache is None else cache.load(cell, source) for cell, source in items]
    computed = processes.leaders_choice(np.asarray([outcome is not Lookup.HIT for outcome, _ in lookups]))
    rows: list[ResultRow] = []
    outcomes: Counter = Counter()
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not show_progress, transient=False) as progress:
        task = progress.add_task("bench", total=len(items))
        for (cell, source), (outcome, found), compute in zip(items, lookups, computed):
            progress.update(task, description=f"{source:8s} {cell.model} {cell.prefill_layout}/{cell.decode_layout} {cell.chips} chips b{cell.batch}")
            if outcome is Lookup.UNREADABLE:
                console.print(escape(f"zoo bench: cached cell {found}; recomputing it"), soft_wrap=True)
            if compute:
                found = rows_for(cell, source)
                if cache is not None:
                    cache.store(cell, source, found)
            if cache is not None:
                rows.extend(found)
            outcomes[outcome] += 1
            progress.advance(task)
    return rows, outcomes
