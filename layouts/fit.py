"""Fitting a partitioning to a mesh and a batch: a layout's splits cut to what divides.

- **Heads.** A layout that splits the query heads over more chips than there are heads (PaLM 540B's
  64 heads under 1D weight-stationary on 128 chips) splits them over the longest run of its head
  axes, major first, that divides the head count, and the head dimension over the rest: the
  projections then hold the same blocks of H·Q as before, and attention, which needs whole heads,
  gathers the head dimension and runs the same heads on the chips that split it.
- **Batch.** A layout that splits the batch over more chips than it has sequences (attention over
  the batch at batch 4 on 64 chips, a weight-gathered layout at one sequence) splits it over the
  largest set of its batch axes that divides it, taken in the paper's order (z, then y, then x: the
  small-batch attention layouts keep heads on x); the work along the other axes is repeated.

Where everything divides, the partitioning is returned as it is. What no fitting can split (a
vocabulary of 51,200 over 4096 chips) is left to the divisibility checks, which say why.

    fit(get_partitioning("2d-ws", "batch", config), (4, 4, 4), batch=4)  # attention over z: 'batch-z'
"""

import dataclasses
import math

from layouts.builtin import ATTENTION_LAYOUTS
from layouts.errors import LayoutError
from layouts.layout import MESH_AXES, AttentionLayout, Layout, Partitioning
from zoo.logical_axes import ACTIVATION_HEAD_DIM, ATTENTION_BATCH, ATTENTION_HEADS, ATTENTION_KV_HEADS, BATCH, HEAD_DIM, HEADS, HIDDEN_HEADS, MATMUL_HEADS, Role

Axes = tuple[str, ...]
MeshShape = tuple[int, int, int]
PAPER_ORDER: Axes = ("z", "y", "x")
# Where a layout splits the heads, and the head dimension each one's remaining axes move to.
_HEAD_RULES = ((Role.WEIGHT, HEADS, HEAD_DIM), (Role.WEIGHT_USE, HEADS, HEAD_DIM), (Role.ACTIVATION, HIDDEN_HEADS, ACTIVATION_HEAD_DIM), (Role.ACTIVATION, MATMUL_HEADS, None))


def fit(partitioning: Partitioning, mesh_shape: MeshShape, batch: int) -> Partitioning:
    """`partitioning` with its heads and its batch split as far as they divide (see the module);
    LayoutError where grouped-query attention's KV heads cannot follow the query heads."""
    fitted = fit_batch(fit_heads(partitioning, mesh_shape), mesh_shape, batch)
    _check_groups(fitted, dict(zip(MESH_AXES, mesh_shape)))
    return fitted


def _leading_dividing(axes: Axes, sizes: dict[str, int], count: int) -> Axes:
    """The longest leading run of `axes` whose ways divide `count`."""
    while count % math.prod(sizes[axis] for axis in axes):
        axes = axes[:-1]
    return axes


def fit_heads(partitioning: Partitioning, mesh_shape: MeshShape) -> Partitioning:
    """`partitioning` with each split of the query heads cut to its longest leading run of axes
    that divides the head count, the rest of its axes moved to the head dimension; and, with
    several KV heads, the axes beyond each split's longest leading run that divides the KV heads
    left unsplit for them (`Partitioning.kv_unsplit`)."""
    sizes, config = dict(zip(MESH_AXES, mesh_shape)), partitioning.config
    rules = {role: dict(table) for role, table in partitioning.ffn.rules.items()}
    for role, name, head_dim in _HEAD_RULES:
        axes = rules[role][name]
        kept = _leading_dividing(axes, sizes, config.n_heads)
        if kept != axes:
            rules[role][name] = kept
            if head_dim is not None:  # a matmul's input takes the head dimension as its weight does
                rules[role][head_dim] = rules[role][head_dim] + axes[len(kept) :]
    kv_unsplit: set[str] = set()
    if config.n_kv_heads > 1:
        for role, name, _ in _HEAD_RULES:
            axes = rules[role][name]
            kv_unsplit |= set(axes[len(_leading_dividing(axes, sizes, config.n_kv_heads)) :])
    unsplit = tuple(axis for axis in MESH_AXES if axis in kv_unsplit)
    if rules == partitioning.ffn.rules and unsplit == partitioning.kv_unsplit:
        return partitioning
    ffn = partitioning.ffn
    if rules != ffn.rules:
        ffn = dataclasses.replace(ffn, rules=rules, summary=f"{ffn.summary} (heads split as far as {config.n_heads} divides)")
    return dataclasses.replace(partitioning, ffn=ffn, kv_unsplit=unsplit)


