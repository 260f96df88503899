"""The analytical cost model's terms, per chip and per layer (docs/paper-model.md §3-4).

The communication is derived from a partitioning's rules, not from its name, so a user-written layout
is costed like a built-in one. One layer's dataflow follows the zoo's block (zoo/block.py) through the
places where it declares activation names: the residual stream, a projection's input, the query and
K/V heads after projection, attention, the FFN hidden. Between two places a tensor moves from one
placement to the next, and the difference names the collectives (local slices, all-reduce, all-to-all or all-gather), as `layouts.transitions` derives them (the
explicit partitioner runs the very same steps). Bytes per chip follow the paper's convention: a
reduce-scatter counts its input, an all-gather its output, an all-reduce twice its buffer, an
all-to-all its buffer once; `layouts.interconnect` turns them into seconds on the slice's links, and
`paper_collective_seconds` as the paper's formulas do.

Weights stored one way and used another (weight-gathered layouts) are all-gathered before use.
The (K−1)/K factor of every collective is taken as 1, as in the paper. Terms are built once per
partitioning as a `PhaseTemplate` with the workload sizes B (batch), L (tokens per sequence in this
pass) and S (cache length attended over) left open, then evaluated per mesh and workload in
microseconds, which is what lets a sweep of thousands of cells run in well under a second.

Left out, because they are small beside the matmuls at the paper's sizes: biases and norms in the
FLOPs and HBM traffic, the embedding lookup, the nonlinearity and softmax, and activations' HBM
traffic. The output head is costed for the positions that need logits (the last one in prefill).
"""

import dataclasses
import functools
import math
from collections.abc import Mapping

import jax

from layouts.workload import Workload
from layouts.divisibility import check_divides
from layouts.hardware import Chip
from layouts.interconnect import Placement, Ring, phase_hops, phase_seconds, place
from layouts.layout import COLLECTIVE_KINDS, MESH_AXES, Partitioning
from layouts.transitions import Distribution, canonical, derive, explicit_problem, looped_gather, looped_reduce_scatter, mixed_dimensions, waypoint
from zoo.config import ModelConfig, dtype_bytes
from zoo.quantization import is_matmul_weight
from zoo.transformer import build_abstract
from zoo.weights import is_weight
from zoo.logical_axes import (
    ACTIVATION_HEAD_DIM,
    ATTENTION_BATCH,
    ATTENTION_HEAD_DIM,
    ATTENTION_HEADS,
    ATTENTION_KV_HEADS,
    BATCH,
    CACHE_BATCH,
    CACHE_KV_HEADS,
    EMBED,
    FUSED,
    HEAD_BATCH,
    HEAD_DIM,
    HEADS,
    HIDDEN_HEADS,
    HIDDEN_KV_HEADS,
    HIDDEN_MLP,
    KV_HEADS,
    LAYERS,
    LOGITS_VOCAB,
    MATMUL_EMBED,
    MLP,
    RESIDUAL_EMBED,
    SEQ,
    VOCAB,
    Role,
)

Axes = tuple[str, ...]
ACTIVATION_BYTES = 2  # activations and matmuls stay bf16 whatever the weights are stored in (§3.6)


@dataclasses.dataclass(frozen=True)
class Term:
    """A per-chip count: `count` × B^batch × L^seq × S^cache ÷ the product of the mesh sizes of `split`."""

    count: int
    split: Axes = ()
    batch: bool = False
    seq: bool = False
    cache: bool = False

    def value(self, ways: Mapping[Axes, int], B: int, L: int, S: int) -> float:
        value = self.count * (B if self.batch else 1) * (L if self.seq else 1) * (S if self.cache else 1)
        return value / ways[self.split]


@dataclasses.dataclass(frozen=True)
class Collective:
    kind: str  # one of COLLECTIVE_KINDS
    axes: Axes  # the mesh axes it runs over
    elements: Term  # per-chip elements it counts (see the module docstring)
    weight: bool  # True: weight elements (the weight dtype); False: bf16 activations
    where: str  # which tensor moves, for the breakdown
    # A reduce-scatter of projections' partial sums onto a dimension their weights give: with
    # collective matmul on (layouts.collective_matmul) it runs as a loop overlapped with these FLOPs.
    looped_with: tuple[Term, ...] = ()
    # Independent collectives of one kind over the same axes with the same label run as one (the
    # parallel block's fused projections, which XLA's collective combiners merge): one latency.
    combined: str = ""


@dataclasses.dataclass(frozen=True)
class DimensionCheck:
    """A dimension a layout splits, to be checked against the mesh: size None means the batch."""

    tensor: str
    name: str
    size: int | None
    axes: Axes  # in the layout's order, for the message
    split: Axes = ()  # the same axes in canonical order, to look up their ways


