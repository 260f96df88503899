"""Layout search: the paper's rule, the registry search, the Pareto frontier."""

import pytest

from layouts.bench.cell import Cell
from layouts.bench.result_row import ResultRow
from layouts.bench.auto import best_layout
from layouts.bench.pareto import pareto_frontier, pareto_sweep
from layouts.cost.search import paper_layout
from zoo.errors import ZooError


def test_paper_rule():
    assert paper_layout("palm-540b-64h", "prefill", chips=64, batch=1, input_len=2048) == ("2d-ws", "heads")
    assert paper_layout("palm-540b-64h", "prefill", chips=64, batch=512, input_len=2048)[0].startswith("wg-")
    assert paper_layout("palm-540b-64h", "decode", chips=64, batch=64, input_len=2048) == ("2d-ws", "batch")
    assert paper_layout("palm-540b-64h", "decode", chips=64, batch=16, input_len=2048) == ("2d-ws", "batch-yz")
    assert paper_layout("mtnlg-530b", "decode", chips=64, batch=64, input_len=2048) == ("2d-ws", "heads")


def test_best_layout_is_no_slower_than_any_candidate():
    cell = Cell("palm-62b", chips=16, batch=64, input_len=1024)
    best = best_layout(cell, "decode")
    assert best.status == "ok" and best.fits
    for layout in ("1d-ws", "2d-ws"):
        for attention in ("heads", "batch"):
            other = best_layout(Cell("palm-62b", chips=16, batch=64, input_len=1024, decode_layout=layout, decode_attention=attention), "decode")
            assert best.latency_s <= other.latency_s


def test_large_batch_prefill_prefers_weight_gathered():
    assert best_layout(Cell("palm-540b-64h", chips=64, batch=512), "prefill").layout.startswith("wg-")
    assert best_layout(Cell("palm-540b-64h", chips=64, batch=1), "prefill").layout in ("1d-ws", "2d-ws")


def test_no_layout_fits():
    with pytest.raises(ZooError, match="no layout can run palm-540b-64h decode on 8"):
        best_layout(Cell("palm-540b-64h", chips=8, batch=8), "decode")


def _row(latency, cost, **changes):
    row = ResultRow("m", "l", "a", 8, "2x2x2", "tpu-v4", "decode", 1, 1, 1, 1, "bf16", "estimate", latency_s=latency, cost_chip_ms_per_token=cost, fits=True)
    for key, value in changes.items():
        setattr(row, key, value)
    return row


def test_pareto_strict_dominance():
    rows = [_row(1, 10), _row(2, 5), _row(2, 6), _row(3, 5), _row(1, 10), _row(0.5, 20, fits=False), _row(4, 1)]
    frontier = pareto_frontier(rows)
    assert [(r.latency_s, r.cost_chip_ms_per_token) for r in frontier] == [(1, 10), (1, 10), (2, 5), (4, 1)]


def test_pareto_sweep_trades_latency_for_cost():
    frontier = pareto_sweep("palm-62b", "decode", chips=[8, 16, 32], batches=[1, 16, 256])
    assert len(frontier) >= 2
    latencies = [row.latency_s for row in frontier]
    costs = [row.cost_chip_ms_per_token for row in frontier]
    assert latencies == sorted(latencies) and costs == sorted(costs, reverse=True)


@pytest.mark.parametrize("batch", [4, 64])
def test_auto_attention_takes_the_fastest_attention_layout_for_the_ffn_layout_given(batch):
    from layouts.bench.auto import resolve_auto
    from layouts.bench.estimate_rows import estimate_cell
    from layouts.builtin import ATTENTION_LAYOUTS

    given = dict(decode_layout="1d-ws", chips=64, batch=batch, phase="decode")
    chosen = resolve_auto(Cell("palm-540b-64h", decode_attention="auto", **given))
    assert chosen.decode_layout == "1d-ws" and chosen.decode_attention in ATTENTION_LAYOUTS
    (best,) = estimate_cell(chosen)
    for attention in ATTENTION_LAYOUTS:
        (other,) = estimate_cell(Cell("palm-540b-64h", decode_attention=attention, **given))
        assert best.latency_s <= other.latency_s, (attention, best.attention)
