"""The layout types: how a model's logical axes map onto the mesh axes x, y, z.

A `Layout` says where the weights live, how they are laid out when a matmul uses them, and where the
activations of each block go (the FFN and the projections: the paper's 1D/2D weight-stationary and
weight-gathered strategies). An `AttentionLayout` says where attention and the KV cache go: over
heads, or over the batch along some mesh axes. A `Partitioning` joins the two for one model; it is
the table the resolver reads. All three are frozen values checked at construction.
"""

import dataclasses
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import jax

from layouts.errors import LayoutError
from zoo.config import ModelConfig
from zoo.logical_axes import (
    ATTENTION_BATCH,
    ATTENTION_HEAD_DIM,
    ATTENTION_HEADS,
    ATTENTION_KV_HEADS,
    BATCH,
    CACHE_BATCH,
    CACHE_HEAD_DIM,
    CACHE_KV_HEADS,
    CACHE_LAYERS,
    CACHE_SEQ,
    HEAD_BATCH,
    HIDDEN_HEADS,
    HIDDEN_KV_HEADS,
    KV_HEADS,
    LAYERS,
    MATMUL_HEAD_DIM,
    NAMES_BY_ROLE,
    Role,
)

MESH_AXES: tuple[str, ...] = ("x", "y", "z")
# The kinds of collective a layout can imply, as the result rows name them (HLO hyphenates them).
COLLECTIVE_KINDS: tuple[str, ...] = ("all_gather", "reduce_scatter", "all_reduce", "all_to_all")
Phase = Literal["prefill", "decode", "any"]
Family = Literal["weight-stationary", "weight-gathered"]
Rules = Mapping[str, tuple[str, ...]]  # logical name -> the mesh axes it is split over, in order

# The names an FFN layout leaves to the attention layout (they depend on where attention runs) or
# derives from the model (K/V heads follow the query heads unless there is a single, multiquery head)
# or from its own rules (the output head's batch).
_ATTENTION_OWNED = {
    Role.ACTIVATION: {ATTENTION_BATCH, ATTENTION_HEADS, ATTENTION_KV_HEADS, HIDDEN_KV_HEADS, HEAD_BATCH, ATTENTION_HEAD_DIM, MATMUL_HEAD_DIM},
    Role.WEIGHT: {KV_HEADS},
    Role.WEIGHT_USE: {KV_HEADS},
    Role.CACHE: set(NAMES_BY_ROLE[Role.CACHE]),
}


def _check_axes(owner: str, where: str, axes: tuple[str, ...]) -> None:
    unknown = [axis for axis in axes if axis not in MESH_AXES]
    if unknown:
        raise LayoutError(f"{owner}: {where} names mesh axis {unknown[0]!r}; mesh axes are {', '.join(MESH_AXES)}")
    if len(set(axes)) != len(axes):
        raise LayoutError(f"{owner}: {where} uses a mesh axis twice: {axes}")


@functools.cache
def _declared_tensors(config: ModelConfig) -> tuple[tuple[str, Role, tuple[str | None, ...]], ...]:
    """Every stored tensor of the model with the logical names it declares (weights as stored and
    as matmuls use them, and the KV cache), so a layout that maps two dimensions of one tensor to
    the same mesh axis is refused when it is joined to the model, by every command alike."""
    from zoo.kv_cache import CACHE_NAMES
    from zoo.transformer import build_abstract
    from zoo.weights import is_weight

    tensors = [("cache.k", Role.CACHE, CACHE_NAMES)]
    for key_path, weight in jax.tree_util.tree_flatten_with_path(build_abstract(config), is_leaf=is_weight)[0]:
        path = jax.tree_util.keystr(key_path, simple=True, separator=".")
        tensors.append((path, Role.WEIGHT, tuple(weight.names)))
        # A matmul uses one layer's slice of a stacked weight: the layers axis is gone by then.
        tensors.append((path, Role.WEIGHT_USE, tuple(name for name in weight.names if name != LAYERS)))
    return tuple(tensors)


