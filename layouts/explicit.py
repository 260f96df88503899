"""The explicit partitioner: the step runs on every chip's shard (`shard_map`), and each change of
placement the zoo declares becomes the collectives `layouts.transitions` derives for it, the same
derivation the cost model counts. So the compiled program is the layout's program: what the paper
prescribes, plus only what the model needs beyond its formulas, which the zoo runs in named scopes
of their own (`zoo.constraints.UNPRESCRIBED_SCOPES`) so that the compiled program's collectives
can be told apart (`layouts.compiled.hlo_analysis`):

- the embedding lookup: each chip looks up the rows of its vocabulary shard, and the partial rows
  are reduced into the residual stream (the paper leaves the lookup out of its volumes);
- the norm statistics: a norm over an E that is still split (2D weight-stationary's E_x) sums its
  statistics over those chips, two [B, L, 1] fp32 values.

With collective matmul on (`layouts.collective_matmul`), the paper's looped collective einsum: a
projection whose partial sums are reduce-scattered onto a dimension its weight gives runs that
reduce-scatter as a loop; the first projection of an input gathered over its contracted dimension
whose output is not so reduce-scattered runs the gather as its loop (the projections after it
reuse the gathered input). XLA on TPU rewrites reduce-scatters more than gathers, hence the order.

A layout whose placements would need a permutation among chips is refused with
`ExplicitProgramError` when the step is traced; the compiler partitioner can still run it.
"""

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from layouts.collective_matmul import Gathering, Pending, Term, check_mode, gather_matmul, reduce_scatter_matmul
from layouts.collective_moves import ExplicitProgramError, move
from layouts.layout import Partitioning
from layouts.resolver import resolve
from layouts.sharding import CompilerPlacement, cache_shardings, param_shardings
from layouts.transitions import Axes, Distribution, canonical, kept_axes, looped_gather, looped_reduce_scatter
from zoo.constraints import Placed, contracted, looked_up
from zoo.logical_axes import ATTENTION_HEADS, ATTENTION_KV_HEADS, CACHE_KV_HEADS, Role
from zoo.transformer import TOKEN_NAMES

# Heads inside attention (and the cache's, which is where attention runs) may be relabelled: see
# `layouts.transitions.kept_axes`.
_HEAD_NAMES = frozenset({ATTENTION_HEADS, ATTENTION_KV_HEADS, CACHE_KV_HEADS})


