"""What the compiled programs hold, per chip, on a TPU v4 2×2×2 topology (libtpu, no TPU needed):
one KV cache, never a gathered embedding table, the estimate's memory within 5% of the
compiler's at decode, and chunked prefill's memory following its chunk."""

import pytest
from conftest import slow_but

from layouts import FFN_LAYOUTS
from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.cost.calibration import TABLE_2
from zoo import get_preset

WEIGHT_STATIONARY = ("1d-ws", "2d-ws")


def _decode(layout: str, batch: int, model: str = "palm-8b", chips: int = 8, mesh: str = "2x2x2", attention: str = "batch"):
    cell = Cell(model, decode_layout=layout, decode_attention=attention, chips=chips, mesh=mesh, target="tpu-v4", batch=batch,
                input_len=2048, context_len=2048, gen_tokens=64, phase="decode")  # fmt: skip
    (compiled,), (estimated,) = compile_cell(cell), estimate_cell(cell)
    assert compiled.status == "ok", compiled.error
    return compiled, estimated


# Over heads, the weight-stationary layouts (a weight-gathered layout's temporaries hold its
# gathered weights, more than a tenth of so small a cache).
# wg-xy compiles slowest (19 s): with the slow checks.
_ONE_CACHE = [(layout, "batch") for layout in FFN_LAYOUTS] + [(layout, "heads") for layout in WEIGHT_STATIONARY]


@pytest.mark.parametrize("layout,attention", slow_but(_ONE_CACHE, [case for case in _ONE_CACHE if case[0] != "wg-xy"]))
def test_decode_holds_one_kv_cache(layout, attention):
    # The step leaves the cache's memory layout to the compiler (`PhaseProgram.ahead_of_time`):
    # fixed at the boundary, the layer loop's own layout made it copy the cache in and out.
    # Over heads every chip holds the whole (multiquery) cache: batch 64 keeps it on the chip.
    compiled, _ = _decode(layout, 512 if attention == "batch" else 64, attention=attention)
    kv = compiled.memory_per_chip_bytes["kv_cache"]
    assert compiled.details["compiler_memory"]["temporaries"] < 0.1 * kv


@pytest.mark.parametrize("layout", FFN_LAYOUTS)
def test_the_output_head_never_gathers_the_table(layout):
    compiled, _ = _decode(layout, 64)
    config = get_preset("palm-8b")
    table_bytes = config.vocab * config.d_model * 2
    # The head runs outside the layer loop; each chip stores an eighth of the table or less, and
    # gathering it would leave at least half of it on every chip. Everything the step moves
    # outside the loop is far less.
    outside = [entry for entry in compiled.details["collectives"] if not entry["in_loop"]]
    assert outside and all(entry["buffer_bytes_per_step"] < table_bytes / 100 for entry in outside), outside


_DECODE = [(layout, batch) for layout in FFN_LAYOUTS if layout != "wg-xyz" for batch in (64, 512)]


