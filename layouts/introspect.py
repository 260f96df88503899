"""What a layout does to one model on one mesh: every tensor's logical names, PartitionSpec,
per-chip shape and bytes (what `zoo layouts NAME --model M` prints)."""

import dataclasses

from layouts.layout import Partitioning
from layouts.mesh import MeshShape
from layouts.sharding import Placement, cache_placements, weight_placements
from zoo.kv_cache import abstract_cache
from zoo.transformer import build_abstract


@dataclasses.dataclass(frozen=True)
class LayoutReport:
    partitioning: Partitioning
    mesh_shape: MeshShape
    weights: list[Placement]
    cache: list[Placement]

    @property
    def weight_bytes_per_chip(self) -> int:
        return sum(p.per_chip_bytes for p in self.weights)

    @property
    def cache_bytes_per_chip(self) -> int:
        return sum(p.per_chip_bytes for p in self.cache)


def describe(partitioning: Partitioning, mesh_shape: MeshShape, *, batch: int, context_len: int, model=None, kv_dtype: str | None = None) -> LayoutReport:
    """Placements of the model's weights (abstract unless given, e.g. an int8 model) and of a KV
    cache for `batch` sequences of `context_len` tokens."""
    config = partitioning.config
    model = build_abstract(config) if model is None else model
    sizes = dict(zip(("x", "y", "z"), mesh_shape))
    return LayoutReport(
        partitioning,
        mesh_shape,
        weight_placements(model, partitioning, sizes),
        cache_placements(abstract_cache(config, batch, context_len, kv_dtype), partitioning, sizes),
    )
