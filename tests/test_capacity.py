"""Capacity planning: the boundary the estimate finds is exact, the compiler's agrees with it
(compile bisection on a TPU v4 topology), and the paper's Table 1 comes out of the estimate."""

import dataclasses

import pytest
from cli_helpers import assert_usage_error, invoke, json_lines

from layouts.bench.capacity import capacity
from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.cost.paper_reproduction import TABLE_1

PALM_540B = dict(chips=64, mesh="4x4x4", phase="decode", gen_tokens=1)


# Table 1: PaLM 540B on 64 chips with 30% of the 32 GiB for the KV cache, longest context at
# batch 128 and 512: multihead (64 heads of 128), multiquery over heads, multiquery over batch.
@pytest.mark.parametrize("model,attention,batch,published", [(*key, published) for key, published in TABLE_1.items()])
def test_table_1_longest_contexts_from_the_estimate(model, attention, batch, published):
    (row,) = capacity(Cell(model, decode_attention=attention, batch=batch, **PALM_540B), "context", kv_share=0.3)
    # Within 2%, or one tile of the cache (caches are allocated 8 positions at a time).
    assert abs(row.estimated - published) <= max(0.02 * published, 8)


def test_the_estimated_boundary_is_exact():
    cell = Cell("palm-540b-64h", decode_attention="batch", batch=128, **PALM_540B)
    (row,) = capacity(cell, "context")
    (at,) = estimate_cell(dataclasses.replace(cell, context_len=row.estimated))
    (above,) = estimate_cell(dataclasses.replace(cell, context_len=row.estimated + 8))  # the next tile of the cache
    assert at.fits and not above.fits and row.estimated_bytes == at.memory_per_chip_bytes["total"]


def test_a_batch_limit_takes_the_steps_the_layout_splits():
    (row,) = capacity(Cell("palm-540b-64h", decode_attention="batch", context_len=2048, chips=64, mesh="4x4x4", phase="decode"), "batch")
    assert row.step == 64 and row.estimated % 64 == 0 and row.field == "batch" and row.batch is None
    (above,) = estimate_cell(Cell("palm-540b-64h", decode_attention="batch", context_len=2048, chips=64, mesh="4x4x4", phase="decode", batch=row.estimated + 64))
    assert not above.fits


@pytest.mark.parametrize("batch", [128, 512])
def test_compile_bisection_confirms_the_longest_multiquery_context(batch):
    # Decode under 2d-ws with the cache over the batch, on the whole usable HBM: the compiled
    # boundary within 10% of the estimate's (measured: the same, to the bisection's 1/256).
    (row,) = capacity(Cell("palm-540b-64h", decode_attention="batch", batch=batch, **PALM_540B), "context", confirm=True)
    assert row.compiled == pytest.approx(row.estimated, rel=0.1)
    assert row.compiled_above is not None and row.compiled < row.compiled_above <= row.compiled + max(1, row.estimated // 256) + 1
    assert 2 <= row.compiles <= 16


def test_the_cli_prints_capacity_rows_and_refuses_bad_input():
    rows = json_lines(invoke("capacity", "--model", "palm-8b", "--chips", "8", "--batch", "8", "--decode-attention", "batch", "--format", "json"))
    assert [(row["phase"], row["field"]) for row in rows] == [("decode", "context_len")] and rows[0]["estimated"] > 2048
    assert_usage_error(invoke("capacity", "--model", "palm-8b", "--kv-share", "2"), "kv_share", "at most 1")
    assert_usage_error(invoke("capacity", "--model", "palm-8b", "--limit", "tokens"), "--limit")
    # Nothing fits: palm-540b's weights alone overflow 8 chips; the row says so and the exit code is 1.
    result = invoke("capacity", "--model", "palm-540b", "--chips", "8", "--format", "json")
    assert result.exit_code == 1 and json_lines(result)[0]["estimated"] is None
