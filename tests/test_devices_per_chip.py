"""Chips and devices: a mesh's points are JAX devices. On v4 (compiled as megacore), v5p (libtpu's
default) and v5e/v6e a device is a chip; a TPU7x chip is two devices (chiplets, each a TensorCore
with 96 GiB of its own), `--chips` counts devices there, and a chip's two devices sit next to each
other on one mesh axis, joined by their die-to-die link. Compile and estimate rows for TPU7x."""

import itertools

import numpy as np
import pytest

from conftest import slow_but
from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.compiled.targets import get_target, target_chip
from layouts.errors import TargetError
from layouts.hardware import get_chip
from layouts.mesh import make_mesh

GIB = 2**30


@pytest.mark.parametrize("target, chips", [("tpu-v4", 64), ("tpu-v5p", 64), ("tpu-v6e", 64)])
def test_a_device_is_a_chip_on_megacore_and_single_core_generations(target, chips):
    devices = get_target(target, chips).devices()
    assert len(devices) == chips and {device.core_on_chip for device in devices} == {0}
    assert len({tuple(device.coords) for device in devices}) == chips
    assert target_chip(target, chips) == get_chip(target)


@pytest.mark.parametrize("mesh", [(4, 4, 8), (8, 4, 4), (1, 8, 16), (2, 2, 32)])
def test_a_tpu7x_chips_two_devices_are_neighbours_on_one_mesh_axis(mesh):
    devices = get_target("tpu-v7x", 128).devices()
    assert len(devices) == 128 and len({tuple(device.coords) for device in devices}) == 64
    grid = make_mesh(mesh, devices).devices
    where = {device.id: index for index, device in np.ndenumerate(grid)}
    for first, second in itertools.combinations(devices, 2):
        if tuple(first.coords) != tuple(second.coords):
            continue
        apart = [axis for axis in range(3) if where[first.id][axis] != where[second.id][axis]]
        assert len(apart) == 1, (mesh, first, second)
        assert abs(where[first.id][apart[0]] - where[second.id][apart[0]]) == 1


def test_on_tpu7x_chips_count_devices_and_rows_are_per_device():
    device = target_chip("tpu-v7x", 16)
    chip = get_chip("tpu-v7x")
    assert (device.peak_flops, device.hbm_bandwidth, device.hbm_bytes) == (chip.peak_flops / 2, chip.hbm_bandwidth / 2, chip.hbm_bytes // 2)
    assert get_target("tpu-v7x", 16).slice_shape == (2, 2, 2) and get_target("tpu-v7x", 16).hbm_bytes() == pytest.approx(94.75 * GIB, abs=0.01 * GIB)
    with pytest.raises(TargetError, match=r"tpu-v7x:2x2x2 has 8 chips \(2 devices each: --chips counts devices on tpu-v7x\)"):
        get_target("tpu-v7x:2x2x2", 8)
    with pytest.raises(TargetError, match="no standard slice of 12 devices"):
        get_target("tpu-v7x", 12)


CELLS = [
    Cell("palm-540b-64h", chips=128, target="tpu-v7x", phase="decode", batch=64, decode_layout="2d-ws", decode_attention="batch"),
    Cell("palm-540b-64h", chips=64, target="tpu-v7x", phase="decode", batch=64, decode_layout="2d-ws", decode_attention="batch"),
    Cell("palm-8b", chips=16, target="tpu-v7x", phase="prefill", batch=16, input_len=256, prefill_layout="wg-xyz", prefill_attention="batch"),
    Cell("palm-8b", chips=32, target="tpu-v7x", phase="prefill", batch=32, input_len=256, prefill_layout="wg-xyz", prefill_attention="batch"),
]


@pytest.mark.parametrize("cell", slow_but(CELLS, [CELLS[0], CELLS[2]]), ids=lambda cell: f"{cell.model}-{cell.phase}-{cell.chips}")
def test_tpu7x_compiles_and_estimates(cell):
    (estimate,) = estimate_cell(cell)
    (compiled,) = compile_cell(cell)
    for row in (estimate, compiled):
        assert row.status == "ok" and row.fits, row.error
        assert "C" in row.physical_axes  # a chip's two devices are a mesh axis's innermost pair
        assert row.memory_per_chip_bytes["weights"] < row.memory_per_chip_bytes["total"] < 94.75 * GIB
    assert compiled.comm_bytes_per_chip["all_gather"] > 0 and compiled.details["collectives"]
    # Per device: the estimate's weights are the compiled program's argument shards.
    assert estimate.memory_per_chip_bytes["weights"] == pytest.approx(compiled.memory_per_chip_bytes["weights"], rel=0.02)
    assert any("C:2 die-to-die" in c["links"] for c in estimate.details["collective_links"])
