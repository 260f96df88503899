"""`zoo capacity`: the largest batch or the longest context a cell's layout serves on its chips."""

import json

import click

from cli.cell_flags import cell_from_flags
from cli.options import CELL_OPTION_NAMES, FORMAT, cell_options, run_guarded
from cli.report import human_bytes
from cli.tables import Column, fitted_table, table_console
from layouts.bench.auto import resolve_auto
from layouts.bench.capacity import LIMITS, CapacityRow, capacity

_COLUMNS = [
    Column("model", keep=9), Column("phase", keep=9), Column("layout/attn", keep=8), Column("chips", "right", keep=5),
    Column("mesh", keep=4), Column("at", keep=7), Column("weights", keep=3), Column("searched", keep=9),
    Column("est. limit", "right", keep=9), Column("compiled limit", "right", keep=8), Column("compiled ÷ est.", "right", keep=6),
    Column("est. mem/chip", "right", keep=2), Column("compiled mem/chip", "right", keep=2), Column("compiles", "right", keep=1),
]  # fmt: skip


def _at(row: CapacityRow) -> str:
    """The sizes held fixed while `row.field` was searched."""
    held = {"batch": row.batch, "context": row.context_len, "prompt": row.input_len}
    return ", ".join(f"{name} {value}" for name, value in held.items() if value is not None) + f", +{row.gen_tokens} gen" * (row.phase == "decode")


def _line(row: CapacityRow) -> list[str]:
    ratio = "-" if not (row.compiled and row.estimated) else f"{row.compiled / row.estimated:.3f}"
    number = lambda value: "none fits" if value is None else f"{value:,}"  # noqa: E731
    compiled = "-" if not row.compiles else number(row.compiled)
    if row.compiles and row.compiled is not None and row.compiled_above is not None and row.compiled_above - row.compiled > row.step:
        compiled += f" (<{row.compiled_above:,})"  # the bisection stopped within its tolerance
    return [
        row.model, row.phase, f"{row.layout}/{row.attention}", str(row.chips), row.mesh, _at(row), row.weights, row.field,
        number(row.estimated), compiled, ratio,
        "-" if row.estimated_bytes is None else human_bytes(row.estimated_bytes),
        "-" if row.compiled_bytes is None else human_bytes(row.compiled_bytes), str(row.compiles),
    ]  # fmt: skip


@click.command(name="capacity")
@cell_options
@click.option("--limit", type=click.Choice(LIMITS), default="context", show_default=True, help="search the longest context at --batch, or the largest batch at --context-len")
@click.option("--compile", "confirm", is_flag=True, help="confirm the estimate's boundary by compiling for the target (a bisection; minutes for a large model)")
@click.option("--kv-share", type=float, help="also hold the KV cache within this share of the chip's HBM (the paper's Table 1: 0.3)")
@FORMAT
def capacity_command(limit: str, confirm: bool, kv_share: float | None, output_format: str, **kwargs) -> None:
    """The longest context or the largest batch that fits, per phase (decode unless --phase says),
    by the estimate and, with --compile, by the compiler."""
    values = {name: kwargs[name] for name in CELL_OPTION_NAMES}
    cell = run_guarded(lambda: resolve_auto(cell_from_flags(values, phase="decode")))
    rows = run_guarded(lambda: capacity(cell, limit, confirm=confirm, kv_share=kv_share))
    if output_format == "json":
        print("".join(json.dumps(row.as_dict()) + "\n" for row in rows), end="", flush=True)
    else:
        budget = "usable HBM per chip" + ("" if kv_share is None else f", KV within {kv_share:g} of HBM")
        table_console().print(fitted_table(_COLUMNS, [_line(row) for row in rows], f"capacity · {cell.target} · {budget}"))
    if any(row.estimated is None for row in rows):
        click.echo("zoo capacity: nothing fits for at least one phase (see the rows)", err=True)
        raise SystemExit(1)
