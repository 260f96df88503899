"""Running a move (`layouts.transitions.derive`) on one chip's shard, inside `shard_map`.

Each step is one collective over all its mesh axes, however many dimensions those axes split: the
shard is viewed with every dimension that gains axes cut into one block per gained axis (in the
destination's order) and the rest; a collective takes the blocks of its axes to the front, merged
into one dimension in its group order (mesh order; a group over several axes numbers its members
with the first axis major), and runs on that dimension. What a gather or an all-to-all brings in
arrives the same way, as blocks in front, which are put back in front of the dimension that lost
those axes, in the source's order. So a reduce-scatter over y and z onto E (2D weight-stationary's
block output) is one `psum_scatter` over ("y", "z"), as the cost model counts it. Two
exceptions (see `move`): a reduce-scatter over all three axes runs as two, and a gather of several
dimensions that only lose axes (a weight gathered for use) runs as one gather per dimension.
"""

import math

import jax
import jax.numpy as jnp
from jax import lax

from layouts.errors import LayoutError
from layouts.transitions import Axes, Distribution, derive, explicit_problem, kept_axes, mixed_dimensions, waypoint


class ExplicitProgramError(LayoutError):
    """A layout whose placements the explicit partitioner cannot run as collectives."""


class _Blocks:
    """A shard viewed as labelled blocks: `labels[i]` is (dimension, mesh axis or None for the rest)."""

    def __init__(self, array, labels: list[tuple[int, str | None]]) -> None:
        self.array, self.labels = array, labels

    def to_front(self, axes: Axes) -> None:
        """Moves the blocks of `axes` (in that order) to the front, merged into one dimension."""
        positions = [next(i for i, (_, axis) in enumerate(self.labels) if axis == name) for name in axes]
        rest = [i for i in range(len(self.labels)) if i not in positions]
        array = jnp.transpose(self.array, positions + rest)
        self.array = array.reshape((-1, *array.shape[len(positions) :]))
        self.labels = [(-1, "+".join(axes))] + [self.labels[i] for i in rest]

    def split_front(self, axes: Axes, dimensions: dict[str, int], sizes: dict[str, int]) -> None:
        """The merged front dimension, now indexed by group member, as one block per axis of
        `axes`, each belonging to the dimension it left."""
        self.array = self.array.reshape(tuple(sizes[axis] for axis in axes) + self.array.shape[1:])
        self.labels = [(dimensions[axis], axis) for axis in axes] + self.labels[1:]

    def recut(self, source: Distribution, gained: list[Axes], axes: Axes, sizes: dict[str, int]) -> None:
        """Joins the blocks of each dimension that `axes` arrive in (all it brought in, in the
        source's order, then the rest) and cuts it again into one block per axis it gains (in the
        destination's order) and the rest."""
        for index in sorted({next(d for d, added in enumerate(gained) if axis in added) for axis in axes}):
            mine = [i for axis in source.axes[index] for i, label in enumerate(self.labels) if label == (index, axis)]
            mine.append(self.labels.index((index, None)))
            others = [i for i in range(len(self.labels)) if i not in mine]
            array = jnp.transpose(self.array, others + mine)
            arriving = gained[index]
            joined = math.prod(array.shape[len(others) :])
            self.array = array.reshape(array.shape[: len(others)] + tuple(sizes[axis] for axis in arriving) + (joined // math.prod(sizes[axis] for axis in arriving),))
            self.labels = [self.labels[i] for i in others] + [(index, axis) for axis in arriving] + [(index, None)]

    def cut_in_place(self, axes: Axes) -> tuple[int, Axes] | None:
        """Where the blocks of `axes` lie if they are cut from one dimension, side by side, just
        before its rest: (position of the first, their order); else None."""
        positions = sorted(i for i, (_, axis) in enumerate(self.labels) if axis in axes)
        if len(positions) != len(axes) or len({self.labels[i][0] for i in positions}) != 1:
            return None
        first, dimension = positions[0], self.labels[positions[0]][0]
        if positions != list(range(first, first + len(axes))) or self.labels[first + len(axes)] != (dimension, None):
            return None
        return first, tuple(self.labels[i][1] for i in positions)

    def join_rest(self, first: int, count: int) -> None:
        """Joins the `count` blocks at `first` with the rest of their dimension, just after them."""
        shape = self.array.shape
        self.array = self.array.reshape(shape[:first] + (-1,) + shape[first + count + 1 :])
        self.labels = self.labels[:first] + self.labels[first + count :]

    def drop_front(self) -> None:
        self.array = self.array.reshape(self.array.shape[1:])
        self.labels = self.labels[1:]


def move(
    x, source: Distribution, destination: tuple[Axes, ...], sizes: dict[str, int], where: str = "move", reorderable: frozenset[int] = frozenset(), via_gather: bool = False
):
    """`x`, one chip's shard distributed as `source`, redistributed as `destination` (the
    dimensions in `reorderable` possibly relabelled: `layouts.transitions.kept_axes`). A move that
    would need a permutation among chips is refused, unless `via_gather`: then it runs by way of
    `layouts.transitions.waypoint` (the axes that leave first, the partial sums carried along),
    or, where there is none, the dimensions that lose some axes and gain others are gathered whole
    (partial sums reduced), then sliced."""
    steps = derive(source, destination, reorderable)
    if not steps:
        return x
    problem = explicit_problem(source, destination, reorderable)
    if problem is not None and via_gather and (stop := waypoint(source, destination, reorderable)) is not None:
        # The first half moves no partial-summed axis, so the sums travel with the blocks.
        x = move(x, Distribution(source.axes), stop, sizes, where, reorderable)
        return move(x, Distribution(stop, source.partial), destination, sizes, where, reorderable)
    if problem is not None and via_gather:
        mixed = mixed_dimensions(source, destination, reorderable)
        whole = Distribution(tuple(() if index in mixed else axes for index, axes in enumerate(source.axes)))
        x = move(x, source, whole.axes, sizes, where, reorderable)
        return move(x, whole, destination, sizes, where, reorderable)
    if problem is not None:
        raise ExplicitProgramError(f"{where}: {problem}; the compiler partitioner (--partitioner compiler) can run it")
    kept = [kept_axes(before, after, index in reorderable) for index, (before, after) in enumerate(zip(source.axes, destination))]
    lost = [tuple(axis for axis in before if axis not in keep) for before, keep in zip(source.axes, kept)]
    gained = [tuple(axis for axis in after if axis not in keep) for after, keep in zip(destination, kept)]
    leaving = {axis: index for index, axes in enumerate(lost) for axis in axes}
    ways = lambda axes: math.prod(sizes[axis] for axis in axes)  # noqa: E731
    whole = [size * ways(before) for size, before in zip(x.shape, source.axes)]
    labels, shape = [], []
    for index, size in enumerate(x.shape):
        # A dimension that only gains axes is cut into their blocks now; one that also loses
        # axes is cut when it has lost them (the last slice).
        cut = gained[index] if not lost[index] else ()
        for axis in cut:
            labels.append((index, axis))
            shape.append(sizes[axis])
        labels.append((index, None))
        shape.append(size // ways(cut))
    blocks = _Blocks(x.reshape(shape), labels)

    with jax.named_scope(where):
        for step in steps:
            axes = step.axes
            if step.kind == "slice":
                late = tuple(axis for axis in axes if any(axis in added and lost[index] for index, added in enumerate(gained)))
                if late:  # into a dimension that has lost its other axes: cut it now
                    blocks.recut(source, gained, late, sizes)
                for axis in axes:
                    position = next(i for i, (_, name) in enumerate(blocks.labels) if name == axis)
                    blocks.array = lax.dynamic_index_in_dim(blocks.array, lax.axis_index(axis), position, keepdims=False)
                    del blocks.labels[position]
            elif step.kind == "reduce_scatter":
                # XLA on TPU runs a reduce-scatter over a whole 3D torus as an all-reduce and a
                # slice (twice the traffic); over the last two axes and then the first, it runs
                # two reduce-scatters that move together what the one would.
                for group in (axes[1:], axes[:1]) if len(axes) == 3 else (axes,):
                    cut = blocks.cut_in_place(group)
                    if cut is not None:  # into one dimension: scatter it as it is
                        blocks.join_rest(cut[0], len(group))
                        blocks.array = lax.psum_scatter(blocks.array, cut[1], scatter_dimension=cut[0], tiled=True)
                    else:
                        blocks.to_front(group)
                        blocks.array = lax.psum_scatter(blocks.array, group, scatter_dimension=0, tiled=True)
                        blocks.drop_front()
            elif step.kind == "all_reduce":
                blocks.array = lax.psum(blocks.array, axes)
            elif step.kind == "all_to_all" and (direct := _all_lost(axes, lost)) is not None:
                origin, order = direct
                cut = blocks.cut_in_place(axes)
                if cut is not None and cut[1] == order:  # from one dimension to another, same order
                    blocks.join_rest(cut[0], len(axes))
                    concat = blocks.labels.index((origin, None))
                    blocks.array = lax.all_to_all(blocks.array, order, cut[0], concat, tiled=True)
                else:
                    blocks.to_front(axes)
                    blocks.array = lax.all_to_all(blocks.array, axes, 0, 0, tiled=True)
                    blocks.split_front(axes, leaving, sizes)
            elif step.kind == "all_to_all":
                blocks.to_front(axes)
                blocks.array = lax.all_to_all(blocks.array, axes, 0, 0, tiled=True)
                blocks.split_front(axes, leaving, sizes)
            elif (direct := _all_lost(axes, lost)) is not None:  # all-gather of all one dimension loses
                origin, order = direct
                blocks.array = lax.all_gather(blocks.array, order, axis=blocks.labels.index((origin, None)), tiled=True)
            elif (dimensions := _each_lost(axes, lost, gained)) is not None:
                # Several dimensions that only lose axes (a weight gathered whole for use): one
                # gather per dimension, in place, the fewest chips first. One gather over all the
                # axes would bring the blocks in mesh order, which the program then lays out as
                # the matmul takes them: a copy as large as the gathered weight, held beside it.
                for origin, order in sorted(dimensions, key=lambda dimension: ways(dimension[1])):
                    blocks.array = lax.all_gather(blocks.array, order, axis=blocks.labels.index((origin, None)), tiled=True)
            else:  # all_gather
                blocks.array = lax.all_gather(blocks.array, axes, axis=0, tiled=False)
                if len(axes) > 1 and blocks.array.ndim == len(blocks.labels) + len(axes):
                    blocks.array = blocks.array.reshape((-1, *blocks.array.shape[len(axes) :]))
                blocks.labels = [(-1, "+".join(axes))] + blocks.labels
                blocks.split_front(axes, leaving, sizes)

    # Each dimension's blocks in order: what it brought in (in the source's order), then the rest.
    order = []
    for index, before in enumerate(source.axes):
        order += [i for axis in before for i, label in enumerate(blocks.labels) if label == (index, axis)]
        order.append(blocks.labels.index((index, None)))
    if sorted(order) != list(range(len(blocks.labels))):
        raise AssertionError(f"{where}: blocks {blocks.labels} left over after {source} -> {destination}")
    return jnp.transpose(blocks.array, order).reshape(tuple(size // ways(after) for size, after in zip(whole, destination)))


def _each_lost(axes: Axes, lost: list[Axes], gained: list[Axes]) -> list[tuple[int, Axes]] | None:
    """If `axes` are all the axes some dimensions lose, each of them gaining none: those
    dimensions with their lost axes (in their order)."""
    dimensions = [(index, axes_lost) for index, axes_lost in enumerate(lost) if axes_lost and set(axes_lost) <= set(axes)]
    if {axis for _, axes_lost in dimensions for axis in axes_lost} != set(axes) or any(gained[index] for index, _ in dimensions):
        return None
    return dimensions


def _all_lost(axes: Axes, lost: list[Axes]) -> tuple[int, Axes] | None:
    """If `axes` are all the axes one dimension loses: (that dimension, the axes in its order)."""
    for index, axes_lost in enumerate(lost):
        if axes_lost and set(axes_lost) == set(axes):
            return index, axes_lost
    return None
