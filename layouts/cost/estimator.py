"""One phase of a workload, costed by the analytical model for a partitioning on a chip and a mesh:
no benchmark cell, no devices, nothing compiled.

    from layouts.cost import Workload, estimate_phase
    estimate_phase(partitioning, get_chip("tpu-v4"), (4, 4, 4), Workload(64, 2048, 2048, 64, "int8"), "decode")

Per-chip memory is what the phase holds at once: the stored weights, the KV cache for the context
plus the generated tokens, and `other` (`phase_memory`): the residual stream of the pass, the
logits, and the larger of the embedding lookup's rows and one layer's working set at a chunk (its
largest stage, `layouts.cost.terms._working_sets`, and what a weight-gathered layout gathers).
A layer that runs once holds one gathered weight at a time (the explicit partitioner gathers a
weight one dimension at a time, each gather landing in place, so no relayout copy sits beside it);
a layer that runs over prefill chunks holds all its gathered weights across the chunk loop
(palm-540b-64h under wg-xyz on 64 chips: W_in 5.06 GiB per chip, the layer's 9.3).
"""

import dataclasses
import functools
import math
from typing import Any

from layouts.collective_matmul import check_mode
from layouts.cost.calibration import get_mode
from layouts.cost.metrics import chip_ms_per_token, model_flops_utilization
from layouts.cost.terms import ACTIVATION_BYTES, axis_ways, describe_rings, phase_passes, phase_template
from layouts.workload import Workload
from layouts.hardware import Chip
from layouts.layout import Partitioning
from zoo.config import dtype_bytes


@dataclasses.dataclass(frozen=True)
class PhaseEstimate:
    """The estimate of one phase: prefill's step is the whole prompt, decode's one token step at the
    context length and its latency all `gen_tokens` steps. Sizes are per chip; `mfu` follows the
    paper, 2·N_nominal·tokens / (chips·peak·time)."""

    phase: str
    mesh_shape: tuple[int, int, int]
    chip: Chip
    step_time_s: float
    latency_s: float
    tokens_per_s: float
    mfu: float
    cost_chip_ms_per_token: float
    memory_per_chip_bytes: dict[str, int]
    fits: bool
    comm_bytes_per_chip: dict[str, float]
    details: dict[str, Any]


def phase_memory(partitioning: Partitioning, phase: str, mesh_shape, workload: Workload) -> dict[str, int]:
    """Bytes per chip `phase` of `workload` holds at once, by kind and in total (see the module)."""
    config = partitioning.config
    template = phase_template(partitioning, phase)
    ways = axis_ways(mesh_shape)
    matrix_bytes = 1 if workload.weights == "int8" else dtype_bytes(config.dtype)
    weights = sum(term.value(ways, 1, 1, 1) * (matrix_bytes if matrix else dtype_bytes(config.dtype)) for term, matrix in template.stored_weights)
    cache_len = workload.cache_len(phase)
    kv_cache = template.kv_capacity.value(ways, workload.batch, 1, cache_len) * config.n_layers * dtype_bytes(workload.kv_dtype)
    B = workload.batch
    # The residual stream of every token a pass takes; a layer takes `chunk` of them at a time.
    tokens, chunk = (workload.input_len, workload.chunk_len) if phase == "prefill" else (1, 1)
    chunked = phase == "prefill" and workload.chunked
    # Unchunked, a layer's input and output are both live; chunked, each chunk's output overwrites
    # its input in the one stream the layers carry.
    other = template.residual_elements.value(ways, B, tokens, 1) * ACTIVATION_BYTES * (1 if chunked else 2)
    # A layer's working set at one chunk: its largest stage (`layouts.cost.terms._working_sets`).
    layer = max(sum(term.value(ways, B, chunk, cache_len) * size for term, size in stage) for stage in template.working_sets)
    layer += gathered_weight_bytes(partitioning, phase, mesh_shape, workload)
    # The embedding lookup runs before the layers, one chunk at a time: its rows are live when no
    # layer's are.
    lookup = sum(term.value(ways, B, chunk, 1) for term in template.lookup_elements) * ACTIVATION_BYTES
    other += max(layer, lookup)
    other += template.head_flops.value(ways, B, 1, 1) / (2 * config.d_model) * 4  # fp32 logits
    sizes = {"weights": int(weights), "kv_cache": int(kv_cache), "other": int(other)}
    return sizes | {"total": sum(sizes.values())}


def gathered_weight_bytes(partitioning: Partitioning, phase: str, mesh_shape, workload: Workload) -> int:
    """Bytes per chip of gathered weights a layer holds (gathered a dimension at a time, in place:
    `layouts.collective_moves`): one at a time, its largest at most, in a layer that runs once;
    all of them across the chunk loop of a chunked prefill."""
    template, ways = phase_template(partitioning, phase), axis_ways(mesh_shape)
    gathered = [term.value(ways, 1, 1, 1) for term in template.gathered_weight_elements]
    if not gathered:
        return 0
    chunked = phase == "prefill" and workload.chunked
    return int((sum(gathered) if chunked else max(gathered)) * ACTIVATION_BYTES)


