"""Choosing layouts with the estimator: the paper's rule and a plain search over the registry.

The paper's rule (docs/paper-model.md §4): 2D weight-stationary communication at its optimum mesh
is 4·BL·√(EF/n)/bw per layer and weight-gathered's is 4E·√(BLF/n)/bw, equal at BL = E tokens;
prefill uses 2D weight-stationary below that and weight-gathered above it, gathering over the
N = X, XY or XYZ chips nearest to √(BL·n/F); decode uses 2D weight-stationary. Attention runs over
heads in prefill and over the batch in decode when the K/V head is single (multiquery) and the
batch divides.
"""

import dataclasses
import math

from layouts.fit import fit
from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.cost.chunking import choose_prefill_chunk
from layouts.cost.estimator import PhaseEstimate, estimate_phase
from layouts.workload import Workload
from layouts.hardware import Chip
from layouts.layout import MESH_AXES, Layout, Partitioning
from layouts.mesh import MeshShape, balanced_shape, choose_mesh_shape, factorizations
from zoo.config import ModelConfig
from zoo.errors import ZooError
from zoo.presets import get_preset

# Decode attention layouts from most to least split batch: the first whose batch axes divide wins.
_DECODE_ATTENTION = ("batch", "batch-yz", "batch-z", "heads")
OBJECTIVES = ("latency", "cost")


def paper_layout(model: str, phase: str, *, chips: int, batch: int, input_len: int) -> tuple[str, str]:
    """(FFN layout, attention layout) by the paper's rule for one phase."""
    config = get_preset(model)
    if phase == "prefill":
        tokens = batch * input_len
        if tokens < config.d_model:
            return "2d-ws", "heads"
        target = math.sqrt(tokens * chips / config.d_ff)
        side = round(chips ** (1 / 3))
        gathered = {"wg-x": side, "wg-xy": side * side, "wg-xyz": chips}
        return min(gathered, key=lambda name: abs(math.log(gathered[name] / target))), "heads"
    if phase != "decode":
        raise ZooError(f"phase must be prefill or decode, got {phase!r}")
    if not config.is_multiquery:
        return "2d-ws", "heads"
    for attention in _DECODE_ATTENTION:
        ways = math.prod(_balanced_axes(chips, ATTENTION_LAYOUTS[attention].batch_axes))
        if batch % ways == 0:
            return "2d-ws", attention
    return "2d-ws", "heads"


def _balanced_axes(chips: int, axes: tuple[str, ...]) -> list[int]:
    return [dict(zip(MESH_AXES, balanced_shape(chips)))[axis] for axis in axes]


@dataclasses.dataclass(frozen=True)
class Choice:
    """A registered FFN and attention layout on a mesh, and its estimate."""

    layout: str
    attention: str
    mesh_shape: MeshShape
    estimate: PhaseEstimate


def candidates(config: ModelConfig, chips: int, workload: Workload, phase: str, *, all_meshes: bool = False, ffn: Layout | None = None):
    """(FFN layout name, attention layout name, partitioning, mesh shape) for every registered FFN
    layout meant for `phase` (or `ffn` alone) and every attention layout, on the layout's preferred
    mesh (or every factorization of the chip count)."""
    for name, layout in FFN_LAYOUTS.items() if ffn is None else [(ffn.name, ffn)]:
        if ffn is None and layout.phase not in (phase, "any"):
            continue
        meshes = factorizations(chips) if all_meshes else [choose_mesh_shape(chips, layout, config, tokens=workload.pass_tokens(phase), batch=workload.batch)]
        for attention_name, attention in ATTENTION_LAYOUTS.items():
            for mesh_shape in meshes:
                yield name, attention_name, fit(Partitioning(layout, attention, config), mesh_shape, workload.batch), mesh_shape


def best_choice(
    config: ModelConfig, chip: Chip, chips: int, workload: Workload, phase: str, *,
    mode: str = "calibrated", objective: str = "latency", all_meshes: bool = False, ffn: Layout | None = None,
) -> Choice:  # fmt: skip
    """The fastest (`latency`) or cheapest (`cost`) registered layout for `phase` among those that
    divide the model and fit in HBM (a prefill whose workload leaves the chunk open, in the chunk
    each candidate would take: `layouts.cost.chunking`); raises ZooError naming why when none does."""
    if objective not in OBJECTIVES:
        raise ZooError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    usable, reasons = [], set()
    for name, attention, partitioning, mesh_shape in candidates(config, chips, workload, phase, all_meshes=all_meshes, ffn=ffn):
        try:
            chunked = workload
            if phase == "prefill" and workload.prefill_chunk is None:
                chunked = dataclasses.replace(workload, prefill_chunk=choose_prefill_chunk(partitioning, chip, mesh_shape, workload))
            found = estimate_phase(partitioning, chip, mesh_shape, chunked, phase, mode)
        except ZooError as error:
            reasons.add(" ".join(str(error).split()))
            continue
        if found.fits:
            usable.append(Choice(name, attention, tuple(mesh_shape), found))
        else:
            reasons.add("does not fit in HBM")
    if not usable:
        raise ZooError(f"no layout can run {config.name} {phase} on {chips} {chip.name} chips at batch {workload.batch}: {sorted(reasons)[0]}")
    key = (lambda choice: choice.estimate.latency_s) if objective == "latency" else (lambda choice: choice.estimate.cost_chip_ms_per_token)
    return min(usable, key=key)
