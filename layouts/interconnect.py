"""How a logical mesh lies on a chip's links, and what a collective over some of its axes costs there.

A TPU slice is a torus of physical axes (v4 and v5p: three, v5e and v6e: two); each chip has two
links along each axis, one each way, and an axis closes into a ring (wraparound) only in the slices
the chip's `wrap_multiple` says. A logical mesh axis runs along one or more physical axes, or part
of one (`place`): the mapping `jax.experimental.mesh_utils.create_device_mesh` makes where every
logical axis is a product of whole physical axes (tests/test_interconnect.py checks it against the
device coordinates of a compiled mesh), and otherwise the row-major reshape that
`layouts.mesh.make_mesh` falls back to. Behind a switch (NVLink) every chip reaches every other: each
logical axis is a domain of its own at the chip's whole interconnect bandwidth.

A collective over several mesh axes runs as a sequence of phases, one per physical axis it spans
(`Ring`), each a bidirectional ring (a line, where the axis does not wrap) over that axis's two
links; only one axis's links are busy at a time. With D the bytes the paper's convention counts
(an all-gather's output, a reduce-scatter's input, twice an all-reduce's buffer, an all-to-all's
buffer) and b an axis's one-way bandwidth over both its links:

    all-gather, reduce-scatter, all-reduce:  Σ over phases of the bytes each phase moves ÷ b,
        which for equal axes telescopes to D·(K−1)/K ÷ b, K the chips the collective spans
    all-to-all:  each phase moves the whole buffer; on a ring of k chips a byte travels k/4 hops
        on average each way round (k/2 on a line): D·k/4 ÷ b per phase (D·k/2 ÷ b on a line);
        behind a switch, D·(K−1)/K ÷ b like the others

Each phase also takes `hops` steps, each a neighbour exchange with a fixed latency (the estimate's
fitted per-hop latency, `layouts.cost.calibration`): ⌈(k−1)/2⌉ on a ring, k−1 on a line.
"""

import dataclasses
import functools
import itertools
import math

from layouts.errors import MeshError
from layouts.hardware import Chip
from layouts.layout import MESH_AXES

MeshShape = tuple[int, int, int]
PHYSICAL_AXES = ("X", "Y", "Z")  # upper case: the slice's, beside the mesh's logical x, y, z
CORES = "C"  # a chip's devices (TPU7x's two chiplets), joined by their die-to-die link
SWITCH = "NVLink"

# The standard slice shapes of a chip count, as Cloud TPU offers them (v4/v5p in 4×4×4 cubes,
# v5e/v6e up to the 16×16 pod); `layouts.compiled.targets` compiles for the same shapes.
THREE_D_SLICES = {
    4: (2, 2, 1), 8: (2, 2, 2), 16: (2, 2, 4), 32: (2, 4, 4), 64: (4, 4, 4), 128: (4, 4, 8), 256: (4, 8, 8),
    512: (8, 8, 8), 1024: (8, 8, 16), 2048: (8, 16, 16), 4096: (16, 16, 16),
}  # fmt: skip
TWO_D_SLICES = {4: (2, 2), 8: (2, 4), 16: (4, 4), 32: (4, 8), 64: (8, 8), 128: (8, 16), 256: (16, 16)}


@dataclasses.dataclass(frozen=True)
class Ring:
    """One physical axis, or the part of one, that a logical axis runs along: `size` chips in a
    ring (`wraps`) or a line, `bandwidth` bytes/s one way out of a chip over its links."""

    axis: str  # "X", "Y", "Z", CORES, SWITCH, or "XY" (TPU7x's 2x2 tray as one ring)
    size: int
    wraps: bool
    bandwidth: float
    links: int  # links per chip along it

    @property
    def hops(self) -> int:
        """Steps of one phase: a bidirectional ring reaches the farthest chip in ⌈(k−1)/2⌉ neighbour
        exchanges, a line (and a switch's ring algorithm) in k−1."""
        return self.size // 2 if self.wraps and self.axis != SWITCH else self.size - 1

    def describe(self) -> str:
        if self.axis == CORES:
            return f"{CORES}:{self.size} die-to-die"
        shape = "switch" if self.axis == SWITCH else "ring" if self.wraps else "line"
        return f"{self.axis}:{self.size} {shape}, {self.links} links"


