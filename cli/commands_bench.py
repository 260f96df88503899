"""`zoo bench`: the benchmark matrix, three sources side by side, written to an output folder."""

import sys
from pathlib import Path

import click

from layouts.bench.cache import CellCache, Lookup
from layouts.bench.runner import run_matrix, work_items
from cli.cell_flags import matrix_from_flags
from layouts.bench.matrix import SOURCES, default_matrices, load_experiment
from cli.options import CELL_OPTION_NAMES, FORMAT, NO_COMPILE_CACHE, cell_options, run_guarded, split_list
from cli.plots import latency_cost_plot, memory_plot
from layouts import processes
from layouts.bench.output_folder import OutputFolder, write_atomically
from cli.report import csv_text, jsonl_text, print_rows

DEFAULT_OUT = "zoo-out"


@click.command()
@cell_options
@click.option("--source", help=f"comma-separated: {', '.join(SOURCES)} [default: estimate]")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="experiment file (TOML, the flags' keys)")
@click.option("--out", default=DEFAULT_OUT, show_default=True, help="output folder: new, empty, or one an earlier zoo bench wrote")
@click.option("--fresh", is_flag=True, help="recompute every cell instead of resuming from the folder's cache")
@click.option("--no-plots", is_flag=True, help="skip the PNG plots")
@NO_COMPILE_CACHE
@FORMAT
def bench(source, config_path, out: str, fresh: bool, no_plots: bool, output_format: str, **kwargs) -> None:
    """The matrix: the cross product of the comma-separated lists, or an experiment file; with no
    arguments, the built-in default (the paper's models on TPU v4, a tiny model run locally)."""
    values = {name: kwargs[name] for name in CELL_OPTION_NAMES}
    flags_given = any(value is not None for value in values.values()) or source is not None
    if config_path is not None and flags_given:
        raise click.UsageError("give either --config or cell flags, not both")
    sources = tuple(split_list(source)) or ("estimate",)
    if config_path is not None:
        matrices = run_guarded(lambda: load_experiment(config_path))
    elif flags_given:
        matrices = [run_guarded(lambda: matrix_from_flags(values, sources))]
    else:
        matrices = default_matrices()
    # Every cell and the output folder are checked before anything runs or anything on disk changes.
    items = run_guarded(lambda: work_items(matrices))
    if not processes.is_leader():
        # Another process owns the output folder: this one runs the cells the leader computes
        # (their steps span every process) and writes nothing.
        run_guarded(lambda: run_matrix(items, None, show_progress=False, fresh=fresh))
        return
    folder = run_guarded(lambda: OutputFolder(out))
    run_guarded(lambda: _bench(folder, items, fresh, no_plots, output_format))


def _bench(folder: OutputFolder, items, fresh: bool, no_plots: bool, output_format: str) -> None:
    with folder:
        out = folder.path
        click.echo(f"zoo bench: {len(items)} cell-sources, results in {out}/", err=True)
        show_progress = sys.stderr.isatty() or output_format == "table"
        rows, outcomes = run_matrix(items, CellCache(folder.cells), show_progress=show_progress, fresh=fresh)
        recomputed = [f"{outcomes[outcome]} {outcome.value}" for outcome in (Lookup.STALE, Lookup.UNREADABLE) if outcomes[outcome]]
        computed = len(items) - outcomes[Lookup.HIT]
        click.echo(f"zoo bench: computed {computed}, reused {outcomes[Lookup.HIT]} from {folder.cells}" + (f" ({', '.join(recomputed)})" if recomputed else ""), err=True)
        write_atomically(out / "rows.jsonl", jsonl_text(rows))
        write_atomically(out / "rows.csv", csv_text(rows))
        written = ["rows.jsonl", "rows.csv"]
        if not no_plots:
            if latency_cost_plot(rows, out / "pareto.png"):
                written.append("pareto.png")
            if memory_plot(rows, out / "memory.png"):
                written.append("memory.png")
        click.echo(f"zoo bench: wrote {', '.join(written)} in {out}/", err=True)
    print_rows(rows, output_format, "zoo bench")