@dataclasses.dataclass(frozen=True)
class PhaseTemplate:
    """One phase's per-chip terms for one partitioning, the workload left open. `layer_*` terms are
    per layer; `head_*` terms are the output head, paid once per pass."""

    layer_flops: tuple[Term, ...]
    attention_flops: Term
    layer_weight_bytes: tuple[Term, ...]  # elements of weights read from HBM per layer
    kv_elements: Term  # KV-cache elements read (decode) or written (prefill) per layer
    kv_capacity: Term  # KV-cache elements held per layer for S cached positions
    layer_collectives: tuple[Collective, ...]
    head_flops: Term
    head_weight_elements: Term
    head_collectives: tuple[Collective, ...]
    stored_weights: tuple[tuple[Term, bool], ...]  # every weight's stored elements; True if a matrix
    # One layer's largest live tensors (per chip, see `layouts.cost.estimator.phase_memory`): the
    # residual stream; per stage of the block (`_working_sets`), what it holds at once, as (elements,
    # bytes each); the weights a weight-gathered layout gathers.
    residual_elements: Term
    working_sets: tuple[tuple[tuple[Term, int], ...], ...]
    gathered_weight_elements: tuple[Term, ...]
    lookup_elements: tuple[Term, ...]  # what the embedding lookup holds for L tokens (`_lookup`)
    checks: tuple[DimensionCheck, ...]


@dataclasses.dataclass(frozen=True)
class _Tensor:
    """A tensor in the dataflow: per dimension its size (an int, or "B"/"L" for the workload's) and
    the mesh axes it is split over, and the axes it is still a partial sum over."""

    sizes: tuple[int | str, ...]
    axes: tuple[Axes, ...]
    partial: Axes = ()
    # A projection's output: its FLOPs, and the dimensions its weight gives (what a collective
    # matmul can scatter); a sum of projections has all of their FLOPs.
    flops: tuple[Term, ...] = ()
    weight_dims: frozenset[int] = frozenset()
    # A projections' input whose gather to here a collective matmul may run inside the first
    # projection: the position of that all-gather in the flow's collectives, and its dimension.
    gather: tuple[int, int] | None = None
    # A projection's output whose input gather a collective matmul may run as its loop, if the
    # output is not reduce-scattered in one: (position of that all-gather, the projection's FLOPs).
    gather_candidates: tuple[tuple[int, Term], ...] = ()

    def term(self) -> Term:
        count = math.prod(size for size in self.sizes if isinstance(size, int))
        split = tuple(axis for axes in self.axes for axis in axes)
        return Term(count, canonical(split), batch="B" in self.sizes, seq="L" in self.sizes)

    def placed(self, axes: tuple[Axes, ...], partial: Axes = ()) -> "_Tensor":
        return _Tensor(self.sizes, axes, partial)


def _move(tensor: _Tensor, destination: tuple[Axes, ...], where: str, reorderable: frozenset[int] = frozenset()) -> list[Collective]:
    """The collectives that take `tensor` to the placement `destination` (no partial sums), as
    `layouts.transitions` derives them; each counts its bytes by the convention above from the
    placement it runs on (before) or produces (after, for an all-gather)."""
    collectives = []
    for step in derive(Distribution(tensor.axes, tensor.partial), destination, reorderable):
        if step.kind == "slice":
            continue
        placed = step.after if step.kind == "all_gather" else step.before
        term = tensor.placed(placed.axes).term()
        if step.kind == "all_reduce":
            term = dataclasses.replace(term, count=2 * term.count)
        collectives.append(Collective(step.kind, step.axes, term, False, where))
    return collectives


def _projection(x: _Tensor, contracted: int, weight_sizes, weight_axes, where: str):
    """x's dimension `contracted` times a weight [contracted, *outputs] used as `weight_axes`:
    the collectives that bring x to the weight's split of the contracted dimension, the FLOPs, and
    the output (x's other dimensions, then the weight's), a partial sum over the contracted axes."""
    collectives = []
    wanted = tuple(weight_axes[0] if index == contracted else axes for index, axes in enumerate(x.axes))
    if wanted != x.axes:
        collectives += _move(x, wanted, where)
        x = x.placed(wanted)
    kept = [index for index in range(len(x.sizes)) if index != contracted]
    out = _Tensor(
        tuple(x.sizes[i] for i in kept) + tuple(weight_sizes[1:]),
        tuple(x.axes[i] for i in kept) + tuple(weight_axes[1:]),
        partial=weight_axes[0],
    )
    every_axis = [axis for axes in x.axes + tuple(weight_axes[1:]) for axis in axes]
    flops = dataclasses.replace(out.term(), count=2 * out.term().count * weight_sizes[0], split=canonical(every_axis))
    return collectives, flops, out


@functools.cache
def _weight_table(config: ModelConfig) -> tuple[tuple[str, tuple[int, ...], tuple[str | None, ...], bool, bool], ...]:
    """Every weight of the zoo's model as (path, shape, logical names, per layer, is a matmul
    weight), read from the model as the zoo builds it (abstractly): a stacked weight is given per
    layer, its `layers` axis taken off and its path relative to the block ("attention.w_q")."""
    table = []
    for key_path, weight in jax.tree_util.tree_flatten_with_path(build_abstract(config), is_leaf=is_weight)[0]:
        keys = tuple(jax.tree_util.keystr((key,), simple=True) for key in key_path)
        shape, names = tuple(weight.value.shape), tuple(weight.names)
        per_layer = bool(names) and names[0] == LAYERS
        if per_layer:
            shape, names = shape[1:], names[1:]
        table.append((".".join(keys[1:] if per_layer else keys), shape, names, per_layer, is_matmul_weight(keys)))
    return tuple(table)


