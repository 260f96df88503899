"""Chunked prefill as the estimate and the cell see it: the chunk chosen to fit, what chunking
costs (weights read again per chunk, each activation collective's latency again; nothing else),
and bad chunks refused in one line. Chunked equals unchunked numerically in
test_sharded_equals_unsharded.py; what the compiled programs hold, in test_compiled_memory.py."""

from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, invoke, json_lines

from layouts import build_steps, make_mesh
from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.cost.chunking import choose_prefill_chunk, chunk_candidates
from layouts.errors import LayoutError
from layouts.hardware import get_chip
from layouts.registry import get_partitioning
from layouts.workload import Workload
from zoo import build_abstract, get_preset
from zoo.errors import ZooError

ROOT = Path(__file__).resolve().parent.parent

TABLE_2_PREFILL = dict(chips=64, mesh="4x4x4", batch=512, input_len=2048, prefill_attention="batch", phase="prefill")


def test_candidates_halve_the_prompt_rounding_up():
    assert chunk_candidates(2048) == [2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1]
    assert chunk_candidates(13) == [13, 7, 4, 2, 1]
    assert chunk_candidates(1) == [1]


def test_the_whole_prompt_when_it_fits():
    (row,) = estimate_cell(Cell("palm-8b", chips=8, batch=1, phase="both"))[:1]
    assert row.phase == "prefill" and row.prefill_chunk == 2048 and row.fits
    decode = estimate_cell(Cell("palm-8b", chips=8, batch=1, phase="decode"))[0]
    assert decode.prefill_chunk is None


@pytest.mark.parametrize("layout", ["1d-ws", "2d-ws", "wg-x", "wg-xy"])
def test_a_chunk_that_fits_when_the_whole_prompt_does_not(layout):
    (whole,) = estimate_cell(Cell("palm-540b-64h", prefill_layout=layout, prefill_chunk=2048, **TABLE_2_PREFILL))
    (chosen,) = estimate_cell(Cell("palm-540b-64h", prefill_layout=layout, **TABLE_2_PREFILL))
    assert not whole.fits and chosen.fits and chosen.prefill_chunk < 2048
    # The largest that fits with the margin: twice that chunk does not.
    (larger,) = estimate_cell(Cell("palm-540b-64h", prefill_layout=layout, prefill_chunk=2 * chosen.prefill_chunk, **TABLE_2_PREFILL))
    margin = larger.memory_per_chip_bytes["total"] + 0.5 * larger.memory_per_chip_bytes["other"]
    assert margin > get_chip("tpu-v4").program_hbm_bytes


def test_chunks_repeat_weight_reads_and_latencies_only():
    cell = dict(prefill_layout="wg-x", **TABLE_2_PREFILL)  # gathers weights and moves activations
    (whole,) = estimate_cell(Cell("palm-540b-64h", prefill_chunk=2048, **cell))
    (chunked,) = estimate_cell(Cell("palm-540b-64h", prefill_chunk=256, **cell))
    assert chunked.comm_bytes_per_chip == whole.comm_bytes_per_chip
    for key in ("matmul_flops_per_chip", "attention_flops_per_chip", "compute_s"):
        assert chunked.details[key] == pytest.approx(whole.details[key], rel=1e-12)
    layers = whole.details["layers"]
    layer_weights = whole.details["per_layer"]["weight_bytes"]
    assert chunked.details["weight_bytes_read_per_chip"] == pytest.approx(whole.details["weight_bytes_read_per_chip"] + 7 * layers * layer_weights)
    # Weight gathers run once per layer, the activations' collectives once per chunk.
    assert whole.details["collectives"] < chunked.details["collectives"] < 8 * whole.details["collectives"]
    assert chunked.step_time_s >= whole.step_time_s
    assert chunked.memory_per_chip_bytes["other"] < whole.memory_per_chip_bytes["other"]


def test_a_chunk_is_a_positive_number_of_tokens():
    with pytest.raises(ZooError, match="prefill_chunk must be a positive integer"):
        Workload(8, 2048, 2048, 64, prefill_chunk=0)
    assert Workload(8, 2048, 2048, 64, prefill_chunk=4096).chunk_len == 2048
    assert Workload(8, 13, 13, 1, prefill_chunk=4).prefill_chunks == 4


def test_the_cli_takes_a_chunk_and_refuses_a_bad_one():
    rows = json_lines(invoke("estimate", "--model", "palm-8b", "--phase", "prefill", "--batch", "8", "--prefill-chunk", "512", "--format", "json"))
    assert [row["prefill_chunk"] for row in rows] == [512]
    assert_usage_error(invoke("estimate", "--model", "palm-8b", "--prefill-chunk", "0"), "--prefill-chunk", "positive")


def test_a_layout_that_splits_the_sequence_is_never_chunked(tmp_path, devices):
    # my-2d-ws.toml with the sequence split over x (and E off x): a chunk would be a slice of a
    # split dimension, so asking for one is refused and the automatic choice is the whole prompt.
    text = (ROOT / "examples" / "my-2d-ws.toml").read_text()
    for old, new in (('seq = []', 'seq = ["x"]'), ('residual_embed = ["x", "y", "z"]', 'residual_embed = ["y", "z"]'), ('matmul_embed = ["x"]', "matmul_embed = []")):
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "seq-x.toml").write_text(text)
    config = get_preset("palm-tiny")
    partitioning = get_partitioning(str(tmp_path / "seq-x.toml"), "heads", config)
    with pytest.raises(LayoutError, match="splits the sequence over x, so prefill cannot run in chunks of 4 tokens"):
        build_steps(build_abstract(config), partitioning, partitioning, make_mesh((2, 2, 2)), batch=8, input_len=8, max_len=16, prefill_chunk=4)
    assert choose_prefill_chunk(partitioning, get_chip("tpu-v4"), (2, 2, 2), Workload(8, 8, 8, 8)) == 8
