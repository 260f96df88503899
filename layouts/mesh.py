"""Meshes: parsing a user's `4x4x4`, choosing the shape the paper's formulas favour, and building a
`jax.sharding.Mesh` with axes x, y, z from local devices or any device list (a TPU topology's)."""

import functools
import math
import re

import jax
import numpy as np
from jax.sharding import Mesh

from layouts.errors import MeshError
from layouts.layout import MESH_AXES, Layout
from zoo.config import ModelConfig

MeshShape = tuple[int, int, int]


def parse_mesh(text: str) -> MeshShape:
    """`XxYxZ` (or `XxY`, `X`: missing trailing axes have size 1) into (X, Y, Z)."""
    if not re.fullmatch(r"[1-9]\d*(x[1-9]\d*){0,2}", text.strip()):
        raise MeshError(f"malformed mesh {text!r}: expected XxYxZ with positive integers, e.g. 4x4x4 or 2x4")
    sizes = [int(part) for part in text.strip().split("x")]
    return tuple(sizes + [1] * (3 - len(sizes)))  # type: ignore[return-value]


def format_mesh(shape: MeshShape) -> str:
    return "x".join(str(size) for size in shape)


def factorizations(chips: int) -> list[MeshShape]:
    """Every (X, Y, Z) with X·Y·Z = chips."""
    if chips < 1:
        raise MeshError(f"chip count must be a positive integer, got {chips}")
    shapes = []
    for x in range(1, chips + 1):
        if chips % x:
            continue
        for y in range(1, chips // x + 1):
            if (chips // x) % y == 0:
                shapes.append((x, y, chips // x // y))
    return shapes


def _imbalance(shape: MeshShape) -> float:
    return max(shape) / min(shape)


def choose_mesh_shape(chips: int, layout: Layout, config: ModelConfig, tokens: int | None = None, batch: int | None = None) -> MeshShape:
    """The mesh shape the paper's formulas favour for `layout` (docs/paper-model.md §4).

    2D weight-stationary: X ≈ √(n·E/F) (0.5·√n for F = 4E), the rest split evenly over y and z.
    Weight-gathered over N chips (N = X, XY or XYZ): N ≈ √(BL·n/F), where `tokens` = B·L.
    Otherwise (1D weight-stationary, where communication does not depend on the shape): the most
    balanced torus. Ties go to the most balanced shape. Given `batch`, only shapes whose axes
    the layout splits the batch over divide it are taken, where there are any (weight-gathered
    over x at one sequence: X = 1).
    """
    E, F = config.d_model, config.d_ff
    batch_split = (tuple(layout.rules["activation"]["batch"]), batch) if batch else ((), None)
    if layout.family == "weight-stationary" and layout.rules["weight"]["embed"] and layout.rules["weight"]["mlp"]:
        return _nearest_shape(chips, tuple(layout.rules["weight"]["embed"]), math.sqrt(chips * E / F), *batch_split)
    if layout.family == "weight-gathered" and tokens:
        return _nearest_shape(chips, layout.gathered_axes, math.sqrt(tokens * chips / F), *batch_split)
    return _nearest_shape(chips, (), None, *batch_split)


def balanced_shape(chips: int) -> MeshShape:
    """The most balanced torus of `chips` chips (ties go to the first factorization)."""
    return _nearest_shape(chips, (), None)


@functools.cache  # the estimator's sweeps ask the same few questions thousands of times
def _nearest_shape(chips: int, axes: tuple[str, ...], target: float | None, batch_axes: tuple[str, ...] = (), batch: int | None = None) -> MeshShape:
    """The shape whose product over `axes` is nearest `target` (in log), then the most balanced,
    among those whose `batch_axes` divide `batch` (all shapes where none do)."""

    def score(shape):
        if target is None:
            return (0.0, _imbalance(shape))
        size = dict(zip(MESH_AXES, shape))
        return (abs(math.log(math.prod(size[a] for a in axes)) - math.log(max(target, 1e-9))), _imbalance(shape))

    def divides(shape):
        size = dict(zip(MESH_AXES, shape))
        return batch is None or batch % math.prod(size[axis] for axis in batch_axes) == 0

    shapes = [shape for shape in factorizations(chips) if divides(shape)] or factorizations(chips)
    return min(shapes, key=score)


def _check_spans_processes(shape: MeshShape, devices: list) -> None:
    """With several processes (`layouts.processes`), every one runs every step and feeds its own
    devices, so a mesh over the runtime's devices must take all of them."""
    if jax.process_count() == 1 or devices[0] not in jax.devices():  # one process, or a TPU topology's abstract chips
        return
    total = jax.device_count()
    if len(devices) != total:
        raise MeshError(
            f"mesh {format_mesh(shape)} has {len(devices)} devices, but with {jax.process_count()} processes a mesh spans all "
            f"{total} devices ({jax.local_device_count()} per process); pass --chips {total} or a mesh of {total}"
        )


def make_mesh(shape: MeshShape, devices=None) -> Mesh:
    """A mesh with axes (x, y, z) over `devices` (default: the local devices). On TPUs the device
    order follows the physical torus so that mesh axes are rings of neighbours."""
    devices = list(jax.devices() if devices is None else devices)
    count = math.prod(shape)
    if count > len(devices):
        hint = f"; on a CPU, run with XLA_FLAGS=--xla_force_host_platform_device_count={count} to split it into {count} devices" if devices[0].platform == "cpu" else ""
        raise MeshError(f"mesh {format_mesh(shape)} needs {count} devices; {len(devices)} available ({devices[0].platform}){hint}")
    devices = devices[:count]
    _check_spans_processes(shape, devices)
    if devices[0].platform == "tpu":
        from jax.experimental import mesh_utils

        try:
            grid = mesh_utils.create_device_mesh(shape, devices=devices)
        except (AssertionError, NotImplementedError, ValueError):
            grid = np.asarray(devices).reshape(shape)
    else:
        grid = np.asarray(devices).reshape(shape)
    return Mesh(grid, MESH_AXES)

