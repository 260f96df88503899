"""Accelerator presets for the estimator: peak FLOP/s, HBM size and bandwidth, interconnect bandwidth
and how chips connect, each constant with the public source it was taken from.

Bandwidths are one-way bytes per second. A torus chip spreads its links evenly over its axes
(`axis_bandwidth`); chips behind a switch (NVLink/NVSwitch) reach every peer at full bandwidth. Users add chips in a TOML file with the same field names:

    [chip.my-chip]
    description = "..."
    peak_flops = 275e12              # bf16 dense FLOP/s
    hbm_bytes = 34359738368
    hbm_bandwidth = 1.2e12
    interconnect_bandwidth = 2.7e11  # one-way, all links of one chip together
    links = 6
    torus_axes = 3                   # 3: 3D torus, 2: 2D torus, 0: switch
    wrap_multiple = 4                # axes wrap around when every slice dimension is a multiple of it
    max_chips = 4096
    [chip.my-chip.sources]
    peak_flops = "https://..."
"""

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from layouts.errors import MeshError
from layouts.toml_file import read_toml
from zoo.errors import ZooError
from zoo.presets import unknown_name_message

GIB = 2**30
GB = 1e9


class UnknownChipError(ZooError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ChipFileError(ZooError):
    """A user chip file that does not match the schema; names the file and the key."""


@dataclasses.dataclass(frozen=True)
class Chip:
    name: str
    description: str
    peak_flops: float  # bf16 dense FLOP/s: the peak of the MFU definition
    hbm_bytes: int
    hbm_bandwidth: float  # bytes/s
    interconnect_bandwidth: float  # bytes/s one-way, all of one chip's links together
    links: int
    torus_axes: int  # 3 or 2 for a torus (links spread evenly over the axes), 0 for a switch
    max_chips: int  # the largest slice (torus) or switched domain
    # A torus slice closes its axes into rings (wraparound links) when every dimension is a multiple
    # of this (v4, v5p: whole 4×4×4 cubes); 0: never (a mesh), or a switch.
    wrap_multiple: int = 0
    peak_int8_ops: float | None = None  # int8 OP/s; unused by the estimator (matmuls stay bf16, §3.6)
    peak_fp8_flops: float | None = None  # fp8 FLOP/s; unused by the estimator likewise
    # JAX devices a chip shows as: 2 for TPU7x, whose two chiplets each hold a TensorCore and half
    # the HBM; 1 where a chip is one device (v4 compiled as megacore, v5p by default, v5e, v6e).
    devices_per_chip: int = 1
    die_to_die_bandwidth: float | None = None  # bytes/s one-way between a chip's devices
    # True for `per_device()`'s view: every figure is one device's, and a mesh point is a device.
    per_device_view: bool = False
    # What a program may use: the HBM less what the runtime keeps. For TPUs, the limit libtpu's
    # compiler reports (tests/test_targets.py checks it against libtpu); unset, the whole HBM.
    usable_hbm_bytes: int | None = None
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        for field in ("peak_flops", "hbm_bytes", "hbm_bandwidth", "interconnect_bandwidth", "links", "max_chips") + (
            ("usable_hbm_bytes",) if self.usable_hbm_bytes is not None else ()
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ZooError(f"chip {self.name!r}: {field} must be a positive number, got {value!r}")
        if isinstance(self.devices_per_chip, bool) or not isinstance(self.devices_per_chip, int) or self.devices_per_chip < 1:
            raise ZooError(f"chip {self.name!r}: devices_per_chip must be a positive integer, got {self.devices_per_chip!r}")
        if self.devices_per_chip > 1 and not self.die_to_die_bandwidth:
            raise ZooError(f"chip {self.name!r}: a chip of {self.devices_per_chip} devices needs die_to_die_bandwidth")
        if isinstance(self.wrap_multiple, bool) or not isinstance(self.wrap_multiple, int) or self.wrap_multiple < 0:
            raise ZooError(f"chip {self.name!r}: wrap_multiple must be a non-negative integer, got {self.wrap_multiple!r}")
        if self.torus_axes not in (0, 2, 3):
            raise ZooError(f"chip {self.name!r}: torus_axes must be 0 (switch), 2 or 3, got {self.torus_axes!r}")

    def per_device(self) -> "Chip":
        """This chip as its mesh points see it: itself where a chip is one device; for a chip of n
        devices (TPU7x), one device's share of its compute, HBM, HBM bandwidth and links (both
        devices of a chip drive the same links), with chip counts in devices. The estimator costs
        a mesh of devices with it; `layouts.interconnect` adds the die-to-die link between them."""
        n = self.devices_per_chip
        if n == 1 or self.per_device_view:
            return self
        share = lambda value: None if value is None else value / n  # noqa: E731
        return dataclasses.replace(
            self,
            description=f"{self.description}; one of its {n} devices",
            peak_flops=self.peak_flops / n, peak_int8_ops=share(self.peak_int8_ops), peak_fp8_flops=share(self.peak_fp8_flops),
            hbm_bytes=self.hbm_bytes // n, hbm_bandwidth=self.hbm_bandwidth / n, interconnect_bandwidth=self.interconnect_bandwidth / n,
            usable_hbm_bytes=None if self.usable_hbm_bytes is None else self.usable_hbm_bytes // n,
            max_chips=self.max_chips * n, per_device_view=True,
        )  # fmt: skip

    @property
    def program_hbm_bytes(self) -> int:
        """The memory per chip a program may use: what `fits` is judged against."""
        return int(self.usable_hbm_bytes or self.hbm_bytes)

    @property
    def axis_bandwidth(self) -> float:
        """One-way bandwidth out of a chip over its links along one torus axis (both directions'
        links together; the whole interconnect behind a switch): what one phase of a collective
        runs at (`layouts.interconnect`)."""
        return self.interconnect_bandwidth / self.torus_axes if self.torus_axes else self.interconnect_bandwidth

    def check_chips(self, chips: int) -> None:
        """Raise unless `chips` of this kind form one slice (torus) or one switched domain (in a
        per-device view, `chips` counts devices: whole chips of them).

        Torus slices are powers of two up to a cube of 4 per axis and whole multiples of that cube
        above it (v4 and v5p slices grow in 4×4×4 cubes; 2D-torus slices in powers of two)."""
        if self.per_device_view:
            if chips % self.devices_per_chip:
                raise MeshError(f"{self.name}: {chips} devices are not whole chips of {self.devices_per_chip} devices each")
            whole = dataclasses.replace(self, per_device_view=False, max_chips=self.max_chips // self.devices_per_chip)
            try:
                whole.check_chips(chips // self.devices_per_chip)
            except MeshError as error:
                raise MeshError(f"{chips} devices are {chips // self.devices_per_chip} chips of {self.devices_per_chip}: {error}") from None
            return
        if chips > self.max_chips:
            raise MeshError(f"{self.name}: {chips} chips exceed the largest {self._domain} of {self.max_chips}")
        if self.torus_axes == 0:
            return
        block = 4**self.torus_axes
        power_of_two = chips & (chips - 1) == 0
        if not (power_of_two and chips <= block) and chips % block:
            raise MeshError(
                f"{self.name}: {chips} chips do not form a {self.torus_axes}D torus slice; "
                f"use a power of two up to {block} or a multiple of {block}"
            )

    @property
    def _domain(self) -> str:
        return "NVLink domain" if self.torus_axes == 0 else "slice"


_CLOUD_V4 = "https://cloud.google.com/tpu/docs/v4"
_CLOUD_V5E = "https://cloud.google.com/tpu/docs/v5e"
_CLOUD_V5P = "https://cloud.google.com/tpu/docs/v5p"
_CLOUD_V6E = "https://cloud.google.com/tpu/docs/v6e"
_CLOUD_V7X = "https://docs.cloud.google.com/tpu/docs/tpu7x"
_PAPER = "Pope et al. 2022, arXiv 2211.05102 p.8 (docs/paper-model.md §2)"
_A100 = "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
_H100 = "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"
_H200 = "https://www.nvidia.com/en-us/data-center/h200/"
_NVLINK = "https://www.nvidia.com/en-us/data-center/nvlink/"
_LIBTPU = "libtpu 0.0.42.1: the HBM its compiler reports available to a program (RESOURCE_EXHAUSTED message)"

_BUILTIN: tuple[Chip, ...] = (
    Chip(
        "tpu-v4", "Google TPU v4: 3D torus, 6 ICI links",
        peak_flops=275e12, peak_int8_ops=275e12, hbm_bytes=32 * GIB, hbm_bandwidth=1200 * GB,
        interconnect_bandwidth=270 * GB, links=6, torus_axes=3, max_chips=4096, wrap_multiple=4,
        usable_hbm_bytes=int(30.75 * GIB),
        sources={
            "usable_hbm_bytes": _LIBTPU + " (30.75 GiB)",
            "peak_flops": _PAPER + "; " + _CLOUD_V4,
            "peak_int8_ops": _CLOUD_V4 + " (275 TOPS int8)",
            "hbm_bytes": _PAPER + " (32 GiB)",
            "hbm_bandwidth": _PAPER + " (1200 GB/s)",
            "interconnect_bandwidth": _PAPER + " (270 GB/s per chip, 6 links of 45 GB/s one-way)",
            "max_chips": _CLOUD_V4 + " (4096 chips per pod)",
            "wrap_multiple": _CLOUD_V4 + " (a slice is a 3D torus where every dimension is a multiple of 4)",
        },
    ),
    Chip(
        "tpu-v5e", "Google TPU v5e: 2D torus, 4 ICI links",
        peak_flops=197e12, peak_int8_ops=394e12, hbm_bytes=16 * GIB, hbm_bandwidth=819 * GB,
        interconnect_bandwidth=1600e9 / 8, links=4, torus_axes=2, max_chips=256, wrap_multiple=16,
        usable_hbm_bytes=int(15.75 * GIB),
        sources={
            "usable_hbm_bytes": _LIBTPU + " (15.75 GiB)",
            "peak_flops": _CLOUD_V5E + " (197 TFLOPS bf16)",
            "peak_int8_ops": _CLOUD_V5E + " (394 TOPS int8)",
            "hbm_bytes": _CLOUD_V5E + " (16 GiB HBM2)",
            "hbm_bandwidth": _CLOUD_V5E + " (819 GBps)",
            "interconnect_bandwidth": _CLOUD_V5E + " (1600 Gbps inter-chip interconnect)",
            "max_chips": _CLOUD_V5E + " (256 chips per pod, 16x16)",
            "wrap_multiple": _CLOUD_V5E + " (2D torus pod of 16x16; assumed: only the whole pod's axes wrap, smaller slices are meshes)",
        },
    ),
    Chip(
        "tpu-v5p", "Google TPU v5p: 3D torus, 6 ICI links",
        peak_flops=459e12, peak_int8_ops=918e12, hbm_bytes=95 * GIB, hbm_bandwidth=2765 * GB,
        interconnect_bandwidth=4800e9 / 8, links=6, torus_axes=3, max_chips=8960, wrap_multiple=4,
        usable_hbm_bytes=int(95.74 * GIB),
        sources={
            "usable_hbm_bytes": _LIBTPU + " (95.74 GiB)",
            "peak_flops": _CLOUD_V5P + " (459 TFLOPS bf16)",
            "peak_int8_ops": _CLOUD_V5P + " (918 TOPS int8)",
            "hbm_bytes": _CLOUD_V5P + " (95 GiB HBM2e)",
            "hbm_bandwidth": _CLOUD_V5P + " (2765 GBps)",
            "interconnect_bandwidth": _CLOUD_V5P + " (4800 Gbps per chip)",
            "max_chips": _CLOUD_V5P + " (8960 chips per pod)",
            "wrap_multiple": _CLOUD_V5P + " (all 4x4x4 and larger slices have full 3D torus connectivity)",
        },
    ),
    Chip(
        "tpu-v6e", "Google TPU v6e (Trillium): 2D torus, 4 ICI links",
        peak_flops=918e12, peak_int8_ops=1836e12, hbm_bytes=32 * GIB, hbm_bandwidth=1640 * GB,
        interconnect_bandwidth=3584e9 / 8, links=4, torus_axes=2, max_chips=256, wrap_multiple=16,
        usable_hbm_bytes=int(31.25 * GIB),
        sources={
            "usable_hbm_bytes": _LIBTPU + " (31.25 GiB)",
            "peak_flops": _CLOUD_V6E + " (918 TFLOPS bf16)",
            "peak_int8_ops": _CLOUD_V6E + " (1836 TOPS int8)",
            "hbm_bytes": _CLOUD_V6E + " (32 GiB)",
            "hbm_bandwidth": _CLOUD_V6E + " (1640 GBps)",
            "interconnect_bandwidth": _CLOUD_V6E + " (3584 Gbps inter-chip interconnect)",
            "max_chips": _CLOUD_V6E + " (256 chips per pod, 16x16)",
            "wrap_multiple": _CLOUD_V6E + " (2D torus pod of 16x16; assumed: only the whole pod's axes wrap, smaller slices are meshes)",
        },
    ),
    Chip(
        "tpu-v7x", "Google TPU7x (Ironwood): 3D torus, 6 ICI links, two chiplets (JAX devices) per chip",
        peak_flops=2307e12, peak_fp8_flops=4614e12, hbm_bytes=192 * GIB, hbm_bandwidth=7380 * GB,
        interconnect_bandwidth=1200 * GB / 2, links=6, torus_axes=3, max_chips=9216, wrap_multiple=4,
        devices_per_chip=2, die_to_die_bandwidth=6 * 100 * GB, usable_hbm_bytes=2 * int(94.75 * GIB),
        sources={
            "usable_hbm_bytes": _LIBTPU + " (94.75 GiB per device, two devices per chip)",
            "peak_flops": _CLOUD_V7X + " (2307 TFLOPs BF16 per chip)",
            "peak_fp8_flops": _CLOUD_V7X + " (4614 TFLOPs FP8 per chip)",
            "hbm_bytes": _CLOUD_V7X + " (192 GiB HBM per chip; 96 GB per chiplet)",
            "hbm_bandwidth": _CLOUD_V7X + " (7380 GBps per chip; 'approximately 7.37 TB/s' in the text)",
            "interconnect_bandwidth": _CLOUD_V7X + " (1200 GBps bidirectional ICI per chip; '200 GBps per axis', read as one-way over an axis's two links)",
            "max_chips": _CLOUD_V7X + " (9216 chips per pod)",
            "wrap_multiple": _CLOUD_V7X + " (3D torus; slices larger than 64 chips are made of 4x4x4 cubes; as v5p, assumed: whole cubes wrap)",
            "devices_per_chip": _CLOUD_V7X + " (two chiplets, each a TensorCore with its own HBM; JAX exposes each chip as two devices)",
            "die_to_die_bandwidth": _CLOUD_V7X + " (the die-to-die interface is 'six times faster than a 1D ICI link': 6 x 100 GB/s one-way, a link's share of 1200 GBps over 6 links both ways; assumed)",
        },
    ),
    Chip(
        "a100-80gb", "NVIDIA A100 80GB SXM: NVLink 3 through NVSwitch, 8 GPUs per domain",
        peak_flops=312e12, peak_int8_ops=624e12, hbm_bytes=80 * 10**9, hbm_bandwidth=2039 * GB,
        interconnect_bandwidth=600 * GB / 2, links=12, torus_axes=0, max_chips=8,
        sources={
            "peak_flops": _A100 + " (312 TFLOPS bf16 dense)",
            "peak_int8_ops": _A100 + " (624 TOPS int8 dense)",
            "hbm_bytes": _A100 + " (80 GB HBM2e)",
            "hbm_bandwidth": _A100 + " (2039 GB/s)",
            "interconnect_bandwidth": _A100 + " (NVLink 600 GB/s bidirectional: 300 GB/s one-way)",
            "links": _NVLINK + " (12 third-generation links)",
            "max_chips": _A100 + " (HGX A100 8-GPU NVSwitch node)",
        },
    ),
    Chip(
        "h100-sxm", "NVIDIA H100 SXM: NVLink 4 through NVSwitch, 8 GPUs per domain",
        peak_flops=989e12, peak_int8_ops=1979e12, hbm_bytes=80 * 10**9, hbm_bandwidth=3350 * GB,
        interconnect_bandwidth=900 * GB / 2, links=18, torus_axes=0, max_chips=8,
        sources={
            "peak_flops": _H100 + " (1979 TFLOPS bf16 with sparsity: 989 dense)",
            "peak_int8_ops": _H100 + " (3958 TOPS int8 with sparsity: 1979 dense)",
            "hbm_bytes": _H100 + " (80 GB HBM3)",
            "hbm_bandwidth": _H100 + " (3.35 TB/s)",
            "interconnect_bandwidth": _H100 + " (NVLink 900 GB/s bidirectional: 450 GB/s one-way)",
            "links": _NVLINK + " (18 fourth-generation links)",
            "max_chips": _H100 + " (HGX H100 8-GPU NVSwitch node)",
        },
    ),
    Chip(
        "h200", "NVIDIA H200 SXM: H100 compute with 141 GB HBM3e, 8 GPUs per NVSwitch domain",
        peak_flops=989e12, peak_int8_ops=1979e12, hbm_bytes=141 * 10**9, hbm_bandwidth=4800 * GB,
        interconnect_bandwidth=900 * GB / 2, links=18, torus_axes=0, max_chips=8,
        sources={
            "peak_flops": _H200 + " (1979 TFLOPS bf16 with sparsity: 989 dense)",
            "peak_int8_ops": _H200 + " (3958 TOPS int8 with sparsity: 1979 dense)",
            "hbm_bytes": _H200 + " (141 GB HBM3e)",
            "hbm_bandwidth": _H200 + " (4.8 TB/s)",
            "interconnect_bandwidth": _H200 + " (NVLink 900 GB/s bidirectional: 450 GB/s one-way)",
            "links": _NVLINK + " (18 fourth-generation links)",
            "max_chips": _H200 + " (HGX H200 8-GPU NVSwitch node)",
        },
    ),
)

CHIPS: dict[str, Chip] = {chip.name: chip for chip in _BUILTIN}

_FILE_FIELDS = {field.name for field in dataclasses.fields(Chip)} - {"name"}
_REQUIRED_FIELDS = {"peak_flops", "hbm_bytes", "hbm_bandwidth", "interconnect_bandwidth", "links", "torus_axes", "max_chips"}


def load_chips(path: str | Path) -> dict[str, Chip]:
    """The chips of a user TOML file (`[chip.NAME]` tables, the field names of `Chip`)."""
    path = Path(path)
    document = read_toml(path, ChipFileError, "chip")
    tables = document.get("chip")
    if not isinstance(tables, dict) or not tables:
        raise ChipFileError(f"{path}: expected one or more [chip.NAME] tables")
    chips = {}
    for name, table in tables.items():
        unknown = sorted(set(table) - _FILE_FIELDS)
        if unknown:
            raise ChipFileError(f"{path}: chip {name!r} has unknown key {unknown[0]!r}; valid: {', '.join(sorted(_FILE_FIELDS))}")
        missing = sorted(_REQUIRED_FIELDS - set(table))
        if missing:
            raise ChipFileError(f"{path}: chip {name!r} lacks {', '.join(missing)}")
        try:
            chips[name] = Chip(name=name, **{"description": f"user chip from {path}", **table})
        except (TypeError, ZooError) as error:
            raise ChipFileError(f"{path}: {error}") from None
    return chips


def get_chip(name_or_path: str) -> Chip:
    """A built-in chip by name, or the single chip of a user TOML file by path (`FILE.toml`, or
    `FILE.toml:NAME` when the file holds several)."""
    if name_or_path in CHIPS:
        return CHIPS[name_or_path]
    path, _, name = name_or_path.partition(".toml")
    if _ or name_or_path.endswith(".toml"):
        chips = load_chips(path + ".toml")
        name = name.removeprefix(":")
        if not name and len(chips) == 1:
            return next(iter(chips.values()))
        if name in chips:
            return chips[name]
        raise UnknownChipError(unknown_name_message("chip", name or "(none given)", chips) + f" in {path}.toml; write FILE.toml:NAME")
    raise UnknownChipError(unknown_name_message("chip", name_or_path, CHIPS) + ", or a chip file path ending in .toml")

