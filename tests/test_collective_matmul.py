"""Collective matmul (the paper's Looped CollectiveEinsum): the same numbers as the unsharded
model on 8 forced CPU devices, collective-permutes in place of the reduce-scatters they replace in
a program compiled for TPU v4 2×2×2 (libtpu, no TPU needed), the same bytes as the estimate, and
an estimate that hides the loop's communication behind its matmuls."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FP32_ATOL, FP32_RTOL

from layouts import ATTENTION_LAYOUTS, FFN_LAYOUTS, Partitioning, Workload, build_steps, get_chip, get_partitioning, make_mesh
from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell, cross_check
from layouts.bench.estimate_rows import estimate_cell
from layouts.cost import estimate_phase
from layouts.errors import LayoutError
from zoo import Transformer, decode_step, get_preset, init_cache, prefill

BATCH, PROMPT = 8, 6
MODES = ("unidirectional", "bidirectional")


@pytest.fixture(scope="module", params=["palm-tiny", "mtnlg-tiny"])
def reference(request):
    config = get_preset(request.param).replace(dtype="float32")
    model = Transformer(config, key=jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (BATCH, PROMPT + 1), 0, 256, dtype=jnp.int32)
    logits, cache = jax.jit(prefill)(model, tokens[:, :PROMPT], init_cache(config, BATCH, PROMPT + 1))
    step_logits, _ = jax.jit(decode_step)(model, tokens[:, PROMPT], cache)
    return model, tokens, np.stack([logits, step_logits], axis=1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ffn", sorted(FFN_LAYOUTS))
def test_collective_matmul_gives_the_unsharded_logits(reference, devices, ffn, mode):
    model, tokens, expected = reference
    config = model.config
    prefill_p = Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS["heads"], config)
    decode_p = Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS["batch"], config)
    steps = build_steps(model, prefill_p, decode_p, make_mesh((2, 2, 2)), batch=BATCH, input_len=PROMPT, max_len=PROMPT + 1, collective_matmul=mode)
    cache = jax.device_put(init_cache(config, BATCH, PROMPT + 1), steps.prefill.cache_shardings)
    logits, cache = steps.prefill.step(steps.place_model(model, "prefill"), tokens[:, :PROMPT], cache)
    step_logits, _ = steps.decode.step(steps.place_model(model, "decode"), tokens[:, PROMPT], steps.to_decode(cache))
    np.testing.assert_allclose(np.stack([logits, step_logits], axis=1), expected, atol=FP32_ATOL, rtol=FP32_RTOL)


def _decode(layout: str, mode: str):
    cell = Cell("palm-8b", decode_layout=layout, decode_attention="batch", chips=8, mesh="2x2x2", target="tpu-v4", batch=64,
                input_len=2048, context_len=2048, gen_tokens=1, phase="decode", collective_matmul=mode)  # fmt: skip
    (compiled,), (estimated,) = compile_cell(cell), estimate_cell(cell)
    assert compiled.status == "ok", compiled.error
    return compiled, estimated


# Passes per layer of each loop's ring (doubled when bidirectional). A projection whose partial sums
# are reduce-scattered loops that; the first projection of a gathered input loops the gather only
# when its own output is not reduce-scattered in a loop. 1D: the query projection gathers the block
# input over 8 chips in its loop, and the block output is reduce-scattered over 8 in one (7 passes
# each). 2D: the query and FFN input projections reduce-scatter over x (1 pass each), the block
# output over yz (3 passes); its gathers stay single collectives.
PASSES = {"1d-ws": {"all-gather": 7, "reduce-scatter": 7}, "2d-ws": {"all-gather": 0, "reduce-scatter": 1 + 1 + 3}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layout", ["1d-ws", "2d-ws"])
def test_the_loops_run_as_permutes_and_move_the_estimated_bytes(layout, mode):
    compiled, estimated = _decode(layout, mode)
    in_loop = [entry for entry in compiled.details["collectives"] if entry["in_loop"] and entry["prescribed"]]
    looped = [entry for entry in in_loop if entry["implemented_as"] == "collective matmul permutes"]
    for kind, passes in PASSES[layout].items():
        found = sum(entry["per_step"] for entry in looped if entry["kind"] == kind)
        assert found == passes * 32 * (2 if mode == "bidirectional" else 1), (kind, found)
    # Nothing else but the collectives the layout prescribes: no all-reduce standing in for a
    # reduce-scatter, no permute the loops do not account for.
    assert {entry["kind"] for entry in in_loop} <= {"reduce-scatter", "all-gather", "all-to-all", "all-reduce"}
    assert all(entry["mesh_axes"] == "x" for entry in in_loop if entry["kind"] == "all-reduce")  # 2D's K/V head
    if layout == "1d-ws":  # every gather and reduce-scatter of the layers is a loop
        assert all(entry in looped for entry in in_loop if entry["kind"] in ("all-gather", "reduce-scatter"))
    ratios = cross_check(compiled, estimated)
    assert all(0.95 <= ratios[kind] <= 1.10 for kind in ("all_gather", "reduce_scatter", "all_to_all", "total")), ratios


def test_the_estimate_hides_the_loops_communication_behind_its_matmuls():
    """Prefill of 2048 tokens on palm-540b-64h, 2D weight-stationary on v4 4x4x4: its projection
    reduce-scatters are as long as their matmuls or shorter, so the loop hides most of them, and
    every pass of the ring is a collective."""
    partitioning = get_partitioning("2d-ws", "heads", get_preset("palm-540b-64h"))
    workload = Workload(batch=1, input_len=2048, context_len=2048, gen_tokens=1)
    plain = estimate_phase(partitioning, get_chip("tpu-v4"), (4, 4, 4), workload, "prefill")
    looped = estimate_phase(partitioning, get_chip("tpu-v4"), (4, 4, 4), workload, "prefill", collective_matmul="bidirectional")
    assert looped.comm_bytes_per_chip == plain.comm_bytes_per_chip  # the same bytes move
    assert looped.details["comm_s"] < 0.8 * plain.details["comm_s"]
    assert looped.details["collectives"] > plain.details["collectives"]
    assert looped.step_time_s < plain.step_time_s


def test_collective_matmul_needs_the_explicit_partitioner():
    with pytest.raises(LayoutError, match="needs the explicit partitioner"):
        Cell("palm-tiny", partitioner="compiler", collective_matmul="unidirectional")
    with pytest.raises(LayoutError, match="valid: none, unidirectional, bidirectional"):
        Cell("palm-tiny", collective_matmul="both-ways")
