"""The one place that turns logical names into a PartitionSpec."""

from collections.abc import Mapping, Sequence

from jax.sharding import PartitionSpec

from layouts.divisibility import check_divides
from layouts.errors import LayoutError
from layouts.layout import Partitioning
from zoo.logical_axes import AxisNames, Role


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
        check_divides(tensor, name, size, axes, mesh_shape, partitioning.name)
        entries.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    return PartitionSpec(*entries)
