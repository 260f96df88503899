"""The compiled programs contain the collectives each layout promises, and no others on the hot path
(the layer loop). Compiled for a TPU v4 2×2×2 topology with libtpu (no TPU present), on palm-8b so
that activations and weights differ in size the way they do at scale."""

import pytest

from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell

MODEL = "palm-8b"
COMMON = dict(chips=8, mesh="2x2x2", target="tpu-v4", batch=8, input_len=128, context_len=256)


def loop_bytes(row, kind: str | None = None, axes: str | None = None) -> float:
    """Bytes per step of the layer loop's collectives of `kind` (all kinds when None) over `axes`."""
    return sum(
        entry["link_bytes_per_step"]
        for entry in row.details["collectives"]
        if entry["in_loop"] and (kind is None or entry["kind"] == kind) and (axes is None or entry["mesh_axes"] == axes)
    )


@pytest.fixture(scope="module")
def decode_rows():
    rows = {}
    for layout, attention in (("2d-ws", "batch"), ("2d-ws", "heads"), ("1d-ws", "batch"), ("wg-xyz", "heads")):
        (row,) = compile_cell(Cell(MODEL, decode_layout=layout, decode_attention=attention, phase="decode", **COMMON))
        assert row.status == "ok", row.error
        rows[layout, attention] = row
    return rows


def test_2d_weight_stationary_gathers_and_scatters_activations_over_its_axes_never_weights(decode_rows):
    row = decode_rows["2d-ws", "batch"]
    weights = row.memory_per_chip_bytes["weights"]
    # The paper's sequence: all-gather(yz) of the input, reduce over x into F, gather over x, reduce
    # over yz into E. XLA on TPU may fuse a reduce-scatter and the all-gather after it into one
    # all-reduce (same traffic), so reductions are counted whichever form they take.
    assert loop_bytes(row, "all-gather", "yz") > 0
    for axes in ("x", "yz"):
        assert loop_bytes(row, "reduce-scatter", axes) + loop_bytes(row, "all-reduce", axes) > 0, axes
    # Every weight stays where it is: what moves is activation-sized, far below the weights.
    assert loop_bytes(row) < 0.01 * weights


def test_weight_gathered_xyz_moves_weights_and_no_activations(decode_rows):
    row = decode_rows["wg-xyz", "heads"]
    gathered = loop_bytes(row, "all-gather")
    # Each chip gathers (n-1)/n of every layer's weights: at least the other chips' shards.
    assert gathered > 0.8 * 7 * row.memory_per_chip_bytes["weights"] * 0.9
    assert loop_bytes(row) - gathered < 0.01 * gathered
    assert loop_bytes(row, "all-to-all") == 0 and loop_bytes(row, "reduce-scatter") == 0


def test_batch_attention_uses_all_to_all_and_splits_the_multiquery_cache(decode_rows):
    batch, heads = decode_rows["2d-ws", "batch"], decode_rows["2d-ws", "heads"]
    assert loop_bytes(batch, "all-to-all") > 0
    assert loop_bytes(heads, "all-to-all") == 0
    # Multiquery over heads replicates the single K/V head: every chip holds the whole cache; over
    # batch each holds 1/n of it.
    assert batch.memory_per_chip_bytes["kv_cache"] * 8 == heads.memory_per_chip_bytes["kv_cache"]


def test_1d_weight_stationary_communicates_over_all_chips_at_once(decode_rows):
    row = decode_rows["1d-ws", "batch"]
    assert loop_bytes(row, "all-gather", "xyz") > 0
    assert loop_bytes(row) < 0.01 * row.memory_per_chip_bytes["weights"]
