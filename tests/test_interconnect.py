"""How a mesh lies on a slice's links (layouts.interconnect): the mapping against the device
coordinates of the meshes the compile path builds, and the per-axis cost of each collective."""

import itertools
import math

import numpy as np
import pytest

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.compiled.targets import get_target, target_chip
from layouts.cost.estimator import estimate_phase
from layouts.fit import fit
from layouts.hardware import get_chip
from layouts.interconnect import CORES, PHYSICAL_AXES, Ring, phase_hops, phase_seconds, place
from layouts.mesh import make_mesh
from layouts.registry import get_partitioning
from layouts.workload import Workload
from zoo.presets import get_preset


def _varying_axes(grid: np.ndarray, logical: int) -> set[str]:
    """The physical axes (and C, a chip's devices) whose coordinate changes along `logical`."""
    coords = np.array([[*device.coords, device.core_on_chip] for device in grid.reshape(-1)]).reshape(*grid.shape, 4)
    moved = np.moveaxis(coords, logical, 0)
    return {(*PHYSICAL_AXES, CORES)[axis] for axis in range(4) if len({tuple(row) for row in moved[:, ..., axis].reshape(moved.shape[0], -1).tolist()}) > 1}


@pytest.mark.parametrize(
    "target, chips, mesh",
    [
        ("tpu-v4", 64, (4, 4, 4)), ("tpu-v4", 64, (1, 4, 16)), ("tpu-v4", 64, (1, 1, 64)), ("tpu-v4", 128, (8, 4, 4)), ("tpu-v4", 64, (2, 4, 8)),
        ("tpu-v5e", 256, (1, 16, 16)), ("tpu-v5p", 64, (4, 4, 4)), ("tpu-v5p", 128, (2, 8, 8)), ("tpu-v6e", 64, (1, 8, 8)),
        ("tpu-v7x", 16, (2, 2, 4)), ("tpu-v7x", 32, (4, 2, 4)), ("tpu-v7x", 32, (2, 4, 4)), ("tpu-v7x", 128, (4, 4, 8)), ("tpu-v7x", 128, (1, 8, 16)), ("tpu-v7x", 128, (2, 4, 16)),
    ],
)  # fmt: skip
def test_the_placement_is_the_compiled_meshs(target, chips, mesh):
    found = get_target(target, chips)
    grid = make_mesh(mesh, found.devices()).devices
    placement = place(target_chip(target, chips), mesh, found.slice_shape)
    for logical in range(3):
        expected = {axis for ring in placement.rings[logical] for axis in (("X", "Y") if ring.axis == "XY" else (ring.axis,))}
        assert _varying_axes(grid, logical) == expected, (mesh, logical, placement.describe())


def test_a_collective_over_several_axes_runs_a_phase_per_axis():
    v4 = get_chip("tpu-v4")
    rings = place(v4, (4, 4, 4)).along(("x", "y", "z"))
    assert [ring.size for ring in rings] == [4, 4, 4] and all(ring.wraps and ring.bandwidth == 90e9 for ring in rings)
    # Gathering phase by phase moves D·(K−1)/K over one axis's links at a time.
    assert phase_seconds("all_gather", 64e6, rings) == pytest.approx(64e6 * 63 / 64 / 90e9)
    assert phase_seconds("reduce_scatter", 64e6, rings) == phase_seconds("all_gather", 64e6, rings)
    # An all-to-all moves the whole buffer in each phase, k/4 hops on average round a ring.
    assert phase_seconds("all_to_all", 1e6, rings) == pytest.approx(3 * 1e6 * 4 / 4 / 90e9)
    assert phase_hops(rings) == 3 * 2


def test_rings_close_only_in_whole_cubes_and_whole_pods():
    v4, v5e = get_chip("tpu-v4"), get_chip("tpu-v5e")
    assert all(ring.wraps for ring in place(v4, (4, 4, 8)).along("xyz"))
    assert not any(ring.wraps for ring in place(v4, (2, 2, 4)).along("xyz"))
    assert not any(ring.wraps for ring in place(v5e, (1, 8, 8)).along("xyz"))
    assert all(ring.wraps for ring in place(v5e, (1, 16, 16)).along("xyz"))
    line, ring = Ring("X", 4, False, 90e9, 2), Ring("X", 4, True, 90e9, 2)
    assert (line.hops, ring.hops) == (3, 2)
    assert phase_seconds("all_to_all", 1e6, (line,)) == 2 * phase_seconds("all_to_all", 1e6, (ring,))


def test_behind_a_switch_every_axis_reaches_every_chip_at_full_bandwidth():
    h100 = get_chip("h100-sxm")
    (ring,) = place(h100, (1, 1, 8)).along("z")
    assert (ring.size, ring.bandwidth, ring.hops) == (8, h100.interconnect_bandwidth, 7)
    assert phase_seconds("all_to_all", 8e6, (ring,)) == pytest.approx(7e6 / h100.interconnect_bandwidth)


@pytest.mark.parametrize("target, chips", [("tpu-v4", 64), ("tpu-v5e", 64), ("tpu-v5p", 128), ("tpu-v6e", 256)])
def test_the_estimate_names_the_links_each_collective_uses(target, chips):
    config, chip = get_preset("palm-62b"), get_chip(target)
    slice_shape = get_target(target, chips).slice_shape
    mesh = {64: (4, 4, 4), 128: (4, 4, 8), 256: (4, 8, 8)}[chips]
    placement = place(chip, mesh, slice_shape)
    for layout, attention, phase in itertools.product(FFN_LAYOUTS, ATTENTION_LAYOUTS, ("prefill", "decode")):
        partitioning = fit(get_partitioning(layout, attention, config), mesh, 64)
        estimate = estimate_phase(partitioning, chip, mesh, Workload(64, 128, 128, 8), phase, slice_shape=slice_shape)
        _check_named_links(estimate, placement)


def _check_named_links(estimate, placement):
    collectives = estimate.details["collective_links"]
    assert collectives and estimate.details["physical_axes"] == placement.describe()
    for collective in collectives:
        physical = {ring.axis for ring in placement.along(tuple(collective["axes"])) if ring.size > 1}
        named = {part.split(":")[0] for part in collective["links"].split(" · ")}
        assert named == physical and "links" in collective["links"], collective
    # Without collective matmul nothing hides: the collectives' seconds are the phase's.
    layers = estimate.details["layers"]
    by_stage = {stage: sum(c["seconds"] for c in collectives if c["stage"] == stage) for stage in ("layer", "head")}
    assert math.isclose(layers * by_stage["layer"] + by_stage["head"], estimate.details["comm_s"])
