"""Writing result rows: a table with the three sources side by side, JSON Lines and CSV."""

import csv
import io
import json
from collections import defaultdict

from rich.table import Table

from cli.tables import Column, fitted_table, table_console

from layouts.bench.result_row import COMMUNICATION_KEYS, ENV_KEYS, MEMORY_KEYS, ROW_KEYS, ResultRow
from layouts.compiled.host_view import HostView

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


_SIDE_BY_SIDE_COLUMNS = [
    Column("model", keep=9), Column("phase", keep=9), Column("layout/attn", keep=9), Column("chips", "right", keep=8),
    Column("mesh", keep=3), Column("batch", "right", keep=8), Column("weights", keep=2),
    Column("est. step", "right", keep=7), Column("est. MFU", "right", keep=4), Column("est. mem/chip", "right", keep=5),
    Column("est. fits", "right", keep=6), Column("compiled mem/chip", "right", keep=7), Column("compiled fits", "right", keep=6),
    Column("compiled comm/step", "right", keep=5), Column("compile time", "right", keep=1), Column("run step", "right", keep=7),
    Column("run tokens/s", "right", keep=3), Column("run MFU", "right", keep=3), Column("errors", fold=True, keep=8),
]  # fmt: skip


def _compiled_memory(row: ResultRow | None) -> ResultRow | None:
    """A compile row whose memory figures stand: an ok one, or one that does not fit."""
    if row is None or (row.status == "error" and row.fits is not False):
        return None
    return row


def side_by_side(rows: list[ResultRow], title: str = "results", width: int | None = None) -> Table:
    """One line per (cell, phase): the estimate's time, MFU and memory with its verdict, the compiled
    program's memory with its own verdict and its communication, the measured time; an error shows
    its reason. Columns no row fills are left out, then the least important ones if the table is
    wider than `width` (default: the terminal)."""
    grouped: dict[tuple, dict[str, ResultRow]] = defaultdict(dict)
    for row in rows:
        grouped[_cell_key(row)][row.source] = row
    lines = []
    for key, sources in grouped.items():
        model, phase, layout, attention, chips, batch, _, _, _, weights = key
        errors = "; ".join(f"{row.source}: {row.error}" for row in sources.values() if row.status == "error")
        estimate, compiled, run = (sources.get(source) if sources.get(source) and sources[source].status == "ok" else None for source in SOURCE_ORDER)
        compiled_memory = _compiled_memory(sources.get("compile"))
        any_row = next(iter(sources.values()))
        lines.append([
            model, phase, f"{layout}/{attention}", str(chips), any_row.mesh or "-", str(batch), weights,
            _seconds(estimate.step_time_s) if estimate else "-",
            _percent(estimate.mfu) if estimate else "-",
            human_bytes(estimate.memory_per_chip_bytes["total"]) if estimate else "-",
            _fits(estimate) if estimate else "-",
            human_bytes(compiled_memory.memory_per_chip_bytes["total"]) if compiled_memory else "-",
            _fits(compiled_memory) if compiled_memory else "-",
            human_bytes(_communication(compiled)) if compiled else "-",
            _seconds(compiled.compile_time_s) if compiled else "-",
            _seconds(run.step_time_s) if run else "-",
            f"{run.tokens_per_s:.4g}" if run and run.tokens_per_s else "-",
            _percent(run.mfu) if run else "-",
            (errors[:237] + "...") if len(errors) > 240 else errors or "-",
        ])  # fmt: skip
    filled = [index for index in range(len(_SIDE_BY_SIDE_COLUMNS)) if index < 7 or any(line[index] != "-" for line in lines)]
    columns = [_SIDE_BY_SIDE_COLUMNS[index] for index in filled]
    return fitted_table(columns, [[line[index] for index in filled] for line in lines], title, width)


def print_rows(rows: list[ResultRow], output_format: str, title: str = "results") -> None:
    """Table on stdout, or one JSON object per row and nothing else."""
    if output_format == "json":
        print(jsonl_text(rows), end="", flush=True)
        return
    console = table_console()
    console.print(side_by_side(rows, title))
    for line in host_lines(rows):
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def host_lines(rows: list[ResultRow]) -> list[str]:
    """One line per compiled target and mesh on a slice of several hosts: what each host holds
    and which mesh axes span hosts (`layouts.compiled.host_view`); nothing for one host."""
    lines = {}
    for row in rows:
        view = (row.details or {}).get("per_host")
        if view and not view["single_host"]:
            lines.setdefault((row.target, row.mesh, row.layout, row.attention, row.phase), HostView.from_dict(view).describe())
    return [f"per host, {target} {mesh} {layout}/{attention} {phase}: {text}" for (target, mesh, layout, attention, phase), text in lines.items()]
