"""Compile targets: the TPU slices a program can be compiled for without a TPU present, and `local`.

A TPU target is a chip generation and a physical slice shape. libtpu describes the slice as a
topology (`jax.experimental.topologies.get_topology_desc`), whose devices are abstract chips that
a mesh can be laid over and a program compiled for, on any Linux x86-64 machine. A target is written
`tpu-v4` (the chip count picks the standard slice shape: 64 chips is 4x4x4), or with the shape,
`tpu-v4:4x4x8`. `local` is the devices this process sees (the CPU's, with forced host devices, a
GPU, or a real TPU slice).

libtpu's smallest slice is one host's 2x2 chips, so TPU targets have 4 chips or more.
"""

import contextlib
import dataclasses
import functools
import math
import os
import re
import tempfile

import jax

from layouts.errors import TargetError
from layouts.hardware import CHIPS, Chip, get_chip
from layouts.interconnect import THREE_D_SLICES, TWO_D_SLICES

LOCAL = "local"


@dataclasses.dataclass(frozen=True)
class ChipFamily:
    name: str  # the target's name, e.g. "tpu-v4"
    topology_prefix: str  # libtpu's name for the generation in a topology name, e.g. "v4"
    chip_config: str | None  # v4 compiles one device per chip only as "megacore"
    slice_shapes: dict[int, tuple[int, ...]]  # chip count -> standard physical slice shape


FAMILIES: dict[str, ChipFamily] = {
    family.name: family
    for family in (
        # Target names are the hardware presets' chip names (layouts.hardware), which hold the HBM.
        ChipFamily("tpu-v4", "v4", "megacore", THREE_D_SLICES),
        ChipFamily("tpu-v5e", "v5e", None, TWO_D_SLICES),  # 2D torus up to 256 chips
        ChipFamily("tpu-v5p", "v5p", None, THREE_D_SLICES),
        ChipFamily("tpu-v6e", "v6e", None, TWO_D_SLICES),  # 2D torus up to 256 chips
        ChipFamily("tpu-v7x", "tpu7x", None, THREE_D_SLICES),  # two devices per chip: --chips counts devices
    )
}


def devices_per_chip(family: ChipFamily) -> int:
    """The devices (mesh points) one chip of the family is: 2 on TPU7x, else 1."""
    return get_chip(family.name).devices_per_chip


def target_names() -> tuple[str, ...]:
    """Every target name a user may give (a TPU family also takes `:SHAPE`)."""
    return (*FAMILIES, LOCAL)


def valid_targets_line() -> str:
    parts = [
        f"{name} ({'devices' if devices_per_chip(family) > 1 else 'chips'} {', '.join(str(n * devices_per_chip(family)) for n in family.slice_shapes)}; or {name}:SHAPE)"
        for name, family in FAMILIES.items()
    ]
    return "; ".join([*parts, f"{LOCAL} (the devices present)"])


@dataclasses.dataclass(frozen=True)
class Target:
    """A resolved target: where a cell's program is compiled for, and how much memory a chip has."""

    name: str  # as the user gave it: "tpu-v4", "tpu-v4:4x4x8" or "local"
    family: ChipFamily | None  # None for local
    slice_shape: tuple[int, ...] | None  # physical shape of a TPU slice
    chips: int

    @property
    def is_tpu_topology(self) -> bool:
        return self.family is not None

    @property
    def topology_name(self) -> str | None:
        if self.family is None:
            return None
        return f"{self.family.topology_prefix}:{'x'.join(str(size) for size in self.slice_shape)}"

    @property
    def chip(self) -> str:
        return self.family.name if self.family is not None else LOCAL

    def devices(self) -> list:
        """The devices to lay a mesh over: a topology's abstract chips, or the local devices."""
        if self.family is None:
            return list(jax.devices())[: self.chips]
        return list(_topology_devices(self.topology_name, self.family.chip_config))

    def hbm_bytes(self) -> int | None:
        """Memory per chip a program may use: the hardware preset's usable HBM for a TPU (what
        libtpu reports: `reported_usable_hbm`); a local accelerator's reported limit; None for
        the host CPU (its memory is the machine's)."""
        if self.family is not None:
            return get_chip(self.family.name).per_device().program_hbm_bytes
        device = jax.local_devices()[0]  # one this process can ask (with several, the others' are not)
        stats = device.memory_stats() if hasattr(device, "memory_stats") else None
        return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


