"""Chunked prefill's chunk: the most tokens per sequence a layer can take at a time and still fit.

Prefill's working memory (attention scores, the FFN hidden) grows with the tokens a layer takes at
once, while its weights, cache and residual stream do not; chunking the prompt trades a little
time (each chunk reads the weights again) for that memory. The chunk chosen is the largest of the
prompt halved 0, 1, 2... times (rounded up, so 2^k chunks at most) whose estimate fits the chip's
usable HBM with a margin on the activations: the whole prompt when it fits, and the whole prompt
when nothing does (chunking would not make it fit, and the row then says how much the whole prompt
needs).

The margin: the estimate of a chunk's activations (`other` less the gathered weights, which it
counts exactly: the residual stream, one chunk's working set, the embedding lookup's rows) came
within -12% to +2% of the compiled programs' on palm-540b-64h, 64 v4 chips, prefill batch 512 (1d-ws
at chunk 256: 7.3 GiB estimated, 10.8 compiled, which missed the 30.75 GiB by 0.04 GiB). Counting
them 1.5 times keeps the chosen chunk inside what the compiler then needs
(`JAX_PLATFORMS=cpu python benchmarks/memory_table.py --model palm-540b-64h --chips 64 --mesh 4x4x4`).
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
