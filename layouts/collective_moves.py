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
    held = {axis: index for index, axes in enumerate(source.axes) for axis in axes}
    gained = [after[len(before) :] for before, after in zip(source.axes, destination)]
    labels, shape = [], []
    for index, (size, axes) in enumerate(zip(x.shape, gained)):
        for axis in axes:
            labels.append((index, axis))
            shape.append(sizes[axis])
        labels.append((index, None))
        shape.append(size // math.prod(sizes[axis] for axis in axes))
    blocks = _Blocks(x.reshape(shape), labels)

    with jax.named_scope(where):
        for step in steps:
            axes = step.axes
            if step.kind == "slice":
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
                blocks.split_front(axes, held, sizes)
            else:  # all_gather
                blocks.array = lax.all_gather(blocks.array, axes, axis=0, tiled=False)
                if len(axes) > 1 and blocks.array.ndim == len(blocks.labels) + len(axes):
                    blocks.array = blocks.array.reshape((-1, *blocks.array.shape[len(axes) :]))
                blocks.labels = [(-1, "+".join(axes))] + blocks.labels
                blocks.split_front(axes, held, sizes)

    # Each dimension's blocks in order: what it brought in (in the source's order), then the rest.
    order = []
    for index, before in enumerate(source.axes):
        order += [i for axis in before for i, label in enumerate(blocks.labels) if label == (index, axis)]
        order.append(blocks.labels.index((index, None)))
    if sorted(order) != list(range(len(blocks.labels))):
        raise AssertionError(f"{where}: blocks {blocks.labels} left over after {source} -> {destination}")
    array = jnp.transpose(blocks.array, order)
    local = tuple(
        size * math.prod(sizes[axis] for axis in before[len(after) :]) // math.prod(sizes[axis] for axis in after[len(before) :])
        for size, before, after in zip(x.shape, source.axes, destination)
    )
    return array.reshape(local)
