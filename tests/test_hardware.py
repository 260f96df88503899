"""Chip presets: every constant cited, names checked, user chip files, slice sizes."""

import pytest

from layouts.errors import MeshError
from layouts.hardware import CHIPS, ChipFileError, UnknownChipError, get_chip, load_chips

CITED = ("peak_flops", "hbm_bytes", "hbm_bandwidth", "interconnect_bandwidth", "max_chips")


def test_the_paper_v4_constants():
    chip = get_chip("tpu-v4")
    assert (chip.peak_flops, chip.hbm_bytes, chip.hbm_bandwidth, chip.interconnect_bandwidth) == (275e12, 32 * 2**30, 1200e9, 270e9)
    assert chip.interconnect_bandwidth / chip.links == 45e9 and chip.axis_bandwidth == 90e9


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_every_constant_has_a_source(name):
    chip = get_chip(name)
    assert all(chip.sources.get(field, "").strip() for field in CITED), name
    assert chip.hbm_bytes > 10 * 2**30 and chip.peak_flops > 1e14


def test_the_required_names_exist():
    assert {"tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "a100-80gb", "h100-sxm", "h200"} <= set(CHIPS)


def test_unknown_chip_names_the_valid_ones():
    with pytest.raises(UnknownChipError, match="did you mean 'tpu-v4'.*valid: a100-80gb"):
        get_chip("tpu-v44")


@pytest.mark.parametrize("name, chips", [("tpu-v4", 12), ("tpu-v4", 8192), ("tpu-v5e", 512), ("h100-sxm", 16)])
def test_chip_counts_a_preset_cannot_form(name, chips):
    with pytest.raises(MeshError, match=f"{chips} chips"):
        get_chip(name).check_chips(chips)


@pytest.mark.parametrize("chips", [1, 8, 64, 192, 256, 4096])
def test_v4_slices(chips):
    get_chip("tpu-v4").check_chips(chips)


def test_user_chip_file(tmp_path):
    path = tmp_path / "chips.toml"
    path.write_text(
        "[chip.my-chip]\npeak_flops = 100e12\nhbm_bytes = 17179869184\nhbm_bandwidth = 8e11\n"
        "interconnect_bandwidth = 1e11\nlinks = 4\ntorus_axes = 2\nmax_chips = 64\n"
        '[chip.my-chip.sources]\npeak_flops = "my spec sheet"\n'
    )
    chip = load_chips(path)["my-chip"]
    assert chip.peak_flops == 100e12 and chip.sources["peak_flops"] == "my spec sheet"
    assert get_chip(str(path)) == chip


def test_bad_chip_file(tmp_path):
    path = tmp_path / "chips.toml"
    path.write_text("[chip.bad]\npeak_flops = -1\n")
    with pytest.raises(ChipFileError, match="lacks"):
        load_chips(path)
    path.write_text("[chip.bad]\npeak_flops = -1\nhbm_bytes = 1\nhbm_bandwidth = 1\ninterconnect_bandwidth = 1\nlinks = 1\ntorus_axes = 2\nmax_chips = 4\n")
    with pytest.raises(ChipFileError, match="peak_flops must be a positive number"):
        load_chips(path)


@pytest.mark.parametrize("name", ["tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e"])
def test_every_torus_says_when_its_axes_wrap_around(name):
    chip = get_chip(name)
    assert chip.wrap_multiple in (4, 16) and chip.sources.get("wrap_multiple", "").startswith("https://")
    assert chip.axis_bandwidth * chip.torus_axes == chip.interconnect_bandwidth
