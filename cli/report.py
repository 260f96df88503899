"""Writing result rows: a table with the three sources side by side, JSON Lines and CSV."""

import csv
import io
import json
import os
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from layouts.result_row import COMMUNICATION_KEYS, ENV_KEYS, MEMORY_KEYS, ROW_KEYS, ResultRow

SOURCE_ORDER = ("estimate", "compile", "run")


def flatten(row: ResultRow) -> dict:
    """One CSV record: nested blocks become dotted columns, details a JSON string."""
    data = row.as_dict()
    flat = {}
    for key in ROW_KEYS:
        value = data[key]
        if key == "memory_per_chip_bytes":
            flat.update({f"{key}.{name}": value[name] for name in MEMORY_KEYS})
        elif key == "comm_bytes_per_chip":
            flat.update({f"{key}.{name}": value[name] for name in COMMUNICATION_KEYS})
        elif key == "env":
            flat.update({f"env.{name}": value.get(name) for name in ENV_KEYS})
        elif key == "details":
            flat[key] = json.dumps(value, sort_keys=True, default=str)
        else:
            flat[key] = value
    return flat


def jsonl_text(rows: list[ResultRow]) -> str:
    return "".join(json.dumps(row.as_dict(), default=str) + "\n" for row in rows)


def csv_text(rows: list[ResultRow]) -> str:
    buffer = io.StringIO()
    records = [flatten(row) for row in rows]
    if records:
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return buffer.getvalue()


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` only once the new text is complete on disk."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text)
    os.replace(temporary, path)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


def human_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _communication(row: ResultRow) -> float | None:
    values = [value for value in row.comm_bytes_per_chip.values() if value is not None]
    return sum(values) if values else None


def _fits(row: ResultRow) -> str:
    return "-" if row.fits is None else "yes" if row.fits else "NO"


def _cell_key(row: ResultRow) -> tuple:
    return (row.model, row.phase, row.layout, row.attention, row.chips, row.batch, row.input_len, row.context_len, row.gen_tokens, row.weights)


def side_by_side(rows: list[ResultRow], title: str = "results") -> Table:
    """One line per (cell, phase): the estimate's time and MFU, the compiled program's memory and
    communication, the measured time; an error shows its reason. Columns no row fills are left out."""
    grouped: dict[tuple, dict[str, ResultRow]] = defaultdict(dict)
    for row in rows:
        grouped[_cell_key(row)][row.source] = row
    columns = ("model", "phase", "layout/attn", "chips", "mesh", "batch", "weights",
               "est. step", "est. MFU", "est. mem/chip", "fits",
               "compiled mem/chip", "compiled comm/step", "compile time", "run step", "run tokens/s", "run MFU", "errors")  # fmt: skip
    lines = []
    for key, sources in grouped.items():
        model, phase, layout, attention, chips, batch, _, _, _, weights = key
        errors = "; ".join(f"{row.source}: {row.error}" for row in sources.values() if row.status == "error")
        estimate, compiled, run = (sources.get(source) if sources.get(source) and sources[source].status == "ok" else None for source in SOURCE_ORDER)
        any_row = next(iter(sources.values()))
        lines.append([
            model, phase, f"{layout}/{attention}", str(chips), any_row.mesh or "-", str(batch), weights,
            _seconds(estimate.step_time_s) if estimate else "-",
            _percent(estimate.mfu) if estimate else "-",
            human_bytes(estimate.memory_per_chip_bytes["total"]) if estimate else "-",
            _fits(compiled or estimate) if (compiled or estimate) else "-",
            human_bytes(compiled.memory_per_chip_bytes["total"]) if compiled else "-",
            human_bytes(_communication(compiled)) if compiled else "-",
            _seconds(compiled.compile_time_s) if compiled else "-",
            _seconds(run.step_time_s) if run else "-",
            f"{run.tokens_per_s:.4g}" if run and run.tokens_per_s else "-",
            _percent(run.mfu) if run else "-",
            (errors[:117] + "...") if len(errors) > 120 else errors or "-",
        ])  # fmt: skip
    shown = [index for index, column in enumerate(columns) if index < 7 or any(line[index] != "-" for line in lines)]
    table = Table(title=title)
    for index in shown:
        column = columns[index]
        justify = "left" if column in ("model", "phase", "layout/attn", "mesh", "weights", "errors") else "right"
        table.add_column(column, justify=justify, no_wrap=column != "errors", overflow="fold")
    for line in lines:
        table.add_row(*(escape(line[index]) for index in shown))
    return table


def wide_console() -> Console:
    """A console at least 240 columns wide: tables stay readable when stdout is a pipe or a file."""
    return Console(width=max(Console().width, 240))


def print_rows(rows: list[ResultRow], output_format: str, title: str = "results") -> None:
    """Table on stdout, or one JSON object per row and nothing else."""
    if output_format == "json":
        print(jsonl_text(rows), end="", flush=True)
        return
    wide_console().print(side_by_side(rows, title))