@dataclasses.dataclass(frozen=True)
class Placement:
    """A logical mesh on a slice: for each logical axis, the rings it runs along, in order."""

    physical: dict[str, int]  # the slice's physical axes (and a chip's devices, C) and their sizes
    rings: tuple[tuple[Ring, ...], ...]  # per logical axis x, y, z

    def along(self, axes) -> tuple[Ring, ...]:
        """The rings a collective over the logical `axes` runs along, one phase each."""
        return tuple(ring for axis in axes for ring in self.rings[MESH_AXES.index(axis)])

    @property
    def slice_shape(self) -> tuple[int, ...]:
        return tuple(size for axis, size in self.physical.items() if axis in PHYSICAL_AXES or axis == SWITCH)

    def describe(self) -> str:
        """`x→Z y→Y z→X`: where each logical axis of more than one point lies (`X/2`: part of X)."""
        parts = []
        for axis, rings in zip(MESH_AXES, self.rings):
            if rings:
                parts.append(f"{axis}→" + "·".join(ring.axis if ring.size == self.physical.get(ring.axis) else f"{ring.axis}/{ring.size}" for ring in rings))
        return " ".join(parts) or "one chip"


def standard_slice(chip: Chip, chips: int) -> tuple[int, ...]:
    """The physical shape (in chips) that `chips` mesh points of `chip` form by default: one
    switched domain `(chips,)`, or the standard torus slice (a per-device view counts devices)."""
    if chip.torus_axes == 0:
        return (chips,)
    if chip.per_device_view:
        chips //= chip.devices_per_chip
    table = THREE_D_SLICES if chip.torus_axes == 3 else TWO_D_SLICES
    if chips in table:
        return table[chips]
    # Beyond the table (a user chip, a multiple of whole cubes): the most balanced factorization.
    return min(_factorizations(chips, chip.torus_axes), key=lambda shape: (max(shape) / min(shape), shape))


def wraps(chip: Chip, slice_shape: tuple[int, ...]) -> bool:
    """Whether the slice's axes close into rings: every dimension a multiple of the chip's
    `wrap_multiple` (v4, v5p: whole 4×4×4 cubes)."""
    return bool(chip.wrap_multiple) and all(size % chip.wrap_multiple == 0 for size in slice_shape)


def place(chip: Chip, mesh_shape: MeshShape, slice_shape: tuple[int, ...] | None = None) -> Placement:
    """Where each logical axis of `mesh_shape` lies on a slice of `chip` (see the module); the
    slice's shape (in chips) is the standard one for the mesh's size unless given. In a per-device
    view (TPU7x), the mesh's points are devices and a chip's devices form one more axis, C."""
    points = math.prod(mesh_shape)
    shape = tuple(slice_shape) if slice_shape is not None else standard_slice(chip, points)
    per_chip = chip.devices_per_chip if chip.per_device_view else 1
    if math.prod(shape) * per_chip != points:
        devices = f" ({per_chip} devices each)" if per_chip > 1 else ""
        raise MeshError(f"mesh {'x'.join(map(str, mesh_shape))} has {points} points but the slice {'x'.join(map(str, shape))} has {math.prod(shape)} chips{devices}")
    links = _Links(chip.torus_axes, chip.links, chip.axis_bandwidth, chip.interconnect_bandwidth, wraps(chip, shape), per_chip, chip.die_to_die_bandwidth or 0.0)
    return _place(links, tuple(mesh_shape), shape)


@dataclasses.dataclass(frozen=True)
class _Links:
    """What a placement needs of a chip (hashable, unlike `Chip`, whose sources are a mapping)."""

    torus_axes: int
    links: int
    axis_bandwidth: float
    interconnect_bandwidth: float
    wraps: bool
    devices_per_chip: int
    die_to_die_bandwidth: float


@functools.cache  # a sweep asks for the same few placements thousands of times
def _place(chip: _Links, mesh_shape: MeshShape, shape: tuple[int, ...]) -> Placement:
    if chip.torus_axes == 0:
        # Behind a switch every chip reaches every other: each logical axis is a domain of its own.
        return Placement({SWITCH: math.prod(shape)}, tuple((Ring(SWITCH, size, True, chip.interconnect_bandwidth, chip.links),) if size > 1 else () for size in mesh_shape))
    per_axis = chip.links // chip.torus_axes
    # The physical axes in the order JAX's physical mesh lists them: X, Y(, Z), then a chip's devices.
    axes = [Ring(PHYSICAL_AXES[index], size, chip.wraps, chip.axis_bandwidth, per_axis) for index, size in enumerate(shape)]
    if chip.devices_per_chip > 1:
        axes.append(Ring(CORES, chip.devices_per_chip, False, chip.die_to_die_bandwidth, 1))
    physical = {ring.axis: ring.size for ring in axes}
    if chip.devices_per_chip > 1 and len(shape) == 3 and math.prod(mesh_shape) <= 32 and math.prod(mesh_shape) % 8 == 0 and shape[0] <= 2 and shape[1] <= 2:
        # JAX's TPU7x rule for small slices: each 2x2 tray's chips in one ring, devices innermost.
        tray = Ring("XY", shape[0] * shape[1], chip.wraps or shape[0] * shape[1] == 4, chip.axis_bandwidth, per_axis)
        return Placement(physical | {"XY": tray.size}, _reshaped(mesh_shape, [axes[2], tray, axes[3]]))
    whole = _whole_axes(mesh_shape, tuple(ring.size for ring in axes))
    if whole is not None:
        return Placement(physical, tuple(tuple(axes[index] for index in group) for group in whole))
    # JAX refuses: `make_mesh` reshapes the topology's device list, X fastest after a chip's own
    # devices on v4 (as their coordinates show; a multi-host TPU7x slice lists them host by host,
    # which this approximates).
    spatial = axes[: len(shape)]
    return Placement(physical, _reshaped(mesh_shape, spatial[::-1] + axes[len(shape) :]))


