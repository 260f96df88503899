"""Ahead-of-time compiles of the zoo's steps for a TPU topology (no TPU present) and for 8 CPU
devices: per-chip argument bytes against the analytical shards, fits / does-not-fit, error rows."""

import math

import jax
import pytest

from layouts import FFN_LAYOUTS
from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell, cross_check, prescribed_comm_bytes
from layouts.errors import IndivisibleDimensionError, TargetError
from layouts.mesh import parse_mesh
from layouts.bench.result_row import ROW_KEYS
from layouts.sharding import weight_placements
from zoo import build_abstract, get_preset
from zoo.logical_axes import BATCH as BATCH_AXIS
from zoo.logical_axes import CACHE_BATCH, Role

BATCH, INPUT_LEN, CONTEXT = 8, 32, 64


def analytical_bytes(row, config) -> tuple[int, int, int]:
    """Per-chip weight bytes from the resolver's placements, KV bytes from the config (the cache is
    split over its batch by the attention layout's batch axes and the FFN's) and token bytes."""
    cell = Cell(config.name, prefill_layout=row.layout, decode_layout=row.layout, mesh=row.mesh, chips=row.chips, batch=row.batch)
    partitioning = cell.resolve().partitionings[row.phase]
    mesh_shape = dict(zip("xyz", parse_mesh(row.mesh)))
    weights = sum(p.per_chip_bytes for p in weight_placements(build_abstract(config), partitioning, mesh_shape))
    batch_ways = math.prod(mesh_shape[axis] for axis in partitioning.axes(Role.CACHE, CACHE_BATCH))
    cache_len = row.input_len if row.phase == "prefill" else row.context_len + row.gen_tokens
    kv = config.kv_bytes_per_token() * row.batch * cache_len // batch_ways
    token_ways = math.prod(mesh_shape[axis] for axis in partitioning.axes(Role.ACTIVATION, BATCH_AXIS))
    tokens = row.batch * (row.input_len if row.phase == "prefill" else 1) * 4 // token_ways
    return weights, kv, tokens


@pytest.mark.parametrize("target", ["tpu-v4", "local"])
@pytest.mark.parametrize("layout", sorted(FFN_LAYOUTS))
def test_argument_bytes_are_the_analytical_weights_and_kv(layout, target, devices):
    cell = Cell("palm-tiny", prefill_layout=layout, decode_layout=layout, chips=8, target=target, batch=BATCH, input_len=INPUT_LEN, context_len=CONTEXT)
    rows = compile_cell(cell)
    assert [row.phase for row in rows] == ["prefill", "decode"]
    config = get_preset("palm-tiny")
    for row in rows:
        assert row.status == "ok" and row.source == "compile" and row.target == target, row.error
        assert set(row.as_dict()) == set(ROW_KEYS)
        weights, kv, tokens = analytical_bytes(row, config)
        assert (row.memory_per_chip_bytes["weights"], row.memory_per_chip_bytes["kv_cache"]) == (weights, kv)
        memory = row.details["compiler_memory"]
        assert memory["arguments_logical"] == weights + kv + tokens + 4  # + the cache's int32 length
        # The compiler's own argument figure is those bytes in its device layouts: exact on the
        # CPU, plus the TPU tiles' padding, which the layouts it reports account for to the byte.
        assert memory["arguments"] == memory["arguments_logical"] + memory["arguments_layout_padding"]
        assert (memory["arguments_layout_padding"] == 0) == (target == "local")
        assert row.memory_per_chip_bytes["total"] >= memory["arguments"] - memory["aliased"]
        assert row.compile_time_s > 0 and row.fits is (True if target != "local" else None)
        assert row.context_len == (INPUT_LEN if row.phase == "prefill" else CONTEXT)
        # 8 forced CPU devices run the pod's program, as declared (zoo.execution).
        assert row.details["execution"] == {"layers": "scanned", "matmul_products": "compute dtype", "attention_scores": "heads-major"}