def _weight_term(partitioning: Partitioning, role: Role, shape, names, layers: int = 1) -> Term:
    axes = [axis for name in names for axis in partitioning.axes(role, name)]
    return Term(math.prod(shape) * layers, canonical(axes))


class _Dataflow:
    """The placements a pass moves its tensors through, with the collectives and the matmul FLOPs
    that moving and multiplying them cost, under one partitioning."""

    def __init__(self, partitioning: Partitioning) -> None:
        self.partitioning = partitioning
        self.collectives: list[Collective] = []
        self.flops: list[Term] = []
        self.consumed_gathers: set[int] = set()  # gathered inputs a projection has already taken
        self.projected: list[Term] = []  # the output projections' results, attention's then the MLP's
        self.projected_hidden = Term(0)  # the FFN input projection's result, before it is placed

    def act(self, name: str) -> Axes:
        return self.partitioning.axes(Role.ACTIVATION, name)

    def use(self, *names: str) -> tuple[Axes, ...]:
        return tuple(self.partitioning.axes(Role.WEIGHT_USE, name) for name in names)

    def settle(self, tensor: _Tensor, destination: tuple[Axes, ...], where: str, heads: int | None = None, into_contraction: bool = False) -> _Tensor:
        """`tensor` moved to `destination`; dimension `heads`, if given, holds attention heads,
        which may be relabelled (`layouts.transitions.kept_axes`). `into_contraction`: the result
        feeds projections only, so a collective matmul may run the move's gather in the first."""
        moved = _move(tensor, destination, where, frozenset() if heads is None else frozenset({heads}))
        reduce_scattered_in_loop = False
        if into_contraction:
            gather = looped_gather(Distribution(tensor.axes, tensor.partial), destination)
            if gather is not None:
                self.collectives.extend(moved)
                return dataclasses.replace(tensor.placed(destination), gather=(len(self.collectives) - 1, gather[0]))
        # The explicit partitioner's rule (layouts.explicit): one reduce-scatter onto one dimension
        # the weight gives runs as a collective matmul.
        scatter = looped_reduce_scatter(Distribution(tensor.axes, tensor.partial), destination) if tensor.flops else None
        if scatter is not None and scatter[0] in tensor.weight_dims:
            moved = [dataclasses.replace(collective, looped_with=tensor.flops) for collective in moved]
            reduce_scattered_in_loop = True
        if not reduce_scattered_in_loop:  # the gathers into the projections run as their loops
            for position, flops in tensor.gather_candidates:
                self.collectives[position] = dataclasses.replace(self.collectives[position], looped_with=(flops,))
        self.collectives.extend(moved)
        return tensor.placed(destination)

    def project(self, x: _Tensor, contracted: int, sizes, axes, where: str) -> _Tensor:
        """x times a weight (see `_projection`). As the explicit partitioner does with collective
        matmul (layouts.explicit), the first projection of a gathered input (the gather to the
        weight's split here, or the one that made x) may run that gather as its loop: `settle`
        decides, when the output is placed and is not reduce-scattered in a loop."""
        moved, cost, out = _projection(x, contracted, sizes, axes, where)
        candidates = ()
        wanted = tuple(axes[0] if index == contracted else dims for index, dims in enumerate(x.axes))
        gather = looped_gather(Distribution(x.axes, x.partial), wanted) if len(moved) == 1 else None
        if gather is not None and gather[0] == contracted:
            candidates = ((len(self.collectives), cost),)
        elif x.gather is not None and x.gather[1] == contracted and x.gather[0] not in self.consumed_gathers and wanted == x.axes:
            candidates = ((x.gather[0], cost),)
        if x.gather is not None:
            self.consumed_gathers.add(x.gather[0])  # later projections find it gathered
        self.collectives.extend(moved)
        self.flops.append(cost)
        kept = len(x.sizes) - 1
        return dataclasses.replace(out, flops=(cost,), weight_dims=frozenset(range(kept, len(out.sizes))), gather_candidates=candidates)


def _attention(flow: _Dataflow, h: _Tensor, config: ModelConfig) -> _Tensor:
    """Queries and fused K/V projected, moved to where attention runs and back, projected out."""
    E, H, K, Q = config.d_model, config.n_heads, config.n_kv_heads, config.d_head
    act, use = flow.act, flow.use
    q = flow.project(h, 2, (E, H, Q), use(EMBED, HEADS, HEAD_DIM), "q projection")
    q = flow.settle(q, (act(BATCH), act(SEQ), act(HIDDEN_HEADS), act(ACTIVATION_HEAD_DIM)), "q projection")
    kv = flow.project(h, 2, (E, 2, K, Q), use(EMBED, FUSED, KV_HEADS, HEAD_DIM), "kv projection")
    kv = flow.settle(kv, (act(BATCH), act(SEQ), (), act(HIDDEN_KV_HEADS), act(ACTIVATION_HEAD_DIM)), "kv projection")
    inside = (act(ATTENTION_BATCH), act(SEQ), act(ATTENTION_HEADS), act(ATTENTION_HEAD_DIM))
    flow.settle(q, inside, "attention in", heads=2)
    flow.settle(kv, (act(ATTENTION_BATCH), act(SEQ), (), act(ATTENTION_KV_HEADS), act(ATTENTION_HEAD_DIM)), "attention in", heads=3)
    out = flow.settle(q.placed(inside), (act(BATCH), act(SEQ), act(HIDDEN_HEADS), act(ACTIVATION_HEAD_DIM)), "attention out", heads=2)
    out = _Tensor(out.sizes[:2] + (H * Q,), out.axes[:2] + (out.axes[2] + out.axes[3],))
    return flow.project(out, 2, (H * Q, E), (use(HEADS)[0] + use(HEAD_DIM)[0], use(EMBED)[0]), "o projection")


