"""The paper's qualitative results as the calibrated estimate must rank them (§3-4 and Table 2):
the estimate's answer to "which layout" is its ranking more than any one number."""

import pytest

from layouts.builtin import FFN_LAYOUTS
from layouts.cost.estimator import estimate_phase
from layouts.fit import fit
from layouts.hardware import get_chip
from layouts.mesh import choose_mesh_shape
from layouts.registry import get_partitioning
from layouts.workload import Workload
from zoo.presets import get_preset

PALM = get_preset("palm-540b-64h")


def _step(layout: str, attention: str, phase: str, *, chips: int = 64, batch: int, input_len: int = 2048, weights: str = "bf16", config=PALM, mesh=None) -> float:
    mesh = mesh or choose_mesh_shape(chips, FFN_LAYOUTS[layout], config, tokens=batch * input_len if phase == "prefill" else batch, batch=batch)
    partitioning = fit(get_partitioning(layout, attention, config), mesh, batch)
    return estimate_phase(partitioning, get_chip("tpu-v4"), mesh, Workload(batch, input_len, input_len, 64, weights), phase).step_time_s


@pytest.mark.parametrize("chips", [64, 128, 256])
@pytest.mark.parametrize("batch, weights", [(64, "int8"), (512, "bf16")], ids=["low-latency", "large-batch"])
def test_2d_weight_stationary_decodes_ahead_of_1d_from_64_chips(chips, batch, weights):
    two_d = _step("2d-ws", "batch", "decode", chips=chips, batch=batch, weights=weights)
    one_d = _step("1d-ws", "batch", "decode", chips=chips, batch=batch, weights=weights)
    assert two_d < one_d


@pytest.mark.parametrize("layout", ["wg-x", "wg-xy", "wg-xyz"])
def test_weight_gathered_prefill_wins_above_the_crossover_and_loses_below(layout):
    # The paper's crossover is at about E tokens per batch (18,432 for PaLM 540B; §4).
    mesh = (4, 4, 4)
    assert _step(layout, "batch", "prefill", batch=512, mesh=mesh) < _step("2d-ws", "heads", "prefill", batch=512, mesh=mesh)
    assert _step(layout, "batch", "prefill", batch=1, mesh=mesh) > _step("2d-ws", "heads", "prefill", batch=1, mesh=mesh)


def test_int8_weights_win_at_small_batch_and_tie_at_large():
    small = _step("2d-ws", "batch", "decode", batch=8, weights="int8") / _step("2d-ws", "batch", "decode", batch=8, weights="bf16")
    large = _step("2d-ws", "batch", "decode", batch=512, weights="int8") / _step("2d-ws", "batch", "decode", batch=512, weights="bf16")
    assert small < 0.85 and 0.95 <= large <= 1.0


@pytest.mark.parametrize("batch", [1, 64, 512])
def test_the_serial_block_decodes_slower_than_the_parallel_one(batch):
    serial = PALM.replace(block="serial")
    assert _step("2d-ws", "batch", "decode", batch=batch, config=serial) > 1.1 * _step("2d-ws", "batch", "decode", batch=batch)