def test_decode_collectives_are_counted_per_layer():
    """palm-tiny has 2 layers: every collective of the layer scan runs an even number of times, and
    batch-sharded attention brings all-to-alls over the batch axes into the loop."""
    (row,) = compile_cell(Cell("palm-tiny", chips=8, phase="decode", decode_attention="batch", batch=BATCH, input_len=INPUT_LEN, context_len=CONTEXT))
    in_loop = [entry for entry in row.details["collectives"] if entry["in_loop"]]
    assert in_loop and all(entry["per_step"] % 2 == 0 for entry in in_loop)
    assert any(entry["kind"] == "all-to-all" for entry in in_loop)
    assert row.comm_bytes_per_chip["all_to_all"] > 0
    assert sum(row.comm_bytes_per_chip.values()) == pytest.approx(sum(entry["link_bytes_per_step"] for entry in row.details["collectives"]))
    # Link bytes count an all-reduce twice: the buffer figures count it once.
    all_reduce = [entry for entry in row.details["collectives"] if entry["kind"] == "all-reduce"]
    assert sum(entry["link_bytes_per_step"] for entry in all_reduce) == 2 * sum(entry["buffer_bytes_per_step"] for entry in all_reduce)
    cost = row.details["compiler_cost"]
    assert cost["flops"] > 0 and "XLA cost analysis" in cost["source"]


def test_a_model_that_cannot_fit_is_an_error_row_that_keeps_its_memory():
    """PaLM 540B in bf16 on 8 v4 chips: 135 GB of weights per chip against the 30.75 GiB libtpu leaves a program."""
    (row,) = compile_cell(Cell("palm-540b", chips=8, target="tpu-v4", phase="decode", batch=8, input_len=2048))
    assert row.status == "error" and row.fits is False
    assert row.error.startswith("does not fit: needs ") and "a program may use 30.75 GiB" in row.error
    config = get_preset("palm-540b")
    assert row.memory_per_chip_bytes["weights"] == pytest.approx(config.param_count * 2 / 8, rel=0.01)
    assert row.memory_per_chip_bytes["total"] > row.hbm_bytes == int(30.75 * 2**30)
    assert "RESOURCE_EXHAUSTED" in row.details["compiler_error"]


def test_a_compiler_failure_is_an_error_row_with_its_reason(monkeypatch):
    def fail(self, *args, **kwargs):
        raise jax.errors.JaxRuntimeError("INTERNAL: the compiler gave up\non two lines")

    monkeypatch.setattr(jax.stages.Lowered, "compile", fail)
    rows = compile_cell(Cell("palm-tiny", chips=8, batch=BATCH, input_len=INPUT_LEN))
    assert [(row.status, row.error) for row in rows] == [("error", "INTERNAL: the compiler gave up on two lines")] * 2
    assert rows[0].memory_per_chip_bytes["total"] is None and rows[0].compile_time_s is not None


def test_input_errors_raise():
    with pytest.raises(TargetError):
        compile_cell(Cell("palm-tiny", chips=8, target="tpu-v9"))
    with pytest.raises(IndivisibleDimensionError):
        compile_cell(Cell("palm-tiny", chips=6, phase="decode", target="local"))  # a vocabulary of 256 over 6 chips


def test_cross_check_gives_compiled_over_estimated():
    (row,) = compile_cell(Cell("palm-tiny", chips=8, phase="decode", decode_attention="batch", batch=BATCH, input_len=INPUT_LEN, context_len=CONTEXT))
    import dataclasses

    estimate = dataclasses.replace(
        row,
        source="estimate",
        memory_per_chip_bytes={**row.memory_per_chip_bytes, "weights": row.memory_per_chip_bytes["weights"] / 2},
        comm_bytes_per_chip={**row.comm_bytes_per_chip, "all_to_all": row.comm_bytes_per_chip["all_to_all"] * 4, "reduce_scatter": 0.0},
    )
    ratios = cross_check(row, estimate)
    assert ratios["weights"] == pytest.approx(2.0) and ratios["kv_cache"] == 1.0 and ratios["all_to_all"] == pytest.approx(0.25)
    # The compiled side counts what the layout prescribes: the embedding lookup's reduce-scatter
    # is listed apart, not compared.
    prescribed = prescribed_comm_bytes(row)
    assert prescribed["reduce_scatter"] == row.comm_bytes_per_chip["reduce_scatter"] - row.details["unprescribed_comm_bytes_per_chip"]["reduce_scatter"]
    assert ratios["reduce_scatter"] == (1.0 if prescribed["reduce_scatter"] == 0 else float("inf"))


@pytest.mark.slow
def test_full_size_compiles_in_seconds_under_the_layer_scan():
    (row,) = compile_cell(Cell("palm-540b-64h", chips=64, target="tpu-v4", phase="decode", decode_attention="batch", batch=64, input_len=2048))
    assert row.status == "ok" and row.fits is True and row.compile_time_s < 120
    assert all(entry["per_step"] % 118 == 0 for entry in row.details["collectives"] if entry["in_loop"])