def _mlp(flow: _Dataflow, h: _Tensor, config: ModelConfig) -> _Tensor:
    """The fused input projection, the hidden placed for the nonlinearity, the output projection."""
    E, F, G = config.d_model, config.d_ff, config.mlp_matrices - 1
    hidden = flow.project(h, 2, (E, G * F), (flow.use(EMBED)[0], flow.use(FUSED)[0] + flow.use(MLP)[0]), "ffn in")
    flow.projected_hidden = hidden.term()
    hidden = flow.settle(hidden, (flow.act(BATCH), flow.act(SEQ), flow.act(HIDDEN_MLP)), "ffn hidden")
    return flow.project(_Tensor(("B", "L", F), hidden.axes), 2, (F, E), flow.use(MLP, EMBED), "ffn out")


def _parallel_layer(flow: _Dataflow, residual: _Tensor, matmul_input: tuple[Axes, ...], config: ModelConfig) -> None:
    """Paper §3.4: one input placement for attention and the MLP, their partial sums added and
    reduced once into the residual."""
    h = flow.settle(residual, matmul_input, "block in", into_contraction=True)
    start = len(flow.collectives)
    from_attention, from_mlp = _attention(flow, h, config), _mlp(flow, h, config)
    # W_Q and W_KV run fused with the FFN's input projection and W_O with its output projection
    # (§3.4): the moves of their results, and of their inputs, are one collective each.
    for label, wheres in (("input projections", {"q projection", "kv projection", "ffn hidden"}), ("output projections", {"o projection", "ffn out"})):
        flow.collectives[start:] = [dataclasses.replace(c, combined=label) if c.where in wheres else c for c in flow.collectives[start:]]
    flow.projected += [from_attention.term(), from_mlp.term()]
    summed = dataclasses.replace(
        from_mlp.placed(from_mlp.axes, canonical(from_attention.partial + from_mlp.partial)),
        flops=from_attention.flops + from_mlp.flops,
        weight_dims=from_attention.weight_dims & from_mlp.weight_dims,
        gather_candidates=from_attention.gather_candidates + from_mlp.gather_candidates,
    )
    flow.settle(summed, residual.axes, "block out")


def _serial_layer(flow: _Dataflow, residual: _Tensor, matmul_input: tuple[Axes, ...], config: ModelConfig) -> None:
    """Attention, then the MLP, each from and back to the residual stream."""
    from_attention = _attention(flow, flow.settle(residual, matmul_input, "attention in", into_contraction=True), config)
    flow.settle(from_attention, residual.axes, "attention out")
    from_mlp = _mlp(flow, flow.settle(residual, matmul_input, "ffn in", into_contraction=True), config)
    flow.settle(from_mlp, residual.axes, "ffn out")
    flow.projected += [from_attention.term(), from_mlp.term()]


_LAYERS = {"parallel": _parallel_layer, "serial": _serial_layer}


def _working_sets(block: str, matmul_input: Term, queries: Term, scores: Term, projected_hidden: Term, hidden: Term, projected: list[Term]) -> tuple[tuple[tuple[Term, int], ...], ...]:
    """What one layer holds at once, stage by stage, as (elements, bytes each):
    - attention: the projections' gathered input (bf16), the queries and the scores over the
      cache (fp32);
    - the FFN input projection: the gathered input, that projection's result (bf16, a partial
      sum over what the contraction splits, before the move that places it) and the placed hidden
      (fp32) it becomes, which the compiled programs hold together;
    - the end: the gathered input and the output projections' results before their reduction into
      the residual stream (bf16).
    The parallel block holds attention's result from its end through the MLP until the two are
    added. Summing every tensor instead overstates a weight-gathered layout's prefill by a quarter
    (palm-540b-64h, wg-x, batch 512 in chunks of 256: 25.3 GiB against 22.6 compiled); leaving out
    the FFN projection's result understates 2D weight-stationary's, whose partial sum over x
    [B, L, 2F/16] is the largest tensor of its layer (4.5 GiB at chunks of 512)."""
    bf16 = ACTIVATION_BYTES
    from_attention, from_mlp = projected
    held = ((from_attention, bf16),) if block == "parallel" else ()
    return (
        ((matmul_input, bf16), (queries, 4), (scores, 4)),
        ((matmul_input, bf16), (projected_hidden, bf16), (hidden, 4), *held),
        ((matmul_input, bf16), (from_mlp, bf16), *held),
    )