class ExplicitPlacement(CompilerPlacement):
    """The explicit partitioner's hook for one partitioning on one mesh. Whole arrays outside a
    step (the cache between prefill and decode) are placed as the compiler partitioner does."""

    def __init__(self, partitioning: Partitioning, mesh: Mesh, collective_matmul: str = "none") -> None:
        super().__init__(partitioning, mesh)
        self.sizes = dict(mesh.shape)
        self.collective_matmul = check_mode(collective_matmul)

    def _axes(self, role: Role, name: str | None) -> Axes:
        """The mesh axes `name` is split over, less those of size 1 (they split nothing)."""
        return tuple(axis for axis in self.partitioning.axes(role, name) if self.sizes.get(axis, 1) > 1)

    def distribution(self, where: Placed) -> Distribution:
        partial = canonical(axis for role, name in where.summed for axis in self._axes(role, name))
        return Distribution(tuple(self._axes(role, name) for role, name in where.dims), partial)

    @property
    def loops_gathers(self) -> bool:
        return self.collective_matmul != "none"

    def __call__(self, x, role: Role, names, *, source=None, into_contraction: bool = False):
        if source is None:
            raise ExplicitProgramError(f"placing {role.value} {names}: the explicit partitioner needs the array's source placement")
        sources = source if isinstance(source, tuple) else (source,)
        if isinstance(x, Pending):
            return self._place_contraction(x, role, names, sources)
        distributions = {self.distribution(each) for each in sources}
        if len(distributions) > 1:
            raise ExplicitProgramError(f"placing {role.value} {names}: the terms of a sum are distributed differently: {distributions}")
        source_distribution, destination = distributions.pop(), tuple(self._axes(role, name) for name in names)
        if into_contraction and self.loops_gathers:
            gathering = self._gathering(x, source_distribution, destination)
            if gathering is not None:
                return gathering
        where = f"{self.partitioning.name}: placing {role.value} ({', '.join(str(name) for name in names)})"
        heads = frozenset(
            index for index, name in enumerate(names) if name in _HEAD_NAMES or any(each.dims[index][1] in _HEAD_NAMES for each in sources)
        )
        self._check_relabelling(source_distribution, destination, heads, where)
        return move(x, source_distribution, destination, self.sizes, where=where, reorderable=heads)

    def _check_relabelling(self, source: Distribution, destination: tuple[Axes, ...], heads: frozenset[int], where: str) -> None:
        """Relabelled heads are harmless with one KV head (every query head reads it); with several,
        the cache would hold its heads relabelled, which another layout's steps would misread."""
        kv_heads = self.partitioning.config.n_kv_heads
        if kv_heads == 1:
            return
        for index in heads:
            if kept_axes(source.axes[index], destination[index], True) != kept_axes(source.axes[index], destination[index]):
                raise ExplicitProgramError(
                    f"{where}: moving heads from {source.axes[index]} to {destination[index]} would relabel the {kv_heads} KV heads "
                    "the cache holds; the compiler partitioner (--partitioner compiler) can run it"
                )

    def _gathering(self, x, source: Distribution, destination: tuple[Axes, ...]) -> Gathering | None:
        """The move as a gather still to run, if a collective matmul can loop it."""
        gather = looped_gather(source, destination)
        return None if gather is None else Gathering(x, *gather, self.sizes)

    def _place_contraction(self, pending: Pending, role: Role, names, sources):
        """A pending contraction placed: as a collective matmul when its move is one reduce-scatter
        onto a dimension the weight gives, else computed and moved like any array."""
        source, destination = self.distribution(sources[0]), tuple(self._axes(role, name) for name in names)
        scatter = looped_reduce_scatter(source, destination)
        alike = all(self.distribution(each) == source for each in sources)
        if alike and scatter is not None and pending.weight_dimension(scatter[0]) is not None:
            # The reduce-scatter's loop; an input still to gather is gathered plainly.
            return reduce_scatter_matmul(pending, *scatter, self.sizes, self.collective_matmul == "bidirectional")
        # No reduce-scatter loop: a term whose input is still to gather runs the gather as its loop.
        total = None
        for term in pending.terms:
            value = self._gathered_term(term) if isinstance(term.x, Gathering) else term.einsum()
            total = value if total is None else total + value
        return self(total, role, names, source=sources)

    def _gathered_term(self, term: Term):
        x_letters, w_letters = term.subscripts.replace(" ", "").split("->")[0].split(",")
        output = term.subscripts.replace(" ", "").split("->")[1]
        letter = x_letters[term.x.dimension]
        if term.x.whole is None and letter in w_letters and letter not in output:
            return gather_matmul(term.x, term.subscripts, term.w, term.options, self.collective_matmul == "bidirectional")
        return term.einsum()

    def contract(self, subscripts, x, x_placed, w, w_placed, **einsum_options):
        # A contracted dimension of x must be split as the weight splits it (the cost model's
        # projection moves it the same way) for the local einsum to be the chip's partial sum.
        inputs, output = subscripts.replace(" ", "").split("->")
        x_letters, w_letters = inputs.split(",")
        if isinstance(x, Gathering):
            # Gathered to the weight's split already: run when placed (see _place_contraction).
            return Pending((Term(subscripts, x, w, tuple(einsum_options.items())),)), contracted(subscripts, x_placed, w_placed)
        here, weight = self.distribution(x_placed), self.distribution(w_placed)
        by_letter = dict(zip(w_letters, weight.axes))
        wanted = tuple(by_letter[letter] if letter in by_letter and letter not in output else axes for letter, axes in zip(x_letters, here.axes))
        if wanted != here.axes:
            x = move(x, here, wanted, self.sizes, where=f"{subscripts} input")
        if self.collective_matmul != "none":  # run when placed: see _place_contraction
            return Pending((Term(subscripts, x, w, tuple(einsum_options.items())),)), contracted(subscripts, x_placed, w_placed)
        return jnp.einsum(subscripts, x, w, **einsum_options), contracted(subscripts, x_placed, w_placed)

    def lookup(self, table, table_placed, ids, ids_placed, role, names):
        """Each chip looks up the rows its vocabulary shard holds and zeros the rest: the rows are
        then a partial sum over the vocabulary's axes, which the move to `names` reduces. That
        move is not the paper's (it leaves the lookup out): where it would need a permutation
        among chips, it gathers the dimension concerned and slices it instead."""
        vocab_axes = self.distribution(Placed(table_placed.dims[:1])).axes[0]
        rows_axes = set(self.distribution(Placed(table_placed.dims[1:])).axes[0])
        clash = rows_axes & {axis for axes in self.distribution(ids_placed).axes for axis in axes}
        if clash:
            raise ExplicitProgramError(f"embedding lookup: mesh axes {sorted(clash)} split both the ids and the table's rows")
        local_vocab = table.shape[0]
        shard = jnp.int32(0)
        for axis in vocab_axes:  # the shard's index, first axis major
            shard = shard * self.sizes[axis] + lax.axis_index(axis)
        local_ids = ids - shard * local_vocab
        here = (local_ids >= 0) & (local_ids < local_vocab)
        rows = jnp.take(table, jnp.clip(local_ids, 0, local_vocab - 1), axis=0)
        rows = jnp.where(here[..., None], rows, jnp.zeros((), rows.dtype))
        source, destination = self.distribution(looked_up(table_placed, ids_placed)), tuple(self._axes(role, name) for name in names)
        return move(rows, source, destination, self.sizes, where=f"{self.partitioning.name}: embedding rows into {role.value} {names}", via_gather=True)

    def mean(self, x, x_placed):
        axes = self.distribution(x_placed).axes[-1]
        total = jnp.sum(x, axis=-1, keepdims=True)
        if axes:
            total = lax.psum(total, axes)
        return total / jnp.asarray(x.shape[-1] * math.prod(self.sizes[axis] for axis in axes), x.dtype)

    def step(self, function, model, tokens, cache, logits_names):
        """`function` on every chip's shard of the model, the tokens and the cache."""
        mesh_shape = self.sizes
        model_specs = jax.tree.map(lambda sharding: sharding.spec, param_shardings(model, self.partitioning, self.mesh))
        token_spec = resolve(self.partitioning, Role.ACTIVATION, TOKEN_NAMES, tokens.shape, mesh_shape, tensor="tokens")
        logits_shape = (tokens.shape[0], model.config.vocab) if len(logits_names) == 2 else (*tokens.shape, model.config.vocab)
        logits_spec = resolve(self.partitioning, Role.ACTIVATION, logits_names, logits_shape, mesh_shape, tensor="logits")
        if cache is None:
            run = jax.shard_map(
                lambda model, tokens: function(model, tokens, None),
                mesh=self.mesh, in_specs=(model_specs, token_spec), out_specs=(logits_spec, PartitionSpec()), check_vma=False,
            )  # fmt: skip
            return run(model, tokens)
        cache_specs = jax.tree.map(lambda sharding: sharding.spec, cache_shardings(cache, self.partitioning, self.mesh))
        run = jax.shard_map(
            function, mesh=self.mesh, in_specs=(model_specs, token_spec, cache_specs), out_specs=(logits_spec, cache_specs), check_vma=False
        )
        return run(model, tokens, cache)