def _frozen_rules(rules: Mapping[Role, Rules]) -> Mapping[Role, Rules]:
    return MappingProxyType({Role(role): MappingProxyType({name: tuple(axes) for name, axes in table.items()}) for role, table in rules.items()})


@dataclasses.dataclass(frozen=True)
class Layout:
    """An FFN / weights layout. The docstring of each built-in gives its algorithm in subscript
    notation; the collectives it implies follow from its rules (`layouts.cost.collective_kinds`)."""

    name: str
    summary: str
    algorithm: str  # subscript notation, e.g. "W_in E_x F_yz; BLE_xyz -allgather(yz)-> BLE_x -> ..."
    rules: Mapping[Role, Rules]  # roles WEIGHT, WEIGHT_USE, ACTIVATION
    phase: Phase = "any"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", _frozen_rules(self.rules))
        for role in (Role.WEIGHT, Role.WEIGHT_USE, Role.ACTIVATION):
            table = self.rules.get(role)
            if table is None:
                raise LayoutError(f"layout {self.name!r}: no rules for role {role.value!r}")
            required = NAMES_BY_ROLE[role] - _ATTENTION_OWNED.get(role, set())
            missing = sorted(required - table.keys())
            if missing:
                raise LayoutError(f"layout {self.name!r}: role {role.value!r} has no rule for {', '.join(missing)}")
            unknown = sorted(table.keys() - NAMES_BY_ROLE[role])
            if unknown:
                raise LayoutError(
                    f"layout {self.name!r}: role {role.value!r} names unknown logical axis {unknown[0]!r}; "
                    f"valid: {', '.join(sorted(NAMES_BY_ROLE[role]))}"
                )
            for name, axes in table.items():
                _check_axes(f"layout {self.name!r}", f"{role.value}.{name}", axes)
        if self.phase not in ("prefill", "decode", "any"):
            raise LayoutError(f"layout {self.name!r}: phase must be prefill, decode or any, got {self.phase!r}")

    def __hash__(self) -> int:
        return self._hash

    @functools.cached_property
    def _hash(self) -> int:
        # The rules are read-only mappings, which do not hash: hash what they hold, once.
        rules = tuple((role.value, tuple(sorted(table.items()))) for role, table in sorted(self.rules.items(), key=lambda item: item[0].value))
        return hash((self.name, self.summary, self.algorithm, self.phase, rules))

    def axes(self, role: Role, name: str) -> tuple[str, ...]:
        return self.rules[role][name]

    @functools.cached_property
    def gathered_axes(self) -> tuple[str, ...]:
        """Mesh axes a weight is all-gathered over before use (empty for weight-stationary)."""
        stored = set(self.axes(Role.WEIGHT, "embed")) | set(self.axes(Role.WEIGHT, "mlp"))
        used = set(self.axes(Role.WEIGHT_USE, "embed")) | set(self.axes(Role.WEIGHT_USE, "mlp"))
        return tuple(axis for axis in MESH_AXES if axis in stored - used)

    @property
    def family(self) -> Family:
        """Which of the paper's formulas apply: derived from the rules, so a layout read from a file
        is costed and meshed exactly like the identical built-in."""
        return "weight-gathered" if self.gathered_axes else "weight-stationary"


@dataclasses.dataclass(frozen=True)
class AttentionLayout:
    """Where attention and the KV cache run: over heads (`batch_axes` empty: a multiquery K/V head is
    replicated on every chip, the paper's baseline) or over the batch along `batch_axes` (all-to-all
    from head sharding in and back out; the KV cache per chip shrinks by the product of their sizes).
    Query heads inside attention keep whatever head axes the FFN layout gave them, less the batch axes."""

    name: str
    summary: str
    batch_axes: tuple[str, ...]
    phase: Phase = "any"

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_axes", tuple(self.batch_axes))
        _check_axes(f"attention layout {self.name!r}", "batch_axes", self.batch_axes)


