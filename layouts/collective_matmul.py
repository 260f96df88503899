"""The paper's Looped CollectiveEinsum (§3.5): a gather before a matmul, or a reduce-scatter after
one, run as a loop of collective-permutes, each overlapped with a partial matmul, so the links work
while the chip computes. Both take a group of n chips (the collective's mesh axes, numbered as
`all_gather` and `psum_scatter` number blocks) as a ring.

- All-gather (`gather_matmul`): x is split over the group along a dimension the matmul contracts.
  At step s chip i holds block (i + s) mod n of x, multiplies it by the matching rows of the
  weight, adds that to its sum, and passes the block to chip i − 1. After n − 1 passes it has the
  whole contraction and every block of x, which it keeps for the matmuls after it (the zoo's
  block feeds one gathered input to the query, K/V and FFN projections).
- Reduce-scatter (`reduce_scatter_matmul`): chip i needs block i of the output summed over the
  group. At step s it computes its share of block (i − 1 − s) mod n, adds the running sum it got
  from chip i − 1, and passes it to chip i + 1; after n − 1 passes it holds block i, whole.

Each permute carries one block, n − 1 of them: what a ring all-gather or reduce-scatter sends. The
bidirectional forms split every block in two halves that go round the ring in opposite
directions, so both directions of every link carry half.

The explicit partitioner (`layouts.explicit`) decides what runs as a loop. A move that is one
all-gather into a projection becomes a `Gathering`, which the first matmul contracting its
gathered dimension runs. A contraction becomes a `Pending` value, run when the zoo places it: as a
loop if that move is one reduce-scatter onto a dimension the weight gives, else as the einsum and
the move. The parallel block's two output projections are summed before their one reduce-scatter;
a sum of pending contractions stays pending and runs as one loop.
"""

import dataclasses

import jax
import jax.numpy as jnp
from jax import lax

from layouts.errors import LayoutError

MODES = ("none", "unidirectional", "bidirectional")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise LayoutError(f"unknown collective matmul {mode!r}; valid: {', '.join(MODES)}")
    return mode

# The named scopes around the loops; the compiled program's permutes inside them are the
# reduce-scatter or all-gather they implement (`layouts.compiled.hlo_analysis`).
SCOPE = "collective matmul reduce-scatter"
GATHER_SCOPE = "collective matmul all-gather"


class Gathering:
    """An all-gather not run yet: `shard` is to be gathered along `dimension` over `axes` (in the
    order the dimension is split over them). The first matmul that contracts that dimension runs it
    as its loop and keeps the gathered array (`whole`) for the matmuls after it."""

    def __init__(self, shard, dimension: int, axes: tuple[str, ...], sizes: dict[str, int]) -> None:
        self.shard, self.dimension, self.axes, self.sizes = shard, dimension, axes, sizes
        self.whole = None

    @property
    def dtype(self):
        return self.shard.dtype

    def materialize(self):
        if self.whole is None:
            self.whole = lax.all_gather(self.shard, self.axes, axis=self.dimension, tiled=True)
        return self.whole


@dataclasses.dataclass(frozen=True)
class Term:
    subscripts: str
    x: jax.Array
    w: jax.Array
    options: tuple  # einsum keyword options, as items

    def einsum(self, w=None):
        x = self.x.materialize() if isinstance(self.x, Gathering) else self.x
        return jnp.einsum(self.subscripts, x, self.w if w is None else w, **dict(self.options))


@dataclasses.dataclass(frozen=True)
class Pending:
    """A sum of contractions not run yet (every term has the same output placement)."""

    terms: tuple[Term, ...]

    def __add__(self, other: "Pending") -> "Pending":
        if not isinstance(other, Pending):
            return NotImplemented
        return Pending(self.terms + other.terms)

    def materialize(self):
        total = self.terms[0].einsum()
        for term in self.terms[1:]:
            total = total + term.einsum()
        return total

    def weight_dimension(self, output_dimension: int) -> list[int] | None:
        """Per term, the weight's dimension that gives the output's `output_dimension`; None if
        some term takes it from the activation instead."""
        found = []
        for term in self.terms:
            output = term.subscripts.replace(" ", "").split("->")[1]
            x_letters, w_letters = term.subscripts.replace(" ", "").split("->")[0].split(",")
            letter = output[output_dimension]
            if letter in x_letters or letter not in w_letters:
                return None
            found.append(w_letters.index(letter))
        return found


def _block(pending: Pending, weight_dims: list[int], index, blocks: int, part: tuple[int, int] = (0, 1)):
    """This chip's share (summed over the terms) of output block `index` of `blocks`, or of the
    `part` = (which, of how many) piece of that block."""
    which, parts = part
    total = None
    for term, dimension in zip(pending.terms, weight_dims):
        size = term.w.shape[dimension] // blocks // parts
        w = lax.dynamic_slice_in_dim(term.w, (index * parts + which) * size, size, axis=dimension)
        value = term.einsum(w)
        total = value if total is None else total + value
    return total


def _renumber(index: int, axes: tuple[str, ...], order: tuple[str, ...], sizes: dict[str, int]) -> int:
    """A group member's number, `index` with `axes` major first, renumbered with `order` major first."""
    coordinates = {}
    for axis in reversed(axes):
        index, coordinates[axis] = divmod(index, sizes[axis])
    number = 0
    for axis in order:
        number = number * sizes[axis] + coordinates[axis]
    return number


