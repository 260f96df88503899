"""PaLM 540B on TPU v4 4x4x4 (64 chips), compiled ahead of time with no TPU, beside the estimate.

For each built-in FFN layout: decode at batch 64 and 512 (context 2048) and prefill at batch 1 and
512 (2048 tokens), bf16 weights. The model is palm-540b-64h, the paper's inference variant with
heads padded 48 -> 64 (48 heads do not divide over 64 chips). Prefill at batch 1 runs attention over
heads (one sequence cannot be split over the batch), the rest over the batch, as in the paper's
Table 2. Prints a Markdown table; per-chip figures.

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/compile_palm540b.py
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from layouts import FFN_LAYOUTS  # noqa: E402
from layouts.bench.cell import Cell  # noqa: E402
from layouts.bench.compile_rows import compile_cell, cross_check  # noqa: E402
from layouts.bench.estimate_rows import estimate_cell  # noqa: E402
from zoo.errors import ZooError  # noqa: E402

MODEL = "palm-540b-64h"
WORKLOADS = (("decode", 64), ("decode", 512), ("prefill", 1), ("prefill", 512))
GiB, MiB = 2**30, 2**20


def gib(value):
    return "-" if value is None else f"{value / GiB:.2f}"


def mib(row):
    values = row.comm_bytes_per_chip
    if any(value is None for value in values.values()):
        return "-"
    parts = {"AG": values["all_gather"], "RS": values["reduce_scatter"], "AR": values["all_reduce"], "A2A": values["all_to_all"], "CP": values["other"]}
    total = sum(parts.values())
    return f"{total / MiB:.0f} (" + " ".join(f"{key} {value / MiB:.0f}" for key, value in parts.items() if value) + ")"


def main() -> None:
    print("| layout | phase | batch | mesh | attention | compiled mem GiB (w/kv/total) | fits | est. mem GiB (w/kv/total) | compiled comm MiB/step | est. comm MiB/step | ratio w/kv | XLA time est. s | compile s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for layout in FFN_LAYOUTS:
        for phase, batch in WORKLOADS:
            attention = "heads" if phase == "prefill" and batch == 1 else "batch"
            cell = Cell(MODEL, prefill_layout=layout, decode_layout=layout, prefill_attention=attention, decode_attention=attention,
                        chips=64, target="tpu-v4", phase=phase, batch=batch, input_len=2048, context_len=2048)  # fmt: skip
            try:
                (row,) = compile_cell(cell)
                (guess,) = estimate_cell(cell)
            except ZooError as error:
                print(f"| {layout} | {phase} | {batch} | | {attention} | input error: {error} | | | | | | | |", flush=True)
                continue
            if row.status != "ok":
                print(f"| {layout} | {phase} | {batch} | {row.mesh} | {attention} | compile error: {row.error} | | | | | | | |", flush=True)
                continue
            memory, estimated = row.memory_per_chip_bytes, guess.memory_per_chip_bytes
            ratios = cross_check(row, guess)
            cost = (row.details.get("compiler_cost") or {}).get("optimal_seconds")
            print(
                f"| {layout} | {phase} | {batch} | {row.mesh} | {attention} "
                f"| {gib(memory['weights'])}/{gib(memory['kv_cache'])}/{gib(memory['total'])} | {row.fits} "
                f"| {gib(estimated['weights'])}/{gib(estimated['kv_cache'])}/{gib(estimated['total'])} "
                f"| {mib(row)} | {mib(guess)} | {ratios['weights']:.3f}/{ratios['kv_cache']:.3f} "
                f"| {'-' if cost is None else f'{cost:.4f}'} | {row.compile_time_s:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
