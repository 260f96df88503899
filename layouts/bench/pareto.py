"""The Pareto frontier of latency against cost over estimate rows (the paper's Figure 1)."""

from collections.abc import Iterable

from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_or_error_rows
from layouts.bench.result_row import ResultRow
from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS


def pareto_frontier(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """The rows no other row strictly dominates in (latency_s, cost_chip_ms_per_token): another
    row dominates when it is no worse in both and better in one. Error and non-fitting rows are
    left out. Sorted by latency."""
    points = [row for row in rows if row.status == "ok" and row.fits]

    def dominates(a: ResultRow, b: ResultRow) -> bool:
        no_worse = a.latency_s <= b.latency_s and a.cost_chip_ms_per_token <= b.cost_chip_ms_per_token
        return no_worse and (a.latency_s < b.latency_s or a.cost_chip_ms_per_token < b.cost_chip_ms_per_token)

    frontier = [row for row in points if not any(dominates(other, row) for other in points)]
    return sorted(frontier, key=lambda row: (row.latency_s, row.cost_chip_ms_per_token))


def pareto_sweep(
    model: str,
    phase: str,
    *,
    chips: Iterable[int],
    batches: Iterable[int],
    weights: Iterable[str] = ("bf16", "int8"),
    target: str = "tpu-v4",
    input_len: int = 2048,
    gen_tokens: int = 64,
    mode: str = "calibrated",
) -> list[ResultRow]:
    """The latency-cost frontier of `phase` over chips × batch × registered layouts × weight dtype."""
    rows = []
    for chip_count in chips:
        for batch in batches:
            for dtype in weights:
                for name, layout in FFN_LAYOUTS.items():
                    if layout.phase not in (phase, "any"):
                        continue
                    for attention in ATTENTION_LAYOUTS:
                        cell = Cell(
                            model, chips=chip_count, batch=batch, weights=dtype, target=target, input_len=input_len, gen_tokens=gen_tokens,
                            phase=phase, **{f"{phase}_layout": name, f"{phase}_attention": attention},
                        )  # fmt: skip
                        rows += estimate_or_error_rows(cell, mode)
    return pareto_frontier(rows)