def reported_usable_hbm(family: str) -> int | None:
    """The HBM per chip libtpu's compiler lets a program of the `family` use, read from its
    message when a program too large for any chip fails to compile (compiled, never run); None
    where the message does not say."""
    import jax.numpy as jnp

    smallest = min(FAMILIES[family].slice_shapes) * devices_per_chip(FAMILIES[family])
    device = get_target(family, smallest).devices()[0]
    too_large = jax.jit(lambda: jnp.zeros((1024, 2**30), jnp.int8), out_shardings=jax.sharding.SingleDeviceSharding(device))
    try:
        too_large.lower().compile()
    except Exception as error:  # RESOURCE_EXHAUSTED, with the limit in its message
        match = re.search(r"available HBM \(([\d.]+)([KMGT])\)", str(error))
        if match:
            return int(float(match.group(1)) * 2 ** (10 * "KMGT".index(match.group(2)) + 10))
    return None


def local_chip_count() -> int:
    """The most local devices a layout can split over: the largest power of two present (every
    preset's head count and widths are powers of two, so a layout divides them only over those)."""
    return 1 << (len(jax.devices()).bit_length() - 1)


# Accelerators whose peak FLOP/s and HBM bandwidth the hardware presets know, by JAX device kind.
_DEVICE_KINDS = (
    ("H200", "h200"), ("H100", "h100-sxm"), ("A100", "a100-80gb"), ("TPU v4", "tpu-v4"), ("TPU v5 lite", "tpu-v5e"),
    ("TPU v5e", "tpu-v5e"), ("TPU v5p", "tpu-v5p"), ("TPU v6", "tpu-v6e"), ("TPU7x", "tpu-v7x"),
)  # fmt: skip


def local_chip() -> Chip | None:
    """The hardware preset of the local accelerator, or None (a CPU has no preset peak)."""
    kind = jax.devices()[0].device_kind
    for marker, name in _DEVICE_KINDS:
        if marker.lower() in kind.lower():
            return get_chip(name).per_device()
    return None


def target_chip(spec: str, chips: int) -> Chip:
    """The chip the estimator costs a target on, as a mesh point sees it (`Chip.per_device`: one
    TensorCore of a TPU7x chip): a TPU target's preset (`tpu-v4`, or `tpu-v4:4x4x8` with the shape
    checked against `chips`), the local accelerator's preset, or any chip preset or chip file by
    name. The estimator needs no standard slice shape: it has no topology to compile."""
    text = spec.strip() if isinstance(spec, str) else spec
    if text == LOCAL:
        chip = local_chip()
        if chip is None:
            kind = jax.devices()[0].device_kind
            raise TargetError(
                f"the local devices ({kind}) have no hardware preset to estimate with; estimate for a chip instead "
                f"(--target {', '.join(FAMILIES)}, {', '.join(name for name in CHIPS if name not in FAMILIES)}, or a chip file FILE.toml)"
            )
        return chip
    name, shaped, _ = text.partition(":")
    if name in FAMILIES and shaped:
        get_target(text, chips)  # the shape is checked against the chip count
        return get_chip(name).per_device()
    return get_chip(text).per_device()


