"""Chunked prefill's chunk: the most tokens per sequence a layer can take at a time and still fit.

Prefill's working memory (attention scores, the FFN hidden) grows with the tokens a layer takes at
once, while its weights, cache and residual stream do not; chunking the prompt trades a little
time (each chunk reads the weights again) for that memory. The chunk chosen is the largest of the
prompt halved 0, 1, 2... times (rounded up, so 2^k chunks at most) whose estimate fits the chip's
usable HBM with a margin on the activations: the whole prompt when it fits, and the whole prompt
when nothing does (chunking would not make it fit, and the row then says how much the whole prompt
needs).

The margin: the estimate counts the gathered weights exactly, the activations by the stages of a
layer (`layouts.cost.terms._working_sets`), which the compiler's schedule may beat or miss. On
palm-540b-64h, 64 v4 chips, prefill batch 512, compiled totals came 0.82 to 1.05 times the estimate
over chunks of 128 to 512 tokens (1d-ws, 2d-ws, wg-x), the estimate furthest over at the largest
chunks; at the chunks chosen with the margin, 0.96 to 1.02 (`JAX_PLATFORMS=cpu python
benchmarks/memory_table.py --model palm-540b-64h --chips 64 --mesh 4x4x4 [--prefill-chunk N]`).
Counting the activations 1.5 times keeps the chosen chunk where the estimate is close, and inside
what the compiler then needs.
"""

import dataclasses

from layouts.cost.estimator import gathered_weight_bytes, phase_memory
from layouts.hardware import Chip
from layouts.layout import Partitioning
from layouts.workload import Workload
from zoo.logical_axes import SEQ, Role

WORKING_SET_MARGIN = 1.5  # the estimated activations counted 1.5 times (see above)


def chunk_candidates(input_len: int) -> list[int]:
    """The prompt, halved until one token: 2048 -> [2048, 1024, ..., 1]; 13 -> [13, 7, 4, 2, 1]."""
    candidates, chunk = [input_len], input_len
    while chunk > 1:
        chunk = -(-chunk // 2)
        candidates.append(chunk)
    return candidates


def choose_prefill_chunk(partitioning: Partitioning, chip: Chip, mesh_shape: tuple[int, int, int], workload: Workload) -> int:
    """The largest candidate chunk whose prefill the estimate fits on `chip` with the margin; the
    whole prompt under a layout that splits the sequence (`layouts.steps.check_chunkable`)."""
    if partitioning.axes(Role.ACTIVATION, SEQ):
        return workload.input_len
    for chunk in chunk_candidates(workload.input_len):
        chunked = dataclasses.replace(workload, prefill_chunk=chunk)
        memory = phase_memory(partitioning, "prefill", mesh_shape, chunked)
        activations = memory["other"] - gathered_weight_bytes(partitioning, "prefill", mesh_shape, chunked)
        if memory["total"] + (WORKING_SET_MARGIN - 1) * activations <= chip.program_hbm_bytes:
            return chunk
    return workload.input_len