def reduce_scatter_matmul(pending: Pending, output_dimension: int, axes: tuple[str, ...], sizes: dict[str, int], bidirectional: bool):
    """The contraction's output summed over the chips of `axes` and scattered over them along
    `output_dimension` (as `psum_scatter(..., tiled=True)` would), computed as a loop of partial
    matmuls and collective-permutes."""
    weight_dims = pending.weight_dimension(output_dimension)
    # `me` numbers the chip as psum_scatter numbers blocks: the first of `axes` major.
    me, n, axes_for_permute, forward, backward = _ring(axes, sizes)
    # A block too small to halve goes round one way.
    halves = all((term.w.shape[dimension] // n) % 2 == 0 for term, dimension in zip(pending.terms, weight_dims))
    with jax.named_scope(SCOPE):
        if not (bidirectional and halves):
            total = _block(pending, weight_dims, (me - 1) % n, n)
            for step in range(1, n):
                total = lax.ppermute(total, axes_for_permute, forward) + _block(pending, weight_dims, (me - 1 - step) % n, n)
            return total
        # Half of every block goes forward round the ring, the other half backward.
        ahead = _block(pending, weight_dims, (me - 1) % n, n, (0, 2))
        behind = _block(pending, weight_dims, (me + 1) % n, n, (1, 2))
        for step in range(1, n):
            ahead = lax.ppermute(ahead, axes_for_permute, forward) + _block(pending, weight_dims, (me - 1 - step) % n, n, (0, 2))
            behind = lax.ppermute(behind, axes_for_permute, backward) + _block(pending, weight_dims, (me + 1 + step) % n, n, (1, 2))
        return jnp.concatenate([ahead, behind], axis=output_dimension)


def _ring(axes: tuple[str, ...], sizes: dict[str, int]):
    """The group of `axes` as a ring: this chip's number in it (first axis major), its size, the
    mesh-order axes ppermute takes, and the pairs that pass to the next and to the previous."""
    n = 1
    for axis in axes:
        n *= sizes[axis]
    in_mesh_order = tuple(axis for axis in sizes if axis in axes)
    number = [_renumber(index, axes, in_mesh_order, sizes) for index in range(n)]
    forward = [(number[i], number[(i + 1) % n]) for i in range(n)]
    backward = [(number[i], number[(i - 1) % n]) for i in range(n)]
    return lax.axis_index(axes), n, in_mesh_order, forward, backward


def gather_matmul(gathering: Gathering, subscripts: str, w, options: tuple, bidirectional: bool):
    """einsum(subscripts, gathered x, w) where x's gathered dimension is contracted with w's, as a
    loop: each chip multiplies the block of x it holds by the matching rows of w and passes the
    block on, so the gather's passes overlap the partial matmuls; the gathered x is kept."""
    inputs = subscripts.replace(" ", "").split("->")[0]
    x_letters, w_letters = inputs.split(",")
    row = w_letters.index(x_letters[gathering.dimension])
    me, n, axes, forward, backward = _ring(gathering.axes, gathering.sizes)
    shard, dimension = gathering.shard, gathering.dimension
    block = shard.shape[dimension]

    def partial(x_block, index, piece=(0, 1)):
        which, pieces = piece
        size = block // pieces
        rows = lax.dynamic_slice_in_dim(w, index * block + which * size, size, axis=row)
        return jnp.einsum(subscripts, x_block, rows, **dict(options))

    with jax.named_scope(GATHER_SCOPE):
        if not (bidirectional and block % 2 == 0):
            current, received = shard, [shard]
            total = partial(shard, me)
            for step in range(1, n):
                current = lax.ppermute(current, axes, backward)  # from the next chip: block me + step
                received.append(current)
                total = total + partial(current, (me + step) % n)
            gathering.whole = _joined(_in_block_order(received, me, +1), dimension)
            return total
        half = block // 2
        first, second = lax.slice_in_dim(shard, 0, half, axis=dimension), lax.slice_in_dim(shard, half, block, axis=dimension)
        ahead, behind = [first], [second]
        total = partial(first, me, (0, 2)) + partial(second, me, (1, 2))
        for step in range(1, n):
            first = lax.ppermute(first, axes, forward)  # from the previous chip: block me - step
            second = lax.ppermute(second, axes, backward)  # from the next chip: block me + step
            ahead.append(first)
            behind.append(second)
            total = total + partial(first, (me - step) % n, (0, 2)) + partial(second, (me + step) % n, (1, 2))
        blocks = jnp.concatenate([_in_block_order(ahead, me, -1), _in_block_order(behind, me, +1)], axis=dimension + 1)
        gathering.whole = _joined(blocks, dimension)
        return total


def _in_block_order(received, me, sign):
    """`received[s]` is block (me + sign·s) mod n: the blocks stacked in block order."""
    n = len(received)
    stacked = jnp.stack(received)  # [n, ...] indexed by s
    order = (jnp.arange(n) - me) * sign % n  # block b sits at s = (b - me)·sign mod n
    return jnp.take(stacked, order, axis=0)


def _joined(blocks, dimension: int):
    """Blocks stacked on a leading axis, joined in order along `dimension`."""
    moved = jnp.moveaxis(blocks, 0, dimension)
    shape = moved.shape
    return moved.reshape(shape[:dimension] + (shape[dimension] * shape[dimension + 1],) + shape[dimension + 2 :])
