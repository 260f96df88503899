"""Writing result rows: a table with the three sources side by side, JSON Lines and CSV."""

import csv
import io
import json
import os
from collections import defaultdict
from pathlib import Path

from rich.console import Console
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
    communication, the measured time; an error shows its reason."""
    grouped: dict[tuple, dict[str, ResultRow]] = defaultdict(dict)
    for row in rows:
        grouped[_cell_key(row)][row.source] = row
    table = Table(title=title, show_lines=False)
    for column in ("model", "phase", "layout/attn", "chips", "batch", "weights",
                   "est. step", "est. MFU", "est. mem/chip", "fits",
                   "compiled mem/chip", "compiled comm/step", "run step", "run MFU", "errors"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("model", "phase", "layout/attn", "weights", "errors") else "right", overflow="fold")
    for key, sources in grouped.items():
        model, phase, layout, attention, chips, batch, _, _, _, weights = key
        estimate, compiled, run = (sources.get(source) for source in SOURCE_ORDER)
        errors = "; ".join(f"{row.source}: {row.error}" for row in sources.values() if row.status == "error")
        ok = lambda row: row if row is not None and row.status == "ok" else None  # noqa: E731
        estimate, compiled, run = ok(estimate), ok(compiled), ok(run)
        table.add_row(
            model, phase, f"{layout}/{attention}", str(chips), str(batch), weights,
            _seconds(estimate.step_time_s) if estimate else "-",
            _percent(estimate.mfu) if estimate else "-",
            human_bytes(estimate.memory_per_chip_bytes["total"]) if estimate else "-",
            _fits(compiled or estimate) if (compiled or estimate) else "-",
            human_bytes(compiled.memory_per_chip_bytes["total"]) if compiled else "-",
            human_bytes(_communication(compiled)) if compiled else "-",
            _seconds(run.step_time_s) if run else "-",
            _percent(run.mfu) if run else "-",
            errors[:160],
        )  # fmt: skip
    return table


def wide_console() -> Console:
    """A console at least 180 columns wide: tables stay readable when stdout is a pipe or a file."""
    return Console(width=max(Console().width, 180))


def print_rows(rows: list[ResultRow], output_format: str, title: str = "results") -> None:
    """Table on stdout, or one JSON object per row and nothing else."""
    if output_format == "json":
        print(jsonl_text(rows), end="", flush=True)
        return
    wide_console().print(side_by_side(rows, title))
