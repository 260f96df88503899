"""Splitting the batch as far as it divides: a layout that splits the batch over more chips than
it has sequences (attention over the batch at batch 4 on 64 chips, a weight-gathered layout at one
sequence) splits it over the largest set of its batch axes that divides it instead, taken in the
paper's order (z, then y, then x: the small-batch attention layouts keep heads on x). The axes a
batch cannot use are left to what else the layout splits over them, and its work along them is
repeated, as the paper's implementation does where the batch is smaller than the mesh.

    fit_batch(get_partitioning("2d-ws", "batch", config), (4, 4, 4), batch=4)  # attention over z: 'batch-z'
"""

import dataclasses
import math

from layouts.builtin import ATTENTION_LAYOUTS
from layouts.layout import MESH_AXES, AttentionLayout, Layout, Partitioning
from zoo.logical_axes import BATCH, Role

Axes = tuple[str, ...]
PAPER_ORDER: Axes = ("z", "y", "x")


def dividing_axes(requested: Axes, sizes: dict[str, int], batch: int, ways: int = 1) -> Axes:
    """The axes of `requested` (in its order) that split `batch`, already split `ways` ways, evenly:
    taken one at a time in the paper's order while the split still divides the batch."""
    taken = set()
    for axis in PAPER_ORDER:
        if axis in requested and batch % (ways * sizes[axis]) == 0:
            taken.add(axis)
            ways *= sizes[axis]
    return tuple(axis for axis in requested if axis in taken)


def fit_batch(partitioning: Partitioning, mesh_shape: tuple[int, int, int], batch: int) -> Partitioning:
    """`partitioning` with its batch split (the FFN layout's, then attention's) cut to what divides
    `batch` on a mesh of `mesh_shape`; the same partitioning where it all divides."""
    sizes = dict(zip(MESH_AXES, mesh_shape))
    ffn_batch = partitioning.ffn.axes(Role.ACTIVATION, BATCH)
    attention_batch = partitioning.axes(Role.ACTIVATION, "attention_batch")
    kept_ffn = dividing_axes(ffn_batch, sizes, batch)
    ways = math.prod(sizes[axis] for axis in kept_ffn)
    kept_attention = kept_ffn + dividing_axes(tuple(axis for axis in attention_batch if axis not in kept_ffn), sizes, batch, ways)
    if kept_ffn == ffn_batch and kept_attention == attention_batch:
        return partitioning
    ffn = partitioning.ffn if kept_ffn == ffn_batch else _with_batch(partitioning.ffn, kept_ffn)
    return Partitioning(ffn, _attention_over(kept_attention, partitioning.attention), partitioning.config)


def mesh_shape(mesh) -> tuple[int, int, int]:
    """A `jax.sharding.Mesh`'s sizes along x, y and z."""
    return tuple(mesh.shape[axis] for axis in MESH_AXES)  # type: ignore[return-value]


def batch_axes(partitioning: Partitioning) -> str:
    """The mesh axes attention and the KV cache split the batch over, as a row records them ("zy";
    "" for none)."""
    return "".join(partitioning.axes(Role.ACTIVATION, "attention_batch"))


def _with_batch(layout: Layout, axes: Axes) -> Layout:
    rules = {role: dict(table) for role, table in layout.rules.items()}
    rules[Role.ACTIVATION][BATCH] = axes
    return dataclasses.replace(layout, rules=rules, summary=f"{layout.summary} (batch over {''.join(axes) or 'no axes'}, as it divides)")


def _attention_over(axes: Axes, requested: AttentionLayout) -> AttentionLayout:
    """The attention layout over the batch on `axes`: the built-in one if there is one."""
    for layout in ATTENTION_LAYOUTS.values():
        if set(layout.batch_axes) == set(axes):
            return dataclasses.replace(layout, batch_axes=axes)
    name = f"batch-{''.join(sorted(axes))}"
    return AttentionLayout(name, f"{requested.summary} (batch over {''.join(axes)}, as it divides)", axes, requested.phase)