def _weight_gathers(partitioning: Partitioning, shape, names, where: str) -> tuple[Term, Term, Collective | None]:
    """(stored, used) elements of a weight and the all-gather over the axes it is stored split on
    and used whole on (weight-gathered layouts), if any."""
    stored = _weight_term(partitioning, Role.WEIGHT, shape, names)
    used = _weight_term(partitioning, Role.WEIGHT_USE, shape, names)
    dropped = canonical(set(stored.split) - set(used.split))
    return stored, used, Collective("all_gather", dropped, used, True, where) if dropped else None


def _output_head(partitioning: Partitioning, residual_axes: tuple[Axes, ...], phase: str) -> tuple[_Dataflow, Term]:
    """The residual's positions that need logits (the last one in prefill) times the (tied)
    embedding, which every layout uses where it is stored (`zoo.transformer.Transformer.logits`):
    its dataflow, and the embedding's elements per chip."""
    config, flow = partitioning.config, _Dataflow(partitioning)
    act = flow.act
    head_input = _Tensor(("B", 1 if phase == "prefill" else "L", config.d_model), (act(HEAD_BATCH), act(SEQ), act(MATMUL_EMBED)))
    head_input = flow.settle(_Tensor(head_input.sizes, residual_axes), head_input.axes, "head in")
    stored = tuple(partitioning.axes(Role.WEIGHT, name) for name in (EMBED, VOCAB))
    logits = flow.project(head_input, 2, (config.d_model, config.vocab), stored, "head")
    flow.settle(logits, (act(BATCH), act(SEQ), act(LOGITS_VOCAB)), "logits")
    return flow, _weight_term(partitioning, Role.WEIGHT, (config.vocab, config.d_model), (VOCAB, EMBED))


def _lookup(partitioning: Partitioning) -> tuple[Term, ...]:
    """Per-chip elements the embedding lookup holds (`layouts.explicit.ExplicitConstrain.lookup`):
    the rows each chip looks up in its shard of the stored table ([B, L, E], batch as the head's
    input, E as the table splits it), and, when their move into the residual stream needs a
    permutation among chips, the rows at the move's waypoint (`layouts.transitions.waypoint`) or,
    where it has none, whole over the dimensions the move gathers, twice (the reduction's input
    and its result, as the compiled program holds them)."""
    config = partitioning.config
    act = lambda name: partitioning.axes(Role.ACTIVATION, name)  # noqa: E731
    sizes = ("B", "L", config.d_model)
    rows = Distribution((act(HEAD_BATCH), act(SEQ), partitioning.axes(Role.WEIGHT, EMBED)), canonical(partitioning.axes(Role.WEIGHT, VOCAB)))
    residual = (act(BATCH), act(SEQ), act(RESIDUAL_EMBED))
    looked_up = _Tensor(sizes, rows.axes).term()
    if explicit_problem(rows, residual) is None:
        return (looked_up,)
    stop = waypoint(rows, residual)
    if stop is not None:
        return looked_up, _Tensor(sizes, stop).term()
    mixed = mixed_dimensions(rows, residual)
    whole = _Tensor(sizes, tuple(() if index in mixed else axes for index, axes in enumerate(rows.axes))).term()
    return looked_up, whole, whole


def _template(partitioning: Partitioning, phase: str) -> PhaseTemplate:
    config = partitioning.config
    F, H, K, Q = config.d_ff, config.n_heads, config.n_kv_heads, config.d_head
    G = config.mlp_matrices - 1
    layer = _Dataflow(partitioning)
    act = layer.act
    residual = _Tensor(("B", "L", config.d_model), (act(BATCH), act(SEQ), act(RESIDUAL_EMBED)))
    _LAYERS[config.block](layer, residual, (act(BATCH), act(SEQ), act(MATMUL_EMBED)), config)

    # Weights stored one way and used another are all-gathered before use, one layer at a time.
    weight_bytes, weight_gathers, gathered_extra = [], [], []
    for path, shape, names, per_layer, matrix in _weight_table(config):
        if per_layer and matrix:
            stored, used, gather = _weight_gathers(partitioning, shape, names, path)
            weight_bytes.append(used)
            if gather is not None:
                weight_gathers.append(gather)
                gathered_extra.append(used)
    head, head_used = _output_head(partitioning, residual.axes, phase)

    attention_split = canonical(act(ATTENTION_BATCH) + act(ATTENTION_HEADS))
    cache_split = canonical(partitioning.axes(Role.CACHE, CACHE_BATCH) + partitioning.axes(Role.CACHE, CACHE_KV_HEADS))
    # The fused hidden and the queries, as the FFN hidden is split (an approximation for the queries).
    hidden, queries = (_Tensor(("B", "L", size), (act(BATCH), act(SEQ), act(HIDDEN_MLP))) for size in (G * F, H * Q))

    # Weights split the same way add up to one term: the memory sum is then a handful of divisions.
    stored_counts: dict[tuple[Axes, bool], int] = {}
    for _, shape, names, per_layer, matrix in _weight_table(config):
        term = _weight_term(partitioning, Role.WEIGHT, shape, names, config.n_layers if per_layer else 1)
        stored_counts[term.split, matrix] = stored_counts.get((term.split, matrix), 0) + term.count
    stored_weights = tuple((Term(count, split), matrix) for (split, matrix), count in stored_counts.items())
    return PhaseTemplate(
        layer_flops=tuple(layer.flops),
        # QKᵀ and the weighted sum over V: 4·B·L·S·H·Q, split over attention's batch and head axes.
        attention_flops=Term(4 * H * Q, attention_split, batch=True, seq=True, cache=True),
        layer_weight_bytes=tuple(weight_bytes),
        kv_elements=Term(2 * K * Q, cache_split, batch=True, seq=phase == "prefill", cache=phase == "decode"),
        kv_capacity=Term(2 * K * Q, cache_split, batch=True, cache=True),
        layer_collectives=tuple(layer.collectives) + tuple(weight_gathers),
        head_flops=head.flops[0],
        head_weight_elements=head_used,
        head_collectives=tuple(head.collectives),
        stored_weights=stored_weights,
        residual_elements=residual.term(),
        working_sets=_working_sets(
            config.block,
            _Tensor(residual.sizes, (act(BATCH), act(SEQ), act(MATMUL_EMBED))).term(),
            queries.term(),
            Term(H, attention_split, batch=True, seq=True, cache=True),
            layer.projected_hidden,
            hidden.term(),
            layer.projected,
        ),
        gathered_weight_elements=tuple(gathered_extra),
        lookup_elements=_lookup(partitioning),
        checks=_checks(partitioning),
    )


