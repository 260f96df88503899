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


def kept_axes(before: Axes, after: Axes, reorderable: bool = False) -> Axes:
    """The axes a dimension keeps in place: its leading axes that the destination leads with too.
    A reorderable dimension (attention's heads: which chip holds which heads does not matter, as
    long as queries, keys and values agree and the way back undoes the way in) keeps every axis
    both have in the same relative order: the blocks of the axes it loses or gains are then the
    major part of what a chip holds, a consistent relabelling of the heads."""
    if reorderable:
        common = tuple(axis for axis in before if axis in after)
        if common == tuple(axis for axis in after if axis in before):
            return common
    kept = 0
    while kept < min(len(before), len(after)) and before[kept] == after[kept]:
        kept += 1
    return before[:kept]


def _moves(source: Distribution, destination: tuple[Axes, ...], reorderable: frozenset[int]):
    """Per mesh axis: the dimension it must leave (`leaving`) and the one it must reach
    (`arriving`), and the dimensions that do both (`mixed`). Every axis a dimension does not keep
    (`kept_axes`) leaves it, and every axis the destination adds arrives, so an axis that stays in
    its dimension but changes rank leaves and comes back."""
    leaving, arriving, mixed = {}, {}, set()
    for index, (before, after) in enumerate(zip(source.axes, destination)):
        kept = kept_axes(before, after, index in reorderable)
        lost, gained = [axis for axis in before if axis not in kept], [axis for axis in after if axis not in kept]
        leaving |= dict.fromkeys(lost, index)
        arriving |= dict.fromkeys(gained, index)
        if lost and gained:
            mixed.add(index)
    return leaving, arriving, mixed


def derive(source: Distribution, destination: tuple[Axes, ...], reorderable: frozenset[int] = frozenset()) -> tuple[Step, ...]:
    """The steps that take `source` to `destination` (which holds no partial sums); the
    dimensions in `reorderable` may be relabelled (`kept_axes`)."""
    if len(source.axes) != len(destination):
        raise ValueError(f"distribution of rank {len(source.axes)} moved to rank {len(destination)}")
    leaving, arriving, mixed = _moves(source, destination, reorderable)
    partial = set(source.partial)
    # A dimension that loses axes and gains others is sliced once it has lost them all.
    late = {axis for axis, index in arriving.items() if index in mixed and axis not in partial and leaving.get(axis, index) == index}
    kinds = (
        ("slice", canonical(axis for axis in arriving if axis not in leaving and axis not in partial and axis not in late)),
        ("reduce_scatter", canonical(axis for axis in partial if axis in arriving)),
        ("all_reduce", canonical(axis for axis in partial if axis not in arriving)),
        ("all_to_all", canonical(axis for axis, index in leaving.items() if arriving.get(axis, index) != index)),
        ("all_gather", canonical(axis for axis, index in leaving.items() if arriving.get(axis, index) == index)),
        ("slice", canonical(late)),
    )
    steps, left, arrived, current = [], set(), set(), source
    for kind, axes in kinds:
        if not axes:
            continue
        if kind in ("reduce_scatter", "all_reduce"):
            partial -= set(axes)
        if kind in ("all_to_all", "all_gather"):
            left |= set(axes)
            arrived -= set(axes)
        if kind != "all_gather":
            arrived |= set(axes)
        after = _distribution(source, destination, left, arrived, partial)
        steps.append(Step(kind, axes, current, after))
        current = after
    return tuple(steps)


def explicit_problem(source: Distribution, destination: tuple[Axes, ...], reorderable: frozenset[int] = frozenset()) -> str | None:
    """Why the explicit partitioner cannot run this move, or None. A dimension that loses axes
    and gains others can gain them only by slicing, once it has lost the others: an axis reduced
    or moved into it would land among chips that do not hold the block it belongs to."""
    leaving, arriving, mixed = _moves(source, destination, reorderable)
    for axis, index in arriving.items():
        if index in mixed and (axis in source.partial or leaving.get(axis, index) != index):
            before, after = source.axes[index], destination[index]
            return f"dimension {index} split over {before or '()'} cannot become {after or '()'} without a permutation among chips"
    return None


def waypoint(source: Distribution, destination: tuple[Axes, ...], reorderable: frozenset[int] = frozenset()) -> tuple[Axes, ...] | None:
    """For a move with a permutation among chips (`explicit_problem`): where the tensor can go
    first, partial sums and all, so that both halves run as collectives. The dimensions that lose
    some axes and gain others lose them first, to the dimensions that take them (all-to-all) or
    to none (all-gather); the partial sums are reduced in the second half, onto the dimensions
    they are then free to reach. None if no such waypoint runs. Where the axes only move between
    dimensions (the embedding's rows under wg-x), neither half holds more than the tensor at either
    end, where gathering the mixed dimensions whole would hold them unsplit."""
    leaving, arriving, mixed = _moves(source, destination, reorderable)
    lost = {axis for axis, index in leaving.items() if index in mixed}
    axes = []
    for index, (before, after) in enumerate(zip(source.axes, destination)):
        if index in mixed:
            axes.append(tuple(axis for axis in before if axis not in lost))
        else:
            axes.append(before + tuple(axis for axis in after if axis in lost and arriving.get(axis) == index))
    first, second = Distribution(source.axes), Distribution(tuple(axes), source.partial)
    if explicit_problem(first, tuple(axes), reorderable) is not None or explicit_problem(second, destination, reorderable) is not None:
        return None
    return tuple(axes)


def mixed_dimensions(source: Distribution, destination: tuple[Axes, ...], reorderable: frozenset[int] = frozenset()) -> frozenset[int]:
    """The dimensions that lose some mesh axes and gain others on the way."""
    return frozenset(_moves(source, destination, reorderable)[2])


def _one_step(source: Distribution, destination: tuple[Axes, ...], kind: str) -> int | None:
    """The one dimension the move changes, if the move is a single step of `kind`."""
    changed = [index for index, (before, after) in enumerate(zip(source.axes, destination)) if before != after]
    if [step.kind for step in derive(source, destination)] != [kind] or len(changed) != 1:
        return None
    return changed[0]


def looped_gather(source: Distribution, destination: tuple[Axes, ...]) -> tuple[int, Axes] | None:
    """If the move is one all-gather of one dimension's minor axes (what a collective matmul runs
    as a loop): that dimension and the axes it loses, in its order."""
    index = _one_step(source, destination, "all_gather")
    if index is None or source.axes[index][: len(destination[index])] != destination[index]:
        return None
    return index, source.axes[index][len(destination[index]) :]


def looped_reduce_scatter(source: Distribution, destination: tuple[Axes, ...]) -> tuple[int, Axes] | None:
    """If the move is one reduce-scatter onto one dimension's minor end (what a collective matmul
    runs as a loop): that dimension and the axes it gains, in its order."""
    index = _one_step(source, destination, "reduce_scatter")
    if index is None or destination[index][: len(source.axes[index])] != source.axes[index]:
        return None
    return index, destination[index][len(source.axes[index]) :]
