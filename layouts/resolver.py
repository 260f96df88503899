"""The one place that turns logical names into a PartitionSpec."""

from collections.abc import Mapping, Sequence

from jax.sharding import PartitionSpec

from layouts.errors import IndivisibleDimensionError, LayoutError
from layouts.layout import Partitioning
from zoo.logical_axes import AxisNames, Role


def _hint(name: str | None, axes: tuple[str, ...]) -> str:
    if name and "head" in name:
        return "pad the heads to a multiple (as the paper pads PaLM 540B to 64 heads: palm-540b-64h) or choose another mesh shape"
    if name and "batch" in name:
        return "use a batch that the axes divide, or a smaller batch-sharding variant (batch-yz, batch-z, heads)"
    return "choose another mesh shape or layout"


def resolve(
    partitioning: Partitioning,
    role: Role,
    names: AxisNames,
    shape: Sequence[int],
    mesh_shape: Mapping[str, int],
    tensor: str = "tensor",
) -> PartitionSpec:
    """The PartitionSpec of a tensor of `shape` whose dimensions carry `names` under `role`.

    A dimension the assigned mesh axes do not divide is an error, never a silent replication. Mesh
    axes of size 1 are dropped from the spec: they split nothing.
    """
    if len(names) != len(shape):
        raise LayoutError(f"{tensor}: {len(names)} logical names {names} for a tensor of shape {tuple(shape)}")
    partitioning.check_distinct_axes(role, names, tensor)
    entries = []
    for name, size in zip(names, shape):
        axes = tuple(axis for axis in partitioning.axes(role, name) if mesh_shape.get(axis, 1) > 1)
        for axis in partitioning.axes(role, name):
            if axis not in mesh_shape:
                raise LayoutError(f"{tensor}: layout {partitioning.name!r} maps {name!r} to mesh axis {axis!r}, not in mesh {dict(mesh_shape)}")
        ways = 1
        for axis in axes:
            ways *= mesh_shape[axis]
        if size % ways:
            sizes = " x ".join(f"{axis}={mesh_shape[axis]}" for axis in axes)
            raise IndivisibleDimensionError(
                f"{tensor}: dimension {name!r} of size {size} does not divide over mesh axes {sizes} "
                f"({ways} ways) under layout {partitioning.name!r}; {_hint(name, axes)}"
            )
        entries.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    return PartitionSpec(*entries)
