"""Capacity of palm-540b-64h on 64 TPU v4 chips (4x4x4), decode: the longest context at batch 128
and 512 (whole usable HBM, the estimate's boundary confirmed by compile bisection; and the paper's
Table 1 rule, the KV cache within 30% of HBM), and the largest batch at a 2048-token context.

    JAX_PLATFORMS=cpu python benchmarks/capacity_table.py
    JAX_PLATFORMS=cpu python benchmarks/capacity_table.py --model palm-8b --chips 8 --mesh 2x2x2
"""

import argparse
import time

from layouts.bench.capacity import capacity
from layouts.bench.cell import Cell


def _confirmed(row) -> str:
    return f"{row.estimated:,} | {row.compiled:,} ({row.compiles} compiles)" if row.estimated is not None else "none fits | -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="palm-540b-64h")
    parser.add_argument("--chips", type=int, default=64)
    parser.add_argument("--mesh", default="4x4x4")
    parser.add_argument("--layouts", nargs="+", default=["1d-ws", "2d-ws"])
    args = parser.parse_args()
    started = time.perf_counter()
    common = dict(chips=args.chips, mesh=args.mesh, phase="decode", gen_tokens=64)
    print("| layout/attn | batch | longest context, est. | compiled | Table 1 rule (KV ≤ 30% HBM), est. |")
    print("|---|---|---|---|---|")
    for layout in args.layouts:
        for attention in ("batch", "heads"):
            for batch in (128, 512):
                cell = Cell(args.model, decode_layout=layout, decode_attention=attention, batch=batch, **common)
                (row,) = capacity(cell, "context", confirm=True)
                (rule,) = capacity(cell, "context", kv_share=0.3)
                print(f"| {layout}/{attention} | {batch} | {_confirmed(row)} | {rule.estimated:,} |")
    print()
    print("| layout/attn | context | largest batch, est. | compiled |")
    print("|---|---|---|---|")
    for layout in args.layouts:
        (row,) = capacity(Cell(args.model, decode_layout=layout, decode_attention="batch", context_len=2048, **common), "batch", confirm=True)
        print(f"| {layout}/batch | 2048 | {_confirmed(row)} |")
    print(f"\n({time.perf_counter() - started:.0f} s; contexts are tokens before 64 generated ones)")


if __name__ == "__main__":
    main()