def _checks(partitioning: Partitioning) -> tuple[DimensionCheck, ...]:
    config = partitioning.config
    checks = []
    for path, shape, names, _, _ in _weight_table(config):
        for role in (Role.WEIGHT, Role.WEIGHT_USE):
            for size, name in zip(shape, names):
                if name != LAYERS and partitioning.axes(role, name):
                    checks.append(DimensionCheck(path, name, size, partitioning.axes(role, name)))
    activations = (
        (BATCH, None),
        (RESIDUAL_EMBED, config.d_model),
        (MATMUL_EMBED, config.d_model),
        (HIDDEN_MLP, config.d_ff),
        (HIDDEN_HEADS, config.n_heads),
        (HIDDEN_KV_HEADS, config.n_kv_heads),
        (ACTIVATION_HEAD_DIM, config.d_head),
        (ATTENTION_BATCH, None),
        (ATTENTION_HEADS, config.n_heads),
        (ATTENTION_KV_HEADS, config.n_kv_heads),
        (LOGITS_VOCAB, config.vocab),
        (HEAD_BATCH, None),
    )
    checks += [DimensionCheck("activation", name, size, partitioning.axes(Role.ACTIVATION, name)) for name, size in activations]
    checks += [DimensionCheck("kv cache", name, size, partitioning.axes(Role.CACHE, name)) for name, size in ((CACHE_BATCH, None), (CACHE_KV_HEADS, config.n_kv_heads))]
    return tuple(dataclasses.replace(check, split=canonical(check.axes)) for check in checks if check.axes)


@functools.lru_cache(maxsize=4096)  # a sweep of thousands of cells needs only a few templates
def phase_template(partitioning: Partitioning, phase: str) -> PhaseTemplate:
    """The per-chip terms of `phase` under `partitioning`, the workload left open."""
    return _template(partitioning, phase)


def collective_kinds(partitioning: Partitioning, phase: str) -> tuple[str, ...]:
    """The kinds of collective one layer of `phase` runs under `partitioning`, in COLLECTIVE_KINDS
    order: what a layout implies, derived from its rules as the estimate costs it."""
    found = {collective.kind for collective in phase_template(partitioning, phase).layer_collectives}
    return tuple(kind for kind in COLLECTIVE_KINDS if kind in found)


@functools.cache
def axis_ways(mesh_shape: tuple[int, int, int]) -> dict[Axes, int]:
    """The number of ways each (canonically ordered) set of mesh axes splits a dimension."""
    size = dict(zip(MESH_AXES, mesh_shape))
    ways = {}
    for mask in range(8):
        axes = tuple(axis for bit, axis in enumerate(MESH_AXES) if mask >> bit & 1)
        ways[axes] = math.prod(size[axis] for axis in axes)
    return ways


def check_divisible(template: PhaseTemplate, mesh_shape: tuple[int, int, int], batch: int, layout_name: str) -> None:
    """Raise IndivisibleDimensionError for the first dimension the mesh axes do not divide."""
    ways = axis_ways(mesh_shape)
    for check in template.checks:
        size = batch if check.size is None else check.size
        if size % ways[check.split]:  # only a failing check builds its message
            check_divides(check.tensor, check.name, size, tuple(check.axes), dict(zip(MESH_AXES, mesh_shape)), layout_name)


