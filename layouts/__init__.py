"""Partitioning layouts: the paper's strategies as data, resolved to PartitionSpecs and applied to
zoo models on a mesh of devices. The package's parts:

- `layouts` (this package): the layout types, built-ins, layout files and registry, the resolver,
  meshes, hardware presets, sharding, the jitted steps, sharded generation, introspection;
- `layouts.cost`: the paper's analytical cost model, for a partitioning on a chip and mesh and a
  `Workload` (`estimate_phase`), its calibration, the layout search and the paper reproduced;
- `layouts.compiled`: compile targets (TPU topologies, the local devices), ahead-of-time
  compilation, the optimized program's collectives, timing on the local devices;
- `layouts.bench`: the benchmark cell, its result rows from all three sources, the matrix and its
  experiment files, `auto` layouts, the runner with its cache and output folder.

Lower parts never import higher ones: cost and compiled import only this core, bench imports all
(tests/test_architecture.py).

    from layouts import get_layout, get_attention_layout, Partitioning, make_mesh, build_steps
"""

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.collective_moves import ExplicitProgramError
from layouts.errors import IndivisibleDimensionError, LayoutError, LayoutFileError, MeshError, UnknownLayoutError
from layouts.fit import fit
from layouts.hardware import CHIPS, Chip, get_chip, load_chips
from layouts.layout import COLLECTIVE_KINDS, MESH_AXES, AttentionLayout, Layout, Partitioning
from layouts.layout_file import load
from layouts.mesh import choose_mesh_shape, factorizations, format_mesh, make_mesh, parse_mesh
from layouts.partitioners import DEFAULT_PARTITIONER, PARTITIONERS, placement_hook
from layouts.registry import get_attention_layout, get_layout, get_partitioning
from layouts.resolver import resolve
from layouts.sharding import (
    Placement,
    cache_placements,
    cache_shardings,
    init_sharded_model,
    make_constrain,
    param_shardings,
    shard_model,
    weight_placements,
)
from layouts.steps import PhaseProgram, ShardedSteps, build_steps
from layouts.workload import Workload

__all__ = [
    "ATTENTION_LAYOUTS",
    "CHIPS",
    "DEFAULT_PARTITIONER",
    "ExplicitProgramError",
    "COLLECTIVE_KINDS",
    "Chip",
    "AttentionLayout",
    "FFN_LAYOUTS",
    "IndivisibleDimensionError",
    "Layout",
    "LayoutError",
    "LayoutFileError",
    "MESH_AXES",
    "MeshError",
    "PARTITIONERS",
    "Partitioning",
    "PhaseProgram",
    "Placement",
    "ShardedSteps",
    "UnknownLayoutError",
    "Workload",
    "build_steps",
    "cache_placements",
    "cache_shardings",
    "choose_mesh_shape",
    "factorizations",
    "fit",
    "format_mesh",
    "get_attention_layout",
    "get_chip",
    "get_layout",
    "get_partitioning",
    "init_sharded_model",
    "load",
    "load_chips",
    "make_constrain",
    "make_mesh",
    "param_shardings",
    "parse_mesh",
    "placement_hook",
    "resolve",
    "shard_model",
    "sharded_generate",
    "weight_placements",
]
from layouts.sharded_generation import sharded_generate  # noqa: E402  (it imports the names above)