def _check_groups(partitioning: Partitioning, sizes: dict[str, int]) -> None:
    """Each chip's query heads must find their KV heads on it: with the KV heads split over fewer
    axes than the query heads, the KV split must be the query split's leading axes and give each
    chip one KV head (a chip's queries then all belong to it)."""
    kv_heads = partitioning.config.n_kv_heads
    heads, kv = (partitioning.axes(Role.ACTIVATION, name) for name in (ATTENTION_HEADS, ATTENTION_KV_HEADS))
    if kv_heads == 1 or kv == heads or (heads[: len(kv)] == kv and math.prod(sizes[axis] for axis in kv) == kv_heads):
        return
    raise LayoutError(
        f"grouped-query attention: {kv_heads} KV heads split over {''.join(kv) or 'no axes'} cannot serve the query heads split over "
        f"{''.join(heads)} under layout {partitioning.name!r} on mesh {'x'.join(str(sizes[axis]) for axis in MESH_AXES)}; "
        f"use attention over the batch (--attention batch) or a mesh whose leading head axes give {kv_heads} ways"
    )


def dividing_axes(requested: Axes, sizes: dict[str, int], batch: int, ways: int = 1) -> Axes:
    """The axes of `requested` (in its order) that split `batch`, already split `ways` ways, evenly:
    taken one at a time in the paper's order while the split still divides the batch."""
    taken = set()
    for axis in PAPER_ORDER:
        if axis in requested and batch % (ways * sizes[axis]) == 0:
            taken.add(axis)
            ways *= sizes[axis]
    return tuple(axis for axis in requested if axis in taken)


def fit_batch(partitioning: Partitioning, mesh_shape: MeshShape, batch: int) -> Partitioning:
    """`partitioning` with its batch split (the FFN layout's, then attention's) cut to what divides
    `batch` on a mesh of `mesh_shape`."""
    sizes = dict(zip(MESH_AXES, mesh_shape))
    ffn_batch = partitioning.ffn.axes(Role.ACTIVATION, BATCH)
    attention_batch = partitioning.axes(Role.ACTIVATION, ATTENTION_BATCH)
    kept_ffn = dividing_axes(ffn_batch, sizes, batch)
    ways = math.prod(sizes[axis] for axis in kept_ffn)
    kept_attention = kept_ffn + dividing_axes(tuple(axis for axis in attention_batch if axis not in kept_ffn), sizes, batch, ways)
    if kept_ffn == ffn_batch and kept_attention == attention_batch:
        return partitioning
    ffn = partitioning.ffn if kept_ffn == ffn_batch else _with_batch(partitioning.ffn, kept_ffn)
    return dataclasses.replace(partitioning, ffn=ffn, attention=_attention_over(kept_attention, partitioning.attention))


def mesh_shape(mesh) -> MeshShape:
    """A `jax.sharding.Mesh`'s sizes along x, y and z."""
    return tuple(mesh.shape[axis] for axis in MESH_AXES)  # type: ignore[return-value]


def batch_axes(partitioning: Partitioning) -> str:
    """The mesh axes attention and the KV cache split the batch over, as a row records them ("zy";
    "" for none)."""
    return "".join(partitioning.axes(Role.ACTIVATION, ATTENTION_BATCH))


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