def paper_collective_seconds(collective: Collective, bytes_per_chip: float, chip: Chip, mesh_shape: tuple[int, int, int]) -> float:
    """Seconds as the paper's formulas count them: the chip's whole interconnect (270 GB/s on v4)
    for every collective, whichever mesh axes it runs over; a collective over axes of size 1 is
    free. The roofline's communication time. All-to-all has no closed form in the paper: on a ring
    of k chips each chip's D bytes travel k/4 hops on average, so a torus all-to-all run one axis at
    a time counts D·k/4 per axis; behind a switch each chip sends its D bytes once."""
    size_of = dict(zip(MESH_AXES, mesh_shape))
    axes = [axis for axis in collective.axes if size_of[axis] > 1]
    if not axes:
        return 0.0
    if collective.kind == "all_to_all" and chip.torus_axes:
        return sum(bytes_per_chip * size_of[axis] / 4 for axis in axes) / chip.interconnect_bandwidth
    return bytes_per_chip / chip.interconnect_bandwidth


def kv_cache_bytes(config: ModelConfig, batch: int, length: int, dtype: str = "bfloat16") -> int:
    """The whole KV cache of `batch` sequences of `length` tokens, all layers, all chips."""
    return config.kv_bytes_per_token(dtype) * batch * length


@dataclasses.dataclass(frozen=True)
class CollectiveCost:
    """One collective of a stage on the slice: the physical rings it runs along (one phase each,
    `layouts.interconnect`), the bytes it counts and its seconds at the links' peak."""

    where: str
    kind: str
    axes: Axes  # logical mesh axes
    rings: tuple[Ring, ...]  # one phase each (`describe_rings` says which links)
    bytes: float
    seconds: float
    hops: int
    looped: bool  # run as a collective matmul's loop, hidden behind its matmuls up to their time


def describe_rings(rings: tuple[Ring, ...]) -> str:
    """The links a collective's phases use: "Y:4 ring, 2 links · Z:4 ring, 2 links"."""
    return " · ".join(ring.describe() for ring in rings if ring.size > 1)


@dataclasses.dataclass(frozen=True)
class StageTerms:
    """One stage's per-chip work: FLOPs, HBM bytes, interconnect bytes by kind; the seconds they
    take over the links each collective's phases use (`comm_seconds`) and, as the paper counts
    them, over all of a chip's links at once (`paper_comm_seconds`); how many collectives run and
    how many neighbour steps their phases take (each a latency)."""

    matmul_flops: float
    attention_flops: float
    weight_bytes: float
    kv_bytes: float
    comm_bytes: dict[str, float]
    comm_seconds: float
    paper_comm_seconds: float
    collectives: int
    hops: int
    breakdown: tuple[CollectiveCost, ...] = ()

    def compute_seconds(self, chip: Chip) -> float:
        return (self.matmul_flops + self.attention_flops) / chip.peak_flops

    def memory_seconds(self, chip: Chip) -> float:
        return (self.weight_bytes + self.kv_bytes) / chip.hbm_bandwidth


@dataclasses.dataclass(frozen=True)
class PassTerms:
    """One pass (a whole prefill, or one decode step): `layers` identical layers and the head."""

    layers: int
    layer: StageTerms
    head: StageTerms