def get_target(spec: str, chips: int) -> Target:
    """The target `spec` for a cell of `chips` chips; raises TargetError naming the valid ones."""
    if not isinstance(spec, str) or not spec.strip():
        raise TargetError(f"empty target; valid: {valid_targets_line()}")
    text = spec.strip()
    if text == LOCAL:
        available = len(jax.devices())
        if chips > available:
            raise TargetError(
                f"target local has {available} {jax.devices()[0].platform} device(s), the cell needs {chips}; "
                f"compile for a TPU topology instead, e.g. --target tpu-v4 ({valid_targets_line()})"
            )
        return Target(LOCAL, None, None, chips)
    name, _, shape_text = text.partition(":")
    family = FAMILIES.get(name)
    if family is None:
        raise TargetError(f"unknown target {spec!r}; valid: {valid_targets_line()}")
    rank = len(next(iter(family.slice_shapes.values())))
    per_chip = devices_per_chip(family)
    devices = f" ({per_chip} devices each: --chips counts devices on {name})" if per_chip > 1 else ""
    if shape_text:
        if not re.fullmatch(r"[1-9]\d*(x[1-9]\d*)*", shape_text) or shape_text.count("x") + 1 != rank:
            raise TargetError(f"malformed slice shape {shape_text!r} for {name}: expected {rank} sizes like {'x'.join(['4'] * rank)}")
        shape = tuple(int(size) for size in shape_text.split("x"))
        if math.prod(shape) * per_chip != chips:
            raise TargetError(f"target {spec} has {math.prod(shape)} chips{devices} but the cell has chips={chips}")
        if shape[0] % 2 or shape[1] % 2:
            raise TargetError(f"slice {shape_text} of {name} is not made of 2x2 hosts; standard shapes: {_standard_shapes(family)}")
    else:
        shape = family.slice_shapes.get(chips // per_chip) if chips % per_chip == 0 else None
        if shape is None:
            raise TargetError(
                f"{name} has no standard slice of {chips} {'devices' if per_chip > 1 else 'chips'}; valid chip counts: "
                f"{', '.join(str(n * per_chip) for n in family.slice_shapes)}{devices} (or give the shape: {name}:SHAPE)"
            )
    return Target(text, family, shape, chips)


def slice_shape(spec: str, chips: int) -> tuple[int, ...] | None:
    """The physical slice a cell of `chips` chips on target `spec` runs on: the shape the target
    names, else the standard one; None for local devices or a chip count with no standard slice
    (the estimate then lays the mesh on the most balanced shape, `layouts.interconnect`)."""
    name, _, shape_text = spec.strip().partition(":")
    if name not in FAMILIES:
        return None
    family = FAMILIES[name]
    if not shape_text and (chips % devices_per_chip(family) or chips // devices_per_chip(family) not in family.slice_shapes):
        return None
    return get_target(spec, chips).slice_shape


def _standard_shapes(family: ChipFamily) -> str:
    return ", ".join("x".join(str(size) for size in shape) for shape in family.slice_shapes.values())


@contextlib.contextmanager
def _quiet_stderr():
    """libtpu writes its start-up warnings (no TPU accelerator type, no worker host names) straight
    to file descriptor 2 when no TPU is present; they say nothing about a topology compile."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _uses_tpus() -> bool:
    platforms = os.environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return "tpu" in platforms.split(",")
    return jax.default_backend() == "tpu"


@functools.cache
def _topology_devices(topology_name: str, chip_config: str | None) -> tuple:
    from jax.experimental import topologies

    kwargs = {} if chip_config is None else {"chip_config_name": chip_config}
    if not _uses_tpus():
        # libtpu takes a machine-wide lock file when it loads; describing a topology touches no
        # TPU, so several processes (two `zoo` commands, a test run beside a benchmark) may share it.
        os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    try:
        with _quiet_stderr():
            topology = topologies.get_topology_desc(platform="tpu", topology_name=topology_name, **kwargs)
    except Exception as error:  # libtpu missing, or a shape it rejects: say which, in one line
        reason = " ".join(str(error).split())
        raise TargetError(f"cannot describe TPU topology {topology_name}: {reason}") from None
    return tuple(topology.devices)
