"""The layout hook: how the zoo's code lets a layout place its tensors, without knowing meshes.

The model declares, in logical names, where each tensor is and where it must go: a matmul input,
the FFN hidden, attention's heads or batch, the KV cache. A layout supplies a `Constrain` that acts
on those declarations; `no_constraint` (no layout) leaves every array where it is, so single-device
code runs exactly the same lines. Entry points take the hook as an explicit argument; there is no
global "current layout" that could be silently missing.

A layout can act in two ways, and the zoo's code serves both:
- the compiler partitioner sees the whole (global) arrays and turns each placement into a sharding
  constraint, leaving XLA to choose the collectives;
- the explicit partitioner runs the step on every chip's shard (`step` wraps it) and turns each
  change of placement into the collectives it implies. For that it needs to know where a tensor
  comes from as well as where it goes, so a move names its `source`, and the contractions, the
  embedding lookup and the norm's statistics go through the hook (a partial sum left by a matmul
  is a placement too: `Placed.summed`).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array

from zoo.logical_axes import AxisNames, Role

LogicalDim = tuple[Role, str | None]
# What `Constrain.contract` returns: an array, or (under a layout that runs collective matmuls) a
# contraction the layout runs when the zoo places it; the zoo only adds such values and places them.
Contracted = Any
# What a projection takes as input: an array, or (under such a layout) a gather the layout runs
# inside the first matmul that contracts it; the zoo only reads its dtype and contracts it.
MatmulInput = Any

# Named scopes (`jax.named_scope`) around work the paper's formulas leave out, so that whatever
# communication it causes can be found in a compiled program's metadata and listed apart.
EMBEDDING_LOOKUP_SCOPE = "embedding lookup"
NORM_STATISTICS_SCOPE = "norm statistics"
UNPRESCRIBED_SCOPES = (EMBEDDING_LOOKUP_SCOPE, NORM_STATISTICS_SCOPE)


@dataclasses.dataclass(frozen=True)
class Placed:
    """Where a tensor is, in logical names: per dimension the role and name that place it, and the
    dimensions a contraction summed away, whose mesh axes the values are still partial sums over
    until a move reduces them."""

    dims: tuple[LogicalDim, ...]
    summed: tuple[LogicalDim, ...] = ()


def placed(role: Role, names: AxisNames) -> Placed:
    return Placed(tuple((role, name) for name in names))


def contracted(subscripts: str, x: Placed, w: Placed) -> Placed:
    """The placement an einsum `subscripts` ("BTE,EHQ->BTHQ") of two placed operands leaves: each
    output dimension placed as the operand dimension it comes from, summed over the contracted ones
    (as the second operand, the weight, places them)."""
    inputs, output = subscripts.replace(" ", "").split("->")
    x_letters, w_letters = inputs.split(",")
    by_letter = dict(zip(w_letters, w.dims)) | dict(zip(x_letters, x.dims))
    summed = tuple(dim for letter, dim in zip(w_letters, w.dims) if letter not in output)
    return Placed(tuple(by_letter[letter] for letter in output), x.summed + w.summed + summed)


def looked_up(table: Placed, ids: Placed) -> Placed:
    """Where rows of a table [V, E] looked up at ids are: placed as the ids, then the table's E, and
    (each chip looking up the rows its vocabulary shard holds) partial sums over its V."""
    return Placed(ids.dims + table.dims[1:], ids.summed + table.dims[:1])


class Constrain:
    """The hook with no layout: every array stays where it is. Layouts subclass it."""

    # Whether the layout gathers a matmul's input inside the matmul's loop (collective matmul):
    # the zoo then normalises before that gather rather than after it.
    loops_gathers = False

    def __call__(
        self, x: Array, role: Role, names: AxisNames, *, source: Placed | tuple[Placed, ...] | None = None, into_contraction: bool = False
    ) -> Array:
        """`x` placed as the layout maps `names` under `role`. `source` says where it is now (a
        tuple when `x` is a sum of terms placed alike); the explicit partitioner needs it.
        `into_contraction`: the result only ever goes into `contract` calls, as their first
        operand, so a layout may hand back a gather still to run (inside the first matmul)."""
        del role, names, source, into_contraction
        return x

    def place_whole(self, x: Array, role: Role, names: AxisNames) -> Array:
        """`x`, a whole array outside any step (the cache between prefill and decode), placed as
        the layout maps `names` under `role`."""
        del role, names
        return x

    def contract(self, subscripts: str, x: Array, x_placed: Placed, w: Array, w_placed: Placed, **einsum_options) -> tuple[Contracted, Placed]:
        """The einsum of an activation and a weight, and where its result is (a partial sum over
        the contracted dimensions' mesh axes until a move reduces it)."""
        return jnp.einsum(subscripts, x, w, **einsum_options), contracted(subscripts, x_placed, w_placed)

    def lookup(self, table: Array, table_placed: Placed, ids: Array, ids_placed: Placed, role: Role, names: AxisNames) -> Array:
        """Rows of `table` [V, E] at `ids`, an array [*ids.shape, E], placed as `names` under `role`."""
        rows = jnp.take(table, ids, axis=0)
        return self(rows, role, names, source=looked_up(table_placed, ids_placed))

    def mean(self, x: Array, x_placed: Placed) -> Array:
        """The mean over the last dimension (kept, size 1), whatever the layout splits it over."""
        del x_placed
        return jnp.mean(x, axis=-1, keepdims=True)

    def step(self, function: Callable, model, tokens: Array, cache, logits_names: AxisNames):
        """Runs `function(model, tokens, cache) -> (logits, cache)`, the body of a prefill, a decode
        step or a forward pass (cache None); logits carry `logits_names` under the activation role."""
        del logits_names
        return function(model, tokens, cache)


no_constraint = Constrain()
