"""Compiled against estimated, per collective kind: every built-in layout for one model on a TPU
topology (compiled with libtpu, no TPU needed), decode and prefill.

    JAX_PLATFORMS=cpu python benchmarks/cross_check.py --model palm-8b --target tpu-v4 --chips 8 --mesh 2x2x2
"""

import argparse

from layouts import FFN_LAYOUTS
from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell, cross_check
from layouts.bench.estimate_rows import estimate_cell
from layouts.bench.result_row import COMMUNICATION_KEYS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="palm-8b")
    parser.add_argument("--target", default="tpu-v4")
    parser.add_argument("--chips", type=int, default=8)
    parser.add_argument("--mesh", default="2x2x2")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--input-len", type=int, default=128)
    args = parser.parse_args()
    header = (
        f"{'layout':7} {'phase':7} " + " ".join(f"{kind + ' c/e (MB)':>24}" for kind in COMMUNICATION_KEYS)
        + f" {'reductions c/e':>15} {'total c/e':>10}"
    )  # fmt: skip
    print(header)
    for layout in FFN_LAYOUTS:
        for phase, attention in (("prefill", "heads"), ("decode", "batch")):
            cell = Cell(args.model, prefill_layout=layout, decode_layout=layout, prefill_attention=attention, decode_attention=attention,
                        chips=args.chips, mesh=args.mesh, target=args.target, batch=args.batch, input_len=args.input_len, phase=phase)  # fmt: skip
            (compiled,), (estimated,) = compile_cell(cell), estimate_cell(cell)
            if compiled.status != "ok" or compiled.comm_bytes_per_chip["all_gather"] is None:
                print(f"{layout:7} {phase:7} {compiled.error or 'does not fit'}")
                continue
            ratios = cross_check(compiled, estimated)
            cells = []
            for kind in COMMUNICATION_KEYS:
                c, e = compiled.comm_bytes_per_chip[kind] or 0, estimated.comm_bytes_per_chip[kind] or 0
                cells.append(f"{c / 1e6:9.2f}/{e / 1e6:<9.2f}" + (f"{ratios.get(kind) or 0:5.2f}" if e else "     "))
            total_c = sum(v or 0 for v in compiled.comm_bytes_per_chip.values())
            total_e = sum(v or 0 for v in estimated.comm_bytes_per_chip.values())
            # XLA on TPU writes reduce-scatters as all-reduces: reductions compare as one figure.
            reductions = [sum(row.comm_bytes_per_chip[kind] or 0 for kind in ("reduce_scatter", "all_reduce")) for row in (compiled, estimated)]
            reduced = f"{reductions[0] / reductions[1]:15.3f}" if reductions[1] else f"{'-':>15}"
            print(f"{layout:7} {phase:7} " + " ".join(f"{cell:>24}" for cell in cells) + f" {reduced} {total_c / total_e:10.2f}")


if __name__ == "__main__":
    main()