# The default run keeps batch 64 of each layout (wg-xy's are the slow ones); the slow run adds 512.
@pytest.mark.parametrize("layout,batch", slow_but(_DECODE, [case for case in _DECODE if case[0] != "wg-xy" and case[1] == 64]))
def test_decode_memory_is_estimated_within_5_percent(layout, batch):
    compiled, estimated = _decode(layout, batch)
    assert compiled.memory_per_chip_bytes["total"] == pytest.approx(estimated.memory_per_chip_bytes["total"], rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("layout", FFN_LAYOUTS)
@pytest.mark.parametrize("batch", [64, 512])
def test_palm_540b_decode_fits_64_chips_as_estimated(layout, batch):
    compiled, estimated = _decode(layout, batch, "palm-540b-64h", 64, "4x4x4")
    assert compiled.fits and estimated.fits
    assert compiled.memory_per_chip_bytes["total"] == pytest.approx(estimated.memory_per_chip_bytes["total"], rel=0.05)


def _prefill(layout: str, batch: int, chunk: int | None, model: str = "palm-8b", chips: int = 8, mesh: str = "2x2x2", attention: str = "batch"):
    cell = Cell(model, prefill_layout=layout, prefill_attention=attention, chips=chips, mesh=mesh, target="tpu-v4", batch=batch,
                input_len=2048, phase="prefill", prefill_chunk=chunk)  # fmt: skip
    (compiled,), (estimated,) = compile_cell(cell), estimate_cell(cell)
    return compiled, estimated


# wg-xy: the slow 540B test; the default run keeps 1d-ws (the multi-process tests took wg-xyz's time)
@pytest.mark.parametrize("layout", slow_but(["1d-ws", "2d-ws", "wg-x", "wg-xyz"], ["1d-ws"]))
def test_chunked_prefill_holds_one_chunks_working_set(layout):
    whole, _ = _prefill(layout, 64, 2048)
    chunked, estimated = _prefill(layout, 64, 128)
    assert whole.status == chunked.status == "ok"
    # The working set is a chunk's: at 16 chunks, less than half of the whole prompt's (measured
    # 0.13 to 0.33 of the temporaries).
    temporaries = lambda row: row.details["compiler_memory"]["temporaries"]  # noqa: E731
    assert temporaries(chunked) < 0.5 * temporaries(whole)
    # Estimated within 10% (measured -8% to +4%; 2d-ws's compiled step copies one of K and V
    # at the layer loop, 0.25 GiB the estimate leaves out).
    assert chunked.memory_per_chip_bytes["total"] == pytest.approx(estimated.memory_per_chip_bytes["total"], rel=0.1)


def test_chunked_prefill_gathers_each_weight_once_per_layer():
    # Weight-gathered layers place their weights for use before the chunk loop: the all-gathers
    # move as many bytes in 4 chunks as in one pass (the weights are most of them), not 4 times.
    whole, _ = _prefill("wg-xyz", 8, 2048)
    chunked, _ = _prefill("wg-xyz", 8, 512)
    assert chunked.comm_bytes_per_chip["all_gather"] == pytest.approx(whole.comm_bytes_per_chip["all_gather"], rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("layout", FFN_LAYOUTS)
def test_palm_540b_prefill_at_batch_512_fits_64_chips_in_the_chosen_chunks(layout):
    # Table 2's high-throughput prefill (wg-xyz) included: its weights gathered a dimension at a
    # time, in place, leave room for a layer's gathered weights across the chunk loop.
    compiled, estimated = _prefill(layout, 512, None, "palm-540b-64h", 64, "4x4x4")
    assert compiled.prefill_chunk == estimated.prefill_chunk < 2048
    assert compiled.status == "ok" and compiled.fits, compiled.error
    # Measured 0.96 (wg-x) to 1.02 (2d-ws) of the estimate.
    assert compiled.memory_per_chip_bytes["total"] == pytest.approx(estimated.memory_per_chip_bytes["total"], rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("layout", FFN_LAYOUTS)
def test_palm_540b_prefill_of_one_sequence_is_estimated_within_5_percent(layout):
    compiled, estimated = _prefill(layout, 1, None, "palm-540b-64h", 64, "4x4x4", attention="heads")
    assert compiled.status == "ok" and compiled.fits, compiled.error
    # Measured 0.997 to 1.018, and 1.054 under wg-xyz: its buffer assignment places the fp32 FFN
    # hidden (1.1 GiB) above the gathered W_in (5.06 GiB, from 1.2 GB), over a gap that values
    # live at other times fill below it.
    ratio = compiled.memory_per_chip_bytes["total"] / estimated.memory_per_chip_bytes["total"]
    assert 0.95 <= ratio <= (1.06 if layout == "wg-xyz" else 1.05), ratio


# Compiled ÷ estimated below 0.95 (the estimate over, on the safe side), measured on palm-8b's 8
# chips, where activations are most of the memory (weights 2 GiB, a chunk's working set up to 12):
# at batch 512 (chunks of 1024) the FFN hidden's bf16 product and its fp32 form are one buffer
# under wg-xy (0.86) and wg-xyz (0.91), which the estimate counts as two; wg-xyz at one sequence
# holds its activations 0.15 GiB below the estimate (0.95).
_OVER_ESTIMATED = {("wg-xy", 512), ("wg-xyz", 512), ("wg-xyz", 1)}


_PREFILL = [(layout, batch) for layout in ("1d-ws", "2d-ws", "wg-x", "wg-xyz") for batch in (1, 512)]  # wg-xy: the slow 540B test


@pytest.mark.parametrize("layout,batch", slow_but(_PREFILL, [("wg-xyz", 512), ("wg-x", 1)]))
def test_prefill_is_estimated_within_5_percent_or_over(layout, batch):
    # Batch 512 in the chunk chosen (wg-xyz's is Table 2's high-throughput prefill cell); batch 1
    # whole, attention over heads, a weight-gathered layout's batch split over no axes.
    compiled, estimated = _prefill(layout, batch, None, attention="heads" if batch == 1 else "batch")
    assert compiled.status == "ok" and compiled.fits, compiled.error
    assert compiled.prefill_chunk < 2048 if batch == 512 else compiled.prefill_chunk == 2048
    ratio = compiled.memory_per_chip_bytes["total"] / estimated.memory_per_chip_bytes["total"]
    assert (0.8 if (layout, batch) in _OVER_ESTIMATED else 0.95) <= ratio <= 1.05, ratio


def _table_2_cell(run, model: str, chips: int, mesh: str) -> Cell:
    workload = run.workload
    return Cell(
        model, prefill_layout=run.layout, decode_layout=run.layout, prefill_attention=run.attention, decode_attention=run.attention,
        chips=chips, mesh=mesh, target="tpu-v4", batch=workload.batch, input_len=workload.input_len, context_len=workload.context_len,
        gen_tokens=workload.gen_tokens, weights=workload.weights, phase=run.phase,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", TABLE_2)
def test_table_2_cells_fit_64_v4_chips(name):
    (compiled,) = compile_cell(_table_2_cell(TABLE_2[name], "palm-540b-64h", 64, "4x4x4"))
    assert compiled.status == "ok" and compiled.fits, compiled.error