def _whole_axes(mesh_shape: MeshShape, shape: tuple[int, ...]):
    """Physical axes grouped per logical axis as `jax.experimental.mesh_utils.create_device_mesh`
    groups them: the logical axes from the last (the most communication-heavy by its convention)
    to the first, each taking the first combination of the most remaining physical axes whose
    product is its size; None where some logical axis finds none (JAX then refuses, and
    `layouts.mesh.make_mesh` reshapes the devices instead)."""
    remaining = list(shape)
    assignment: list[tuple[int, ...]] = [() for _ in mesh_shape]
    for logical in reversed(range(len(mesh_shape))):
        found = next(
            (
                axes
                for count in range(len(shape), 0, -1)
                for axes in itertools.combinations(range(len(shape)), count)
                if all(remaining[axis] for axis in axes) and math.prod(remaining[axis] for axis in axes) == mesh_shape[logical]
            ),
            None,
        )
        if found is None:
            if mesh_shape[logical] > 1:
                return None
            continue
        assignment[logical] = found
        for axis in found:
            remaining[axis] = 0
    return tuple(tuple(axis for axis in axes if shape[axis] > 1) for axes in assignment)


def _reshaped(mesh_shape: MeshShape, order: list[Ring]) -> tuple[tuple[Ring, ...], ...]:
    """The devices listed with `order`'s axes from the outermost to the innermost, reshaped to
    the mesh: each logical axis, from the last, takes the innermost devices left, whole physical
    axes or parts of one (a part does not close into a ring)."""
    remaining = [[ring, ring.size] for ring in order if ring.size > 1]
    placed: list[tuple[Ring, ...]] = []
    for size in reversed(mesh_shape):
        rings = []
        while size > 1:
            ring, left = remaining[-1]
            take = math.gcd(size, left)
            if take == 1:
                raise MeshError(f"mesh {'x'.join(map(str, mesh_shape))} cannot be laid on axes {' '.join(f'{r.axis}:{r.size}' for r in order)}")
            part = ring if take == ring.size else dataclasses.replace(ring, size=take, wraps=False)
            if ring.axis == "XY" and take < ring.size and left == ring.size:
                part = dataclasses.replace(part, axis="X")  # the tray ring's first hops run along X
            rings.insert(0, part)
            size //= take
            remaining[-1][1] //= take
            if remaining[-1][1] == 1:
                remaining.pop()
        placed.insert(0, tuple(rings))
    return tuple(placed)


def _factorizations(chips: int, rank: int):
    if rank == 1:
        yield (chips,)
        return
    for first in range(1, chips + 1):
        if chips % first == 0:
            for rest in _factorizations(chips // first, rank - 1):
                yield (first, *rest)


def phase_seconds(kind: str, counted_bytes: float, rings: tuple[Ring, ...]) -> float:
    """Seconds of a collective of `kind` counting `counted_bytes` per chip (the paper's convention,
    see the module) run as one phase per ring, at the links' peak."""
    rings = tuple(ring for ring in rings if ring.size > 1)
    if not rings:
        return 0.0
    if kind == "all_to_all" and rings[0].axis != SWITCH:
        return sum(counted_bytes * ring.size / (4 if ring.wraps else 2) / ring.bandwidth for ring in rings)
    # Gathering phase by phase, the first moves 1/(product of the later sizes) of the whole.
    seconds, later = 0.0, math.prod(ring.size for ring in rings)
    for ring in rings:
        later //= ring.size
        seconds += counted_bytes / later * (ring.size - 1) / ring.size / ring.bandwidth
    return seconds


def phase_hops(rings: tuple[Ring, ...]) -> int:
    """Neighbour steps of a collective run as one phase per ring."""
    return sum(ring.hops for ring in rings if ring.size > 1)
