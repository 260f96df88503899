"""Applying a partitioning to a model: shardings for every weight and the KV cache, the activation
constraint hook, and initialisation or placement straight into sharded arrays."""

import dataclasses

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from layouts.layout import Partitioning
from layouts.processes import global_array
from layouts.resolver import resolve
from zoo.config import ModelConfig
from zoo.constraints import Constrain
from zoo.execution import AS_DECLARED, Execution, executed
from zoo.kv_cache import CACHE_NAMES, KVCache
from zoo.logical_axes import Role
from zoo.quantization import abstract_model, quantize
from zoo.transformer import Transformer
from zoo.weights import Int8Weight, is_weight


@dataclasses.dataclass(frozen=True)
class Placement:
    """One weight array's placement: what the introspection and the shardings are built from."""

    path: str
    names: tuple[str | None, ...]
    shape: tuple[int, ...]
    dtype: str
    spec: PartitionSpec
    per_chip_shape: tuple[int, ...]
    per_chip_bytes: int


def _per_chip_shape(shape, spec: PartitionSpec, mesh_shape) -> tuple[int, ...]:
    per_chip = []
    for size, entry in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
        axes = () if entry is None else (entry,) if isinstance(entry, str) else entry
        ways = 1
        for axis in axes:
            ways *= mesh_shape[axis]
        per_chip.append(size // ways)
    return tuple(per_chip)


def _placement(path, names, array, role, partitioning, mesh_shape) -> Placement:
    spec = resolve(partitioning, role, names, array.shape, mesh_shape, tensor=path)
    per_chip = _per_chip_shape(array.shape, spec, mesh_shape)
    count = 1
    for size in per_chip:
        count *= size
    return Placement(path, tuple(names), tuple(array.shape), str(array.dtype), spec, per_chip, count * array.dtype.itemsize)


def weight_placements(model: Transformer, partitioning: Partitioning, mesh_shape) -> list[Placement]:
    """Every weight array of `model` (abstract or real), in the model's leaf order."""
    placements = []
    for key_path, weight in jax.tree_util.tree_flatten_with_path(model, is_leaf=is_weight)[0]:
        path = jax.tree_util.keystr(key_path, simple=True, separator=".")
        if isinstance(weight, Int8Weight):
            placements.append(_placement(path, weight.names, weight.quantized, Role.WEIGHT, partitioning, mesh_shape))
            placements.append(_placement(path + ".scale", weight.scale_names, weight.scale, Role.WEIGHT, partitioning, mesh_shape))
        else:
            placements.append(_placement(path, weight.names, weight.value, Role.WEIGHT, partitioning, mesh_shape))
    return placements


def cache_placements(cache: KVCache, partitioning: Partitioning, mesh_shape) -> list[Placement]:
    return [_placement(f"cache.{field}", CACHE_NAMES, getattr(cache, field), Role.CACHE, partitioning, mesh_shape) for field in ("k", "v")]


def param_shardings(model: Transformer, partitioning: Partitioning, mesh: Mesh):
    """A pytree of NamedShardings with the model's structure (its array leaves replaced)."""
    placements = weight_placements(model, partitioning, dict(mesh.shape))
    return jax.tree.unflatten(jax.tree.structure(model), [NamedSharding(mesh, p.spec) for p in placements])


def cache_shardings(cache: KVCache, partitioning: Partitioning, mesh: Mesh) -> KVCache:
    k, v = (NamedSharding(mesh, p.spec) for p in cache_placements(cache, partitioning, dict(mesh.shape)))
    # A pytree of shardings with the cache's structure (not a KVCache: its fields are arrays).
    return jax.tree.unflatten(jax.tree.structure(cache), [k, v, NamedSharding(mesh, PartitionSpec())])


def activation_sharding(partitioning: Partitioning, mesh: Mesh, names, shape, tensor: str) -> NamedSharding:
    return NamedSharding(mesh, resolve(partitioning, Role.ACTIVATION, names, shape, dict(mesh.shape), tensor=tensor))


class CompilerPlacement(Constrain):
    """The compiler partitioner's hook: every placement the zoo declares becomes a sharding
    constraint on the whole array, and XLA's partitioner chooses the collectives between them."""

    def __init__(self, partitioning: Partitioning, mesh: Mesh) -> None:
        self.partitioning, self.mesh, self.mesh_shape = partitioning, mesh, dict(mesh.shape)

    def place_whole(self, x, role: Role, names):
        spec = resolve(self.partitioning, role, names, x.shape, self.mesh_shape, tensor=f"{role.value} {names}")
        return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, spec))

    def __call__(self, x, role: Role, names, *, source=None, into_contraction: bool = False):
        del source, into_contraction  # the compiler works out where x is
        return self.place_whole(x, role, names)


def make_constrain(partitioning: Partitioning, mesh: Mesh) -> Constrain:
    """The compiler partitioner's hook bound to a partitioning and a mesh."""
    return CompilerPlacement(partitioning, mesh)


def init_in_shards(config: ModelConfig, shardings, key, weights: str = "bf16", execution: Execution = AS_DECLARED) -> Transformer:
    """A randomly initialised model (its matmul weights int8 if `weights` says so, in the form
    `execution` runs it) created inside jit straight into `shardings` (a tree like
    `executed_abstract(abstract_model(config, weights), execution)`; None: one device), so no
    device ever holds the whole model."""

    def build(k):
        model = Transformer(config, key=k)
        return executed(quantize(model) if weights == "int8" else model, execution)

    return jax.jit(build, out_shardings=shardings)(key)


def init_sharded_model(config: ModelConfig, partitioning: Partitioning, mesh: Mesh, key, weights: str = "bf16") -> Transformer:
    """A randomly initialised model created directly in its shards under `partitioning`."""
    return init_in_shards(config, param_shardings(abstract_model(config, weights), partitioning, mesh), key, weights)


def shard_model(model: Transformer, partitioning: Partitioning, mesh: Mesh) -> Transformer:
    """An existing model moved to the partitioning's shardings."""
    return placed(model, param_shardings(model, partitioning, mesh))


def placed(tree, shardings):
    """`tree`'s arrays in `shardings`. Within one process, a device_put (a no-op where an array is
    already so placed). Across processes, an array already global is resharded by a jitted
    identity, and one this process holds whole (the same value in every process: a prompt, a model
    every process built from the same seed) is placed slice by slice (`processes.global_array`)."""
    if all(sharding.is_fully_addressable for sharding in jax.tree.leaves(shardings)):
        return jax.device_put(tree, shardings)

    def place(leaf, sharding):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return leaf if leaf.sharding == sharding else jax.jit(lambda x: x, out_shardings=sharding)(leaf)
        return global_array(np.asarray(leaf), sharding)

    return jax.tree.map(place, tree, shardings)
