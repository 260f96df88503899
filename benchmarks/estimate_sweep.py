"""Time the estimator over the sweep of the issue: the four paper models × every built-in FFN and
attention layout × chips 8..256 × 10 batch sizes, both phases (error rows included: a layout that
does not divide is part of the sweep).

    .venv/bin/python benchmarks/estimate_sweep.py [--repeats 5]

Prints the number of cells and rows and the median wall time of a full sweep. The first sweep
builds each partitioning's template once; the timed ones reuse them, as a long-lived CLI would.
"""

import argparse
import statistics
import time

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_or_error_rows

MODELS = ("palm-8b", "palm-62b", "palm-540b-64h", "mtnlg-530b")
CHIPS = (8, 16, 32, 64, 128, 256)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def sweep_cells() -> list[Cell]:
    return [
        Cell(model, prefill_layout=ffn, decode_layout=ffn, prefill_attention=attention, decode_attention=attention, chips=chips, batch=batch)
        for model in MODELS
        for ffn in FFN_LAYOUTS
        for attention in ATTENTION_LAYOUTS
        for chips in CHIPS
        for batch in BATCHES
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    cells = sweep_cells()
    rows = [row for cell in cells for row in estimate_or_error_rows(cell)]
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for cell in cells:
            estimate_or_error_rows(cell)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    ok = sum(row.status == "ok" for row in rows)
    print(
        f"{len(cells)} cells, {len(rows)} rows ({ok} ok, {len(rows) - ok} error): median {statistics.median(times):.3f} s wall, "
        f"{statistics.median(cpu_times):.3f} s CPU over {repeats} sweeps"
    )


if __name__ == "__main__":
    main()
