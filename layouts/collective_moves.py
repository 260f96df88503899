"""Running a move (`layouts.transitions.derive`) on one chip's shard, inside `shard_map`.

Each step is one collective over all its mesh axes, however many dimensions those axes split: the
shard is viewed with every dimension that gains axes cut into one block per gained axis (in the
destination's order) and the rest; a collective takes the blocks of its axes to the front, merged
into one dimension in its group order (mesh order; a group over several axes numbers its members
with the first axis major), and runs on that dimension. What a gather or an all-to-all brings in
arrives the same way, as blocks in front, which are put back in front of the dimension that lost
those axes, in the source's order. So a reduce-scatter over y and z onto E (2D weight-stationary's
block output) is one `psum_scatter` over ("y", "z"), as the cost model counts it.
"""

import math

import jax
import jax.numpy as jnp
from jax import lax

from layouts.errors import LayoutError
from layouts.transitions import Axes, Distribution, derive, explicit_problem


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

    def recut(self, source: Distribution, destination: tuple[Axes, ...], axes: Axes, sizes: dict[str, int]) -> None:
        """Joins the blocks of each dimension that `axes` arrive in (all it brought in, in the
        source's order, then the rest) and cuts it again into one block per arriving axis (in the
        destination's order) and the rest."""
        for index in sorted({next(d for d, after in enumerate(destination) if axis in after) for axis in axes}):
            mine = [i for axis in source.axes[index] for i, label in enumerate(self.labels) if label == (index, axis)]
            mine.append(self.labels.index((index, None)))
            others = [i for i in range(len(self.labels)) if i not in mine]
            array = jnp.transpose(self.array, others + mine)
            arriving = tuple(axis for axis in destination[index][len(_kept(source.axes[index], destination[index])) :])
            joined = math.prod(array.shape[len(others) :])
            self.array = array.reshape(array.shape[: len(others)] + tuple(sizes[axis] for axis in arriving) + (joined // math.prod(sizes[axis] for axis in arriving),))
            self.labels = [self.labels[i] for i in others] + [(index, axis) for axis in arriving] + [(index, None)]

    def drop_front(self) -> None:
        self.array = self.array.reshape(self.array.shape[1:])
        self.labels = self.labels[1:]


def move(x, source: Distribution, destination: tuple[Axes, ...], sizes: dict[str, int], where: str = "move"):
    """`x`, one chip's shard distributed as `source`, redistributed as `destination`."""
    steps = derive(source, destination)
    if not steps:
        return x
    problem = explicit_problem(source, destination)
    if problem is not None:
        raise ExplicitProgramError(f"{where}: {problem}; the compiler partitioner (--partitioner compiler) can run it")
    leaving = {axis: index for index, axes in enumerate(source.axes) for axis in axes if axis not in _kept(source.axes[index], destination[index])}
    ways = lambda axes: math.prod(sizes[axis] for axis in axes)  # noqa: E731
    whole = [size * ways(before) for size, before in zip(x.shape, source.axes)]
    labels, shape = [], []
    for index, (size, before, after) in enumerate(zip(x.shape, source.axes, destination)):
        # A dimension that only gains axes is cut into their blocks now; one that also loses
        # axes is cut when it has lost them (the last slice).
        gained = after[len(_kept(before, after)) :] if not before[len(_kept(before, after)) :] else ()
        for axis in gained:
            labels.append((index, axis))
            shape.append(sizes[axis])
        labels.append((index, None))
        shape.append(size // ways(gained))
    blocks = _Blocks(x.reshape(shape), labels)

    with jax.named_scope(where):
        for step in steps:
            axes = step.axes
            if step.kind == "slice":
                late = tuple(axis for axis in axes if any(axis in after and before[len(_kept(before, after)) :] for before, after in zip(source.axes, destination)))
                if late:  # into a dimension that has lost its other axes: cut it now
                    blocks.recut(source, destination, late, sizes)
                for axis in axes:
                    position = next(i for i, (_, name) in enumerate(blocks.labels) if name == axis)
                    blocks.array = lax.dynamic_index_in_dim(blocks.array, lax.axis_index(axis), position, keepdims=False)
                    del blocks.labels[position]
            elif step.kind == "reduce_scatter":
                blocks.to_front(axes)
                blocks.array = lax.psum_scatter(blocks.array, axes, scatter_dimension=0, tiled=True)
                blocks.drop_front()
            elif step.kind == "all_reduce":
                blocks.array = lax.psum(blocks.array, axes)
            elif step.kind == "all_to_all":
                blocks.to_front(axes)
                blocks.array = lax.all_to_all(blocks.array, axes, 0, 0, tiled=True)
                blocks.split_front(axes, leaving, sizes)
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


def _kept(before: Axes, after: Axes) -> Axes:
    """The leading axes a dimension keeps in place."""
    kept = 0
    while kept < min(len(before), len(after)) and before[kept] == after[kept]:
        kept += 1
    return before[:kept]
