"""Partitioning layouts: the paper's strategies as data, resolved to PartitionSpecs and applied to
zoo models on a mesh of devices (or of TPU chips described by a topology).

    from layouts import get_layout, get_attention_layout, Partitioning, make_mesh, build_steps
"""

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.errors import IndivisibleDimensionError, LayoutError, LayoutFileError, MeshError, UnknownLayoutError
from layouts.layout import MESH_AXES, AttentionLayout, Layout, Partitioning
from layouts.layout_file import load
from layouts.mesh import choose_mesh_shape, factorizations, format_mesh, make_mesh, parse_mesh
from layouts.registry import get_attention_layout, get_layout
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

__all__ = [
    "ATTENTION_LAYOUTS",
    "AttentionLayout",
    "FFN_LAYOUTS",
    "IndivisibleDimensionError",
    "Layout",
    "LayoutError",
    "LayoutFileError",
    "MESH_AXES",
    "MeshError",
    "Partitioning",
    "PhaseProgram",
    "Placement",
    "ShardedSteps",
    "UnknownLayoutError",
    "build_steps",
    "cache_placements",
    "cache_shardings",
    "choose_mesh_shape",
    "factorizations",
    "format_mesh",
    "get_attention_layout",
    "get_layout",
    "init_sharded_model",
    "load",
    "make_constrain",
    "make_mesh",
    "param_shardings",
    "parse_mesh",
    "resolve",
    "shard_model",
    "sharded_generate",
    "weight_placements",
]
from layouts.sharded_generation import sharded_generate

# The analytical cost model: chips, estimates, layout search, the paper reproduced. `estimate` and
# `fit` stay in their modules (layouts.estimate, layouts.calibration): exported here, a function
# would shadow its own module's name.
from layouts.calibration import CALIBRATED, ROOFLINE, Calibration  # noqa: E402
from layouts.estimate import estimate_or_error_rows  # noqa: E402
from layouts.hardware import CHIPS, Chip, get_chip, load_chips  # noqa: E402
from layouts.paper_reproduction import format_reproduction, reproduce_paper  # noqa: E402
from layouts.search import best_layout, paper_layout, pareto_frontier, pareto_sweep  # noqa: E402

__all__ += [
    "CALIBRATED",
    "CHIPS",
    "Calibration",
    "Chip",
    "ROOFLINE",
    "best_layout",
    "estimate_or_error_rows",
    "format_reproduction",
    "get_chip",
    "load_chips",
    "paper_layout",
    "pareto_frontier",
    "pareto_sweep",
    "reproduce_paper",
]

# Ahead-of-time compilation for a target (a TPU topology with no TPU present, or the local devices).
from layouts.compile import compile_cell, cross_check  # noqa: E402
from layouts.errors import TargetError  # noqa: E402
from layouts.hlo_analysis import Collective, bytes_by_kind, collectives  # noqa: E402
from layouts.targets import Target, get_target, target_names  # noqa: E402

__all__ += [
    "Collective",
    "Target",
    "TargetError",
    "bytes_by_kind",
    "collectives",
    "compile_cell",
    "cross_check",
    "get_target",
    "target_names",
]
