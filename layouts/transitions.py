"""Moving a tensor from one distribution over the mesh to another: which collectives it takes, in
which order.

This is the one derivation both the cost model (`layouts.cost.terms`, which counts the bytes of each
step) and the explicit partitioner (`layouts.explicit`, which runs each step with `shard_map`
collectives) use, so the estimate and the executed program cannot name different collectives.

A distribution gives, per dimension, the mesh axes it is split over (major first: split over ("x", "y")
means chip (x, y) holds block x·Y + y), and the axes the values are still partial sums over. Between
two distributions:

- an axis the destination splits a dimension over that the source neither splits nor sums over is
  a local slice (free);
- a partial sum over an axis the destination splits a dimension over is a reduce-scatter;
- a partial sum over an axis the destination does not use is an all-reduce;
- an axis that moves from one dimension to another is an all-to-all;
- an axis the source splits a dimension over and the destination drops is an all-gather.

They run in that order, each kind as one collective over all its axes: slicing first and gathering
last keeps every buffer as small as it can be. The steps record the distribution before and after,
which is what the byte counts are taken from.
"""

import dataclasses

from layouts.layout import MESH_AXES

Axes = tuple[str, ...]
STEP_KINDS = ("slice", "reduce_scatter", "all_reduce", "all_to_all", "all_gather")


@dataclasses.dataclass(frozen=True)
class Distribution:
    """How a tensor is spread over the mesh axes (the zoo's `Placed`, resolved under a layout)."""

    axes: tuple[Axes, ...]  # per dimension, the mesh axes it is split over, major first
    partial: Axes = ()  # mesh axes the values are still to be summed over

    def split_axes(self) -> set[str]:
        return {axis for axes in self.axes for axis in axes}


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str  # one of STEP_KINDS
    axes: Axes  # the mesh axes it runs over, in mesh order
    before: Distribution
    after: Distribution


def canonical(axes) -> Axes:
    present = set(axes)
    return tuple(axis for axis in MESH_AXES if axis in present)


def _distribution(source: Distribution, destination: tuple[Axes, ...], left: set[str], arrived: set[str], partial: set[str]) -> Distribution:
    """Where the tensor is once the axes in `left` have left their source dimension and those in
    `arrived` have reached their destination dimension."""
    axes = []
    for before, after in zip(source.axes, destination):
        kept = tuple(axis for axis in before if axis not in left)
        axes.append(kept + tuple(axis for axis in after if axis in arrived and axis not in kept))
    return Distribution(tuple(axes), canonical(partial))


def derive(source: Distribution, destination: tuple[Axes, ...]) -> tuple[Step, ...]:
    """The steps that take `source` to `destination` (which holds no partial sums)."""
    if len(source.axes) != len(destination):
        raise ValueError(f"distribution of rank {len(source.axes)} moved to rank {len(destination)}")
    held = {axis: index for index, axes in enumerate(source.axes) for axis in axes}
    target = {axis: index for index, axes in enumerate(destination) for axis in axes}
    partial = set(source.partial)
    kinds = (
        ("slice", canonical(axis for axis in target if axis not in held and axis not in partial)),
        ("reduce_scatter", canonical(axis for axis in partial if axis in target)),
        ("all_reduce", canonical(axis for axis in partial if axis not in target)),
        ("all_to_all", canonical(axis for axis, index in held.items() if axis in target and target[axis] != index)),
        ("all_gather", canonical(axis for axis in held if axis not in target)),
    )
    steps, left, arrived, current = [], set(), set(), source
    for kind, axes in kinds:
        if not axes:
            continue
        if kind in ("reduce_scatter", "all_reduce"):
            partial -= set(axes)
        if kind in ("all_to_all", "all_gather"):
            left |= set(axes)
        if kind != "all_gather":
            arrived |= set(axes)
        after = _distribution(source, destination, left, arrived, partial)
        steps.append(Step(kind, axes, current, after))
        current = after
    return tuple(steps)


def explicit_problem(source: Distribution, destination: tuple[Axes, ...]) -> str | None:
    """Why the explicit partitioner cannot run this move, or None. It pops axes off the minor end
    of the dimensions that lose them and pushes axes onto the minor end of those that gain them, so
    a dimension may lose or gain axes in one move, not both, and must keep its remaining axes as
    the leading ones in the same order. Anything else would need a permutation among chips."""
    for index, (before, after) in enumerate(zip(source.axes, destination)):
        if before == after:
            continue
        if before[: len(after)] == after:
            continue  # loses a minor suffix
        if after[: len(before)] == before:
            continue  # gains a minor suffix
        return f"dimension {index} split over {before or '()'} cannot become {after or '()'} without a permutation among chips"
    return None
