"""Compile targets: names, standard slice shapes, TPU topologies described with no TPU present."""

import subprocess
import sys

import pytest

from layouts.errors import TargetError
from layouts.compiled.targets import FAMILIES, get_target, reported_usable_hbm, target_names
from layouts.hardware import get_chip

GIB = 2**30


@pytest.mark.parametrize(
    "spec, chips, shape, topology",
    [
        ("tpu-v4", 8, (2, 2, 2), "v4:2x2x2"),
        ("tpu-v4", 64, (4, 4, 4), "v4:4x4x4"),
        ("tpu-v4", 256, (4, 8, 8), "v4:4x8x8"),
        ("tpu-v5p", 16, (2, 2, 4), "v5p:2x2x4"),
        ("tpu-v5e", 8, (2, 4), "v5e:2x4"),
        ("tpu-v6e", 256, (16, 16), "v6e:16x16"),
        ("tpu-v4:4x4x8", 128, (4, 4, 8), "v4:4x4x8"),
    ],
)
def test_chip_counts_map_to_standard_slices(spec, chips, shape, topology):
    target = get_target(spec, chips)
    assert (target.slice_shape, target.topology_name, target.name) == (shape, topology, spec)


@pytest.mark.parametrize("spec, chips, kind", [("tpu-v4", 8, "TPU v4"), ("tpu-v5e", 8, "TPU v5 lite"), ("tpu-v5p", 8, "TPU v5"), ("tpu-v6e", 4, "TPU v6 lite")])
def test_topologies_have_one_device_per_chip(spec, chips, kind):
    devices = get_target(spec, chips).devices()
    assert len(devices) == chips
    assert {device.platform for device in devices} == {"tpu"} and {device.device_kind for device in devices} == {kind}


def test_hbm_per_chip_is_what_a_program_may_use():
    assert get_target("tpu-v4", 8).hbm_bytes() == int(30.75 * GIB) and get_chip("tpu-v4").hbm_bytes == 32 * GIB
    assert get_target("tpu-v5e", 8).hbm_bytes() == int(15.75 * GIB)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_usable_hbm_presets_are_what_libtpu_reports(family):
    # libtpu prints the limit to two decimals of a GiB.
    assert reported_usable_hbm(family) == pytest.approx(get_chip(family).per_device().usable_hbm_bytes, abs=0.01 * GIB)  # per device: what a program sees


@pytest.mark.parametrize(
    "spec, chips, words",
    [
        ("tpu-v9", 8, ["unknown target", "tpu-v4", "tpu-v5e", "local"]),
        ("tpu-v4", 6, ["no standard slice of 6", "8", "64"]),
        ("tpu-v4:4x4", 16, ["malformed slice shape"]),
        ("tpu-v4:4x4x8", 64, ["128 chips", "chips=64"]),
        ("tpu-v4:3x3x3", 27, ["2x2 hosts"]),
        ("local", 16, ["local has 8", "tpu-v4"]),
    ],
)
def test_bad_targets_say_what_is_valid(spec, chips, words):
    with pytest.raises(TargetError) as raised:
        get_target(spec, chips)
    message = str(raised.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_local_is_the_devices_present(devices):
    target = get_target("local", 8)
    assert target.devices() == list(devices) and not target.is_tpu_topology
    assert "local" in target_names() and set(FAMILIES) <= set(target_names())


def test_describing_a_topology_prints_nothing():
    code = "from layouts.compiled.targets import get_target; print(len(get_target('tpu-v4', 8).devices()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={"JAX_PLATFORMS": "cpu", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "8" and done.stderr == ""
