"""Estimate rows: the schema, MFU and cost by definition, memory verdicts, bad input."""

import dataclasses

import pytest

from layouts.bench.cell import Cell
from layouts.errors import IndivisibleDimensionError, MeshError
from layouts.bench.estimate_rows import estimate_cell, estimate_or_error_rows
from layouts.hardware import UnknownChipError
from layouts.bench.result_row import ROW_KEYS
from zoo.logical_axes import Role
from zoo.errors import ZooError

CELL = Cell("palm-540b-64h", chips=64, batch=64, decode_attention="batch", weights="int8", input_len=2048, gen_tokens=64)


@pytest.mark.parametrize("mode", ["roofline", "calibrated"])
def test_rows_have_the_schema_and_mfu_is_the_definition(mode):
    prefill, decode = estimate_cell(CELL, mode)
    for row, tokens in ((prefill, 64 * 2048), (decode, 64 * 64)):
        assert set(row.as_dict()) == set(ROW_KEYS) and row.source == "estimate" and row.status == "ok"
        assert row.mfu == 2 * 540e9 * tokens / (64 * 275e12 * row.latency_s)
        assert row.cost_chip_ms_per_token == 64 * row.latency_s * 1000 / tokens
        assert row.tokens_per_s == tokens / row.latency_s
        assert row.memory_per_chip_bytes["total"] == sum(row.memory_per_chip_bytes[k] for k in ("weights", "kv_cache", "other"))
    assert prefill.step_time_s == prefill.latency_s
    assert decode.latency_s == pytest.approx(64 * decode.step_time_s, rel=0.01)


def test_roofline_is_a_lower_bound_of_calibrated():
    for roofline, calibrated in zip(estimate_cell(CELL, "roofline"), estimate_cell(CELL, "calibrated")):
        assert roofline.latency_s < calibrated.latency_s


def test_int8_halves_weight_bytes_and_keeps_compute():
    bf16 = estimate_cell(Cell("palm-62b", chips=8, batch=8, phase="decode", weights="bf16"))[0]
    int8 = estimate_cell(Cell("palm-62b", chips=8, batch=8, phase="decode", weights="int8"))[0]
    assert int8.memory_per_chip_bytes["weights"] == pytest.approx(bf16.memory_per_chip_bytes["weights"] / 2, rel=1e-3)
    assert int8.details["compute_s"] == bf16.details["compute_s"]
    assert int8.details["memory_s"] < 0.6 * bf16.details["memory_s"]


def test_does_not_fit_is_a_verdict():
    (row,) = estimate_cell(Cell("palm-540b-64h", chips=8, batch=8, phase="decode"))
    assert row.fits is False and row.memory_per_chip_bytes["weights"] > row.hbm_bytes


def test_communication_is_per_kind():
    (row,) = estimate_cell(Cell("palm-62b", chips=16, batch=16, phase="decode", decode_attention="batch"))
    comm = row.comm_bytes_per_chip
    assert comm["all_gather"] > 0 and comm["reduce_scatter"] > 0 and comm["all_to_all"] > 0 and comm["other"] == 0


def test_the_true_palm_540b_splits_its_48_heads_16_ways_on_64_chips():
    # The heads over x and y (48 = 3 · 16), the head dimension over z (`layouts.fit`).
    cell = Cell("palm-540b", prefill_layout="1d-ws", decode_layout="1d-ws", chips=64, mesh="4x4x4", batch=64)
    partitioning = cell.resolve().partitionings["decode"]
    assert partitioning.axes(Role.WEIGHT, "heads") == ("x", "y") and partitioning.axes(Role.WEIGHT, "head_dim") == ("z",)
    assert all(row.status == "ok" for row in estimate_cell(cell))


@pytest.mark.parametrize(
    "cell, error, message",
    [
        (Cell("palm-8b", chips=12, batch=12), MeshError, "12 chips do not form"),
        (Cell("palm-8b", chips=16, batch=16, target="h100-sxm"), MeshError, "exceed the largest NVLink domain"),
        (Cell("mtnlg-530b", chips=4096, decode_layout="1d-ws", phase="decode"), IndivisibleDimensionError, "size 51200"),
        (Cell("palm-8b", chips=8, target="tpu-v9"), UnknownChipError, "unknown chip 'tpu-v9'"),
    ],
)
def test_bad_input_is_one_line(cell, error, message):
    with pytest.raises(error, match=message) as raised:
        estimate_cell(cell)
    assert "\n" not in str(raised.value)
    rows = estimate_or_error_rows(cell)
    assert all(row.status == "error" and message.split()[0] in row.error and row.latency_s is None for row in rows)


@pytest.mark.parametrize("field, value", [("chips", 0), ("batch", -1), ("input_len", 0)])
def test_zero_or_negative_sizes(field, value):
    with pytest.raises(ZooError, match=f"{field} must be a positive integer"):
        estimate_cell(Cell("palm-8b", **{field: value}))


def test_unknown_mode():
    with pytest.raises(ZooError, match="unknown estimate mode 'fast'"):
        estimate_cell(CELL, "fast")


def test_user_layout_is_estimated_from_its_rules(tmp_path):
    # A copy of 2d-ws under another name gives the same numbers: nothing keys on the name.
    from layouts.builtin import TWO_D_WEIGHT_STATIONARY

    rules = TWO_D_WEIGHT_STATIONARY.rules
    lines = ['kind = "ffn"', 'name = "my-2d"', 'summary = "copy"', 'algorithm = "E_x F_yz"']
    for role in ("weight", "weight_use", "activation"):
        lines.append(f"[{role}]")
        lines += [f"{name} = {list(axes)!r}".replace("'", '"') for name, axes in rules[role].items()]
    path = tmp_path / "my-2d.toml"
    path.write_text("\n".join(lines) + "\n")
    mine = estimate_cell(Cell("palm-62b", chips=16, batch=16, prefill_layout=str(path), decode_layout=str(path)))
    builtin = estimate_cell(Cell("palm-62b", chips=16, batch=16))
    assert [row.latency_s for row in mine] == [row.latency_s for row in builtin]
    assert mine[0].layout == "my-2d"


def test_the_cost_model_needs_no_cell():
    """A partitioning, a chip, a mesh and a workload: the estimate a downstream user computes."""
    from layouts import Partitioning, get_attention_layout, get_chip, get_layout
    from layouts.cost import Workload, best_choice, estimate_phase
    from zoo import get_preset

    config = get_preset("palm-540b-64h")
    partitioning = Partitioning(get_layout("2d-ws"), get_attention_layout("batch"), config)
    workload = Workload(batch=64, input_len=2048, context_len=2048, gen_tokens=64, weights="int8")
    found = estimate_phase(partitioning, get_chip("tpu-v4"), (4, 4, 4), workload, "decode")
    (row,) = estimate_cell(dataclasses.replace(CELL, phase="decode"))
    assert found.step_time_s == row.step_time_s and found.memory_per_chip_bytes == row.memory_per_chip_bytes and found.fits
    best = best_choice(config, get_chip("tpu-v4"), 64, workload, "decode")
    assert best.estimate.latency_s <= found.latency_s and best.layout in ("1d-ws", "2d-ws")