@dataclasses.dataclass(frozen=True)
class Partitioning:
    """An FFN layout and an attention layout joined for one model: every logical name the model
    uses, under every role, gets its mesh axes here."""

    ffn: Layout
    attention: AttentionLayout
    config: ModelConfig
    # Head axes the K/V heads are not split over, where there are fewer K/V heads than query-head
    # splits (grouped-query attention on many chips: `layouts.fit.fit_heads`); they are replicated there.
    kv_unsplit: tuple[str, ...] = ()
    rules: Mapping[Role, Rules] = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        head_axes = self.ffn.axes(Role.ACTIVATION, HIDDEN_HEADS)
        ffn_batch = self.ffn.axes(Role.ACTIVATION, BATCH)
        # Batch axes the FFN layout already splits the batch over stay; the attention layout adds the rest.
        attention_batch = ffn_batch + tuple(axis for axis in self.attention.batch_axes if axis not in ffn_batch)
        attention_heads = tuple(axis for axis in head_axes if axis not in attention_batch)
        # A single K/V head cannot be split: it is replicated (the multiquery baseline) unless the
        # attention layout moves attention to batch sharding. Several K/V heads split like queries,
        # less the axes in `kv_unsplit`.
        multiquery = self.config.n_kv_heads == 1
        kv = lambda axes: () if multiquery else tuple(axis for axis in axes if axis not in self.kv_unsplit)  # noqa: E731
        kv_attention = kv(attention_heads)
        kv_hidden = kv(head_axes)
        kv_weight = kv(self.ffn.axes(Role.WEIGHT, "heads"))
        kv_weight_use = kv(self.ffn.axes(Role.WEIGHT_USE, "heads"))
        rules = {role: dict(table) for role, table in self.ffn.rules.items()}
        rules[Role.WEIGHT][KV_HEADS] = kv_weight
        rules[Role.WEIGHT_USE][KV_HEADS] = kv_weight_use
        rules[Role.ACTIVATION].update(
            {
                ATTENTION_BATCH: attention_batch,
                ATTENTION_HEADS: attention_heads,
                ATTENTION_KV_HEADS: kv_attention,
                HIDDEN_KV_HEADS: kv_hidden,
                # The output head contracts the table where it is stored (a weight-gathered layout
                # would otherwise gather the whole [V, E] table every step): its input's batch
                # leaves the axes the stored table splits.
                HEAD_BATCH: tuple(axis for axis in ffn_batch if axis not in self.ffn.axes(Role.WEIGHT, "vocab") + self.ffn.axes(Role.WEIGHT, "embed")),
                # Attention contracts the head dimension whole; W_o takes it as it splits it.
                ATTENTION_HEAD_DIM: (),
                MATMUL_HEAD_DIM: self.ffn.axes(Role.WEIGHT_USE, "head_dim"),
            }
        )
        rules[Role.CACHE] = {
            CACHE_LAYERS: (),
            CACHE_BATCH: attention_batch,
            CACHE_SEQ: (),
            CACHE_KV_HEADS: kv_attention,
            CACHE_HEAD_DIM: (),
        }
        object.__setattr__(self, "rules", _frozen_rules(rules))
        for tensor, role, names in _declared_tensors(self.config):
            self.check_distinct_axes(role, names, tensor)

    @property
    def name(self) -> str:
        return f"{self.ffn.name}+{self.attention.name}"

    def check_distinct_axes(self, role: Role, names, tensor: str) -> None:
        """A mesh axis splits at most one dimension of a tensor; raises LayoutError naming both."""
        used: dict[str, str] = {}
        for name in names:
            for axis in self.axes(role, name):
                if axis in used:
                    raise LayoutError(f"{tensor}: mesh axis {axis!r} assigned to both {used[axis]!r} and {name!r} under layout {self.name!r}")
                used[axis] = name

    def axes(self, role: Role, name: str | None) -> tuple[str, ...]:
        if name is None:
            return ()
        try:
            return self.rules[role][name]
        except KeyError:
            raise LayoutError(f"layout {self.name!r} has no rule for {role.value} axis {name!r}") from None
