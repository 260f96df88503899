"""Batches smaller than the mesh: a layout splits the batch over the largest set of its batch axes
that divides it (z, then y, then x), and the rows say which (`layouts.fit`)."""

import pytest

from layouts import ATTENTION_LAYOUTS, FFN_LAYOUTS, Partitioning
from layouts.fit import batch_axes, dividing_axes, fit_batch
from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.mesh import choose_mesh_shape
from zoo import get_preset

SIZES = {"x": 4, "y": 4, "z": 4}


@pytest.mark.parametrize(
    "batch,expected", [(1, ()), (2, ()), (4, ("z",)), (8, ("z",)), (16, ("y", "z")), (32, ("y", "z")), (64, ("x", "y", "z")), (96, ("y", "z"))]
)
def test_the_batch_takes_z_then_y_then_x_while_they_divide_it(batch, expected):
    assert dividing_axes(("x", "y", "z"), SIZES, batch) == expected


def test_attention_over_the_batch_falls_back_to_the_built_in_layout_of_the_axes_it_keeps():
    config = get_preset("palm-540b-64h")
    requested = Partitioning(FFN_LAYOUTS["2d-ws"], ATTENTION_LAYOUTS["batch"], config)
    assert fit_batch(requested, (4, 4, 4), 64) is requested
    assert fit_batch(requested, (4, 4, 4), 4).attention.name == "batch-z"
    assert fit_batch(requested, (4, 4, 4), 16).attention.name == "batch-yz"
    assert fit_batch(requested, (4, 4, 4), 1).attention.name == "heads"
    # A weight-gathered layout's own batch split is cut first; attention adds what still divides.
    wg_x = fit_batch(Partitioning(FFN_LAYOUTS["wg-x"], ATTENTION_LAYOUTS["batch"], config), (4, 4, 4), 16)
    assert batch_axes(wg_x) == "xz" and wg_x.ffn.name == "wg-x"


def test_the_mesh_leaves_a_weight_gathered_batch_split_whole_at_one_sequence():
    config = get_preset("palm-540b-64h")
    assert choose_mesh_shape(64, FFN_LAYOUTS["wg-x"], config, tokens=2048, batch=1)[0] == 1
    assert choose_mesh_shape(64, FFN_LAYOUTS["wg-xy"], config, tokens=2048, batch=1)[:2] == (1, 1)


def test_decode_at_batch_4_on_64_chips_over_the_batch_estimates_and_compiles_over_z():
    # Appendix D's small-batch rows: attention over the batch where the batch is 4.
    cell = Cell("palm-540b-64h", decode_layout="2d-ws", decode_attention="batch", chips=64, mesh="4x4x4", batch=4, phase="decode")
    (estimated,), (compiled,) = estimate_cell(cell), compile_cell(cell)
    for row in (estimated, compiled):
        assert row.status == "ok", row.error
        assert (row.attention, row.batch_axes) == ("batch-z", "z")
    # The KV cache split 4 ways (z), as estimated.
    assert compiled.memory_per_chip_bytes["kv_cache"] == pytest.approx(estimated.memory_per_chip_bytes["kv_cache"], rel=0.02)
    assert compiled.comm_bytes_per_chip["all_to_all"] == pytest.approx(estimated.comm_bytes_per_chip["all_to_all"], rel=0.02)


def test_the_default_cell_gives_rows_for_every_model():
    # Batch 1 with the defaults (attention over the batch would split one sequence over no axes).
    from cli_helpers import invoke, json_lines

    for model in ("palm-8b", "palm-62b", "palm-540b", "mtnlg-530b"):
        rows = json_lines(invoke("estimate", "--model", model, "--format", "json"))
        assert [row["status"] for row in rows] == ["ok", "ok"], rows
    rows = json_lines(invoke("estimate", "--model", "palm-8b", "--decode-attention", "batch", "--phase", "decode", "--format", "json"))
    assert rows[0]["status"] == "ok" and (rows[0]["attention"], rows[0]["batch_axes"]) == ("heads", "")