@functools.cache
def _calibration_items(calibration) -> tuple[tuple[str, object], ...]:
    return tuple(dataclasses.asdict(calibration).items())


def estimate_phase(
    partitioning: Partitioning,
    chip: Chip,
    mesh_shape: tuple[int, int, int],
    workload: Workload,
    phase: str,
    mode: str = "calibrated",
    collective_matmul: str = "none",
    slice_shape: tuple[int, ...] | None = None,
) -> PhaseEstimate:
    """`phase` of `workload` under `partitioning` on `chip`s laid out as `mesh_shape`, the
    projections' reduce-scatters run as collective matmuls unless `collective_matmul` is "none"
    (their communication hides behind their matmuls, up to the smaller of the two, and each pass of
    the loop has a collective's latency), on a slice of `slice_shape` (default: the chip's standard
    one; `layouts.interconnect` lays the mesh on it). Bad input (an indivisible dimension, a chip
    count the chip cannot form, an unknown mode) raises the library's one-line ZooError."""
    calibration = get_mode(mode)
    config = partitioning.config
    chips = math.prod(mesh_shape)
    passes = phase_passes(partitioning, chip, mesh_shape, workload, phase, check_mode(collective_matmul), slice_shape)
    reported = passes.reported
    step = calibration.pass_seconds(reported, chip)
    latency = step if phase == "prefill" else calibration.pass_seconds(passes.mean, chip) * passes.passes
    memory = phase_memory(partitioning, phase, mesh_shape, workload)
    layers = reported.layers
    comm = {kind: layers * reported.layer.comm_bytes[kind] + reported.head.comm_bytes[kind] for kind in reported.layer.comm_bytes}
    details = {
        "mode": mode,
        "collective_matmul": collective_matmul,
        "calibration": dict(_calibration_items(calibration)),
        "model_variant": config.description,
        "params": config.param_count,
        "mfu_params": config.mfu_params,
        "chip": chip.name,
        "peak_flops": chip.peak_flops,
        "slice": "x".join(map(str, passes.placement.slice_shape)),
        "physical_axes": passes.placement.describe(),
        "layers": layers,
        # Seconds of one pass (the reported step) at the chip's peaks, before the mode combines them.
        "compute_s": layers * reported.layer.compute_seconds(chip) + reported.head.compute_seconds(chip),
        "memory_s": layers * reported.layer.memory_seconds(chip) + reported.head.memory_seconds(chip),
        "comm_s": layers * reported.layer.comm_seconds + reported.head.comm_seconds,
        "paper_comm_s": layers * reported.layer.paper_comm_seconds + reported.head.paper_comm_seconds,
        "collectives": layers * reported.layer.collectives + reported.head.collectives,
        "hops": layers * reported.layer.hops + reported.head.hops,
        "matmul_flops_per_chip": layers * reported.layer.matmul_flops + reported.head.matmul_flops,
        "attention_flops_per_chip": layers * reported.layer.attention_flops,
        "weight_bytes_read_per_chip": layers * reported.layer.weight_bytes + reported.head.weight_bytes,
        "kv_bytes_per_chip": layers * reported.layer.kv_bytes,
        "per_layer": {
            "matmul_flops": reported.layer.matmul_flops,
            "attention_flops": reported.layer.attention_flops,
            "weight_bytes": reported.layer.weight_bytes,
            "kv_bytes": reported.layer.kv_bytes,
            "comm_bytes": dict(reported.layer.comm_bytes),
            "collectives": reported.layer.collectives,
            "hops": reported.layer.hops,
            "seconds": calibration.stage_seconds(reported.layer, chip),
        },
        # Each collective of a layer and of the head: the links it runs on, its bytes and seconds.
        "collective_links": [
            {"stage": stage, "where": c.where, "kind": c.kind, "axes": "".join(c.axes), "links": describe_rings(c.rings), "bytes": c.bytes, "seconds": c.seconds, "hops": c.hops, "looped": c.looped}
            for stage, terms in (("layer", reported.layer), ("head", reported.head))
            for c in terms.breakdown
        ],
    }
    return PhaseEstimate(
        phase=phase,
        mesh_shape=tuple(mesh_shape),
        chip=chip,
        step_time_s=step,
        latency_s=latency,
        tokens_per_s=passes.tokens / latency,
        mfu=model_flops_utilization(config, passes.tokens, chips, chip.peak_flops, latency),
        # Per chip, not per device: a TPU7x chip is two of the mesh's points.
        cost_chip_ms_per_token=chip_ms_per_token(chips / (chip.devices_per_chip if chip.per_device_view else 1), latency, passes.tokens),
        memory_per_chip_bytes=memory,
        fits=memory["total"] <= chip.program_hbm_bytes,
        comm_bytes_per_chip=comm | {"other": 0.0},
        details=details,
    )