def _stage(
    flops, attention, weights, kv, collectives, chip, placement: Placement, mesh_shape, ways, B, L, S, weight_bytes, activation_bytes,
    collective_matmul: str = "none", chunks: int = 1,
) -> StageTerms:
    """`chunks`: how many times the stage runs over parts of the L tokens (chunked prefill). FLOPs
    and bytes moved are linear in L, so only what each run pays whole repeats: the weights read
    from HBM and each activation collective's latency. Weights are gathered once (the program
    gathers a layer's weights before its chunk loop)."""
    comm_bytes = dict.fromkeys(COLLECTIVE_KINDS, 0.0)
    seconds, paper_seconds, count, hops = 0.0, 0.0, 0, 0
    breakdown, combined = [], set()
    for collective in collectives:
        moved = collective.elements.value(ways, B, L, S) * (weight_bytes if collective.weight else activation_bytes)
        rings = placement.along(collective.axes)
        time = phase_seconds(collective.kind, moved, rings)
        if not time:
            continue
        paper_time = paper_collective_seconds(collective, moved, chip, mesh_shape)
        runs = 1 if collective.weight else chunks
        comm_bytes[collective.kind] += moved
        looped = bool(collective.looped_with) and collective_matmul != "none"
        if looped:
            # A collective matmul: the ring's passes hide behind the partial matmuls, up to the
            # smaller of the two, and each pass is a one-hop collective: n − 1 of them round one
            # way, n/2 when the ring runs both ways at once.
            compute = sum(term.value(ways, B, L, S) for term in collective.looped_with) / chip.peak_flops
            seconds += time - min(time, compute)
            paper_seconds += paper_time - min(paper_time, compute)
            ring = ways[collective.axes]
            steps = (ring - 1 if collective_matmul == "unidirectional" else ring // 2) * runs
            count, hops = count + steps, hops + steps
        else:
            seconds += time
            paper_seconds += paper_time
            key = (collective.combined, collective.kind, collective.axes)
            steps = 0 if collective.combined and key in combined else phase_hops(rings) * runs
            combined.add(key)
            count, hops = count + (runs if steps else 0), hops + steps
        breakdown.append(CollectiveCost(collective.where, collective.kind, collective.axes, rings, moved, time, steps, looped))
    return StageTerms(
        matmul_flops=sum(term.value(ways, B, L, S) for term in flops),
        attention_flops=attention,
        weight_bytes=sum(term.value(ways, B, L, S) for term in weights) * weight_bytes * chunks,
        kv_bytes=kv,
        comm_bytes=comm_bytes,
        comm_seconds=seconds,
        paper_comm_seconds=paper_seconds,
        collectives=count,
        hops=hops,
        breakdown=tuple(breakdown),
    )


def pass_terms(
    template: PhaseTemplate,
    config: ModelConfig,
    chip: Chip,
    mesh_shape: tuple[int, int, int],
    *,
    placement: Placement | None = None,
    batch: int,
    length: int,
    cache_length: int,
    weight_bytes: int,
    kv_bytes: int,
    activation_bytes: int = ACTIVATION_BYTES,
    collective_matmul: str = "none",
    chunks: int = 1,
) -> PassTerms:
    """The per-chip terms of one pass: `length` new tokens per sequence attending over
    `cache_length` positions (prefill: both the prompt length; decode: 1 and the context), the
    layers taking them in `chunks` parts (chunked prefill; the head runs once), on the slice as
    `placement` lays the mesh (default: the chip's standard slice for the chip count)."""
    ways = axis_ways(mesh_shape)
    placement = placement if placement is not None else place(chip, mesh_shape)
    B, L, S = batch, length, cache_length
    layer = _stage(
        template.layer_flops,
        template.attention_flops.value(ways, B, L, S),
        template.layer_weight_bytes,
        template.kv_elements.value(ways, B, L, S) * kv_bytes,
        template.layer_collectives,
        chip, placement, mesh_shape, ways, B, L, S, weight_bytes, activation_bytes, collective_matmul, chunks,
    )
    head = _stage(
        (template.head_flops,), 0.0, (template.head_weight_elements,), 0.0, template.head_collectives,
        chip, placement, mesh_shape, ways, B, L, S, weight_bytes, activation_bytes, collective_matmul,
    )
    return PassTerms(config.n_layers, layer, head)


@dataclasses.dataclass(frozen=True)
class PhasePasses:
    """A phase of a workload on a chip and mesh: the pass a row reports (the whole prefill, or the
    decode step at the context length), the mean pass over the phase (decode steps attend over a
    context that grows by one per step; every term is linear in it, so the step at the mean context
    times the step count is the sum) and how many passes the phase takes."""

    chip: Chip
    mesh_shape: tuple[int, int, int]
    placement: Placement
    reported: PassTerms
    mean: PassTerms
    passes: int
    tokens: int  # tokens the phase processes (prefill) or generates (decode)


def check_phase(partitioning: Partitioning, mesh_shape: tuple[int, int, int], batch: int, phase: str) -> None:
    """Raise IndivisibleDimensionError if a dimension of the phase does not divide over the mesh:
    cheap, so compile and run call it for every phase before they compile any."""
    check_divisible(phase_template(partitioning, phase), mesh_shape, batch, partitioning.name)


def phase_passes(
    partitioning: Partitioning,
    chip: Chip,
    mesh_shape: tuple[int, int, int],
    workload: Workload,
    phase: str,
    collective_matmul: str = "none",
    slice_shape: tuple[int, ...] | None = None,
) -> PhasePasses:
    """Check the workload against the chip and the mesh, then cost one of its phases (its
    projections' reduce-scatters run as collective matmuls unless `collective_matmul` is "none")
    on a slice of `slice_shape` (default: the chip's standard one for the chip count)."""
    config = partitioning.config
    chip.check_chips(math.prod(mesh_shape))
    check_phase(partitioning, mesh_shape, workload.batch, phase)
    template = phase_template(partitioning, phase)
    placement = place(chip, mesh_shape, slice_shape)
    sizes = dict(
        placement=placement,
        batch=workload.batch,
        weight_bytes=1 if workload.weights == "int8" else dtype_bytes(config.dtype),
        kv_bytes=dtype_bytes(workload.kv_dtype),
        activation_bytes=dtype_bytes(config.dtype),
        collective_matmul=collective_matmul,
    )
    if phase == "prefill":
        reported = pass_terms(
            template, config, chip, mesh_shape, length=workload.input_len, cache_length=workload.input_len, chunks=workload.prefill_chunks, **sizes
        )
        return PhasePasses(chip, mesh_shape, placement, reported, reported, 1, workload.tokens(phase))
    context, steps = workload.context_len, workload.gen_tokens
    reported = pass_terms(template, config, chip, mesh_shape, length=1, cache_length=context, **sizes)
    # Only attention and the KV-cache read depend on the context: scale them to the mean step.
    grown = (context + (steps - 1) / 2) / context
    layer = dataclasses.replace(reported.layer, attention_flops=reported.layer.attention_flops * grown, kv_bytes=reported.layer.kv_bytes * grown)
    mean = dataclasses.replace(reported, layer=layer)
    return PhasePasses(chip, mesh_shape, placement, reported, mean, steps, workload.tokens(phase))
