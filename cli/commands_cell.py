"""`zoo estimate`, `zoo compile`, `zoo run`: one cell from one source each."""

import click

from cli.cell_flags import cell_from_flags
from cli.options import CELL_OPTION_NAMES, FORMAT, NO_COMPILE_CACHE, cell_options, library_default, run_guarded
from cli.report import print_rows
from layouts.bench.auto import resolve_auto
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.bench.run_rows import run_cell
from layouts.compiled.targets import local_chip_count
from layouts.cost.calibration import MODES


def _cell_values(kwargs: dict) -> dict:
    return {name: kwargs[name] for name in CELL_OPTION_NAMES}


def _report(rows, output_format: str, command: str) -> None:
    """Prints the rows; a row that failed (does not fit, a compiler or runtime failure) makes the
    exit code 1, so scripts notice (input errors exit with 2 before any work)."""
    print_rows(rows, output_format, command)
    failed = [row for row in rows if row.status == "error"]
    if failed:
        click.echo(f"zoo {command}: {len(failed)} of {len(rows)} rows failed", err=True)
        raise SystemExit(1)


@click.command()
@cell_options
@click.option("--mode", type=click.Choice(sorted(MODES)), default=library_default(estimate_cell, "mode"), show_default=True, help="roofline: the paper's idealised lower bound")
@FORMAT
def estimate(mode: str, output_format: str, **kwargs) -> None:
    """The paper's analytical estimate for one cell (instant, anywhere)."""
    cell = run_guarded(lambda: resolve_auto(cell_from_flags(_cell_values(kwargs))))
    _report(run_guarded(lambda: estimate_cell(cell, mode=mode)), output_format, "estimate")


@click.command(name="compile")
@cell_options
@NO_COMPILE_CACHE
@FORMAT
def compile_command(output_format: str, **kwargs) -> None:
    """Compile one cell ahead of time for a TPU topology (no TPU needed) or the local devices."""
    cell = run_guarded(lambda: resolve_auto(cell_from_flags(_cell_values(kwargs))))
    _report(run_guarded(lambda: compile_cell(cell)), output_format, "compile")


@click.command(name="run")
@cell_options
@click.option("--repeats", type=click.IntRange(min=1), default=library_default(run_cell, "repeats"), show_default=True, help="timed repetitions; the median is reported")
@click.option("--warmup", type=click.IntRange(min=0), default=library_default(run_cell, "warmup"), show_default=True)
@NO_COMPILE_CACHE
@FORMAT
def run_command(repeats: int, warmup: int, output_format: str, **kwargs) -> None:
    """Execute and time one cell's steps on the local devices (by default as many as a layout can
    split over: the largest power of two present)."""
    cell = run_guarded(lambda: resolve_auto(cell_from_flags(_cell_values(kwargs), target="local", chips=str(local_chip_count()))))
    _report(run_guarded(lambda: run_cell(cell, repeats=repeats, warmup=warmup)), output_format, "run")
