"""Compiled against estimated link bytes, per collective kind and in total, for every built-in
layout under both partitioners, and under the explicit one with collective matmul (uni- and
bidirectional): decode at two batches with batch-sharded attention, prefill at batch 1 over heads. Compiled for a TPU topology with libtpu (no TPU needed). Bytes are per chip per
step in the paper's convention (an all-reduce counts twice its buffer) on both sides; the compiled
side counts the collectives the layout prescribes, and the rest (embedding lookup, norm
statistics) is shown apart. The XLA cost model's time is printed beside each program, and the
estimate's step time (which, with collective matmul, hides the loop's communication).

    JAX_PLATFORMS=cpu python benchmarks/cross_check.py                      # palm-8b, v4 2x2x2
    JAX_PLATFORMS=cpu python benchmarks/cross_check.py --model palm-540b-64h --chips 64 --mesh 4x4x4
"""

from topology_arguments import topology_parser

from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell, cross_check, prescribed_comm_bytes
from layouts.bench.estimate_rows import estimate_cell
from layouts.bench.result_row import COMMUNICATION_KEYS
from zoo.errors import ZooError

# partitioner, collective matmul
VARIANTS = {"explicit": ("explicit", "none"), "explicit+cm-uni": ("explicit", "unidirectional"),
            "explicit+cm-bi": ("explicit", "bidirectional"), "compiler": ("compiler", "none")}  # fmt: skip
SHORT = {"all_gather": "AG", "reduce_scatter": "RS", "all_reduce": "AR", "all_to_all": "A2A", "other": "other"}


def _cases(args) -> list[tuple[str, int, str]]:
    """(phase, batch, attention) for the run."""
    return [("decode", batch, "batch") for batch in args.decode_batches] + [("prefill", args.prefill_batch, "heads")]


def main() -> None:
    parser = topology_parser(__doc__.splitlines()[0], prefill_batch=1)
    parser.add_argument("--context-len", type=int, default=2048)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="partitioner/collective matmul")
    args = parser.parse_args()
    print(f"{args.model} on {args.target} {args.mesh}; compiled ÷ estimated link bytes per chip per step (estimate in MB)")
    print(f"{'layout':7} {'phase':7} {'batch':>5} {'variant':15} " + " ".join(f"{SHORT[kind]:>12}" for kind in COMMUNICATION_KEYS)
          + f" {'total':>12} {'apart MB':>9} {'XLA ms':>8} {'est. ms':>8}")  # fmt: skip
    for layout in args.layouts:
        for phase, batch, attention in _cases(args):
            for variant in args.variants:
                partitioner, collective_matmul = VARIANTS[variant]
                label = f"{layout:7} {phase:7} {batch:5} {variant:15}"
                try:
                    cell = Cell(
                        args.model, prefill_layout=layout, decode_layout=layout, prefill_attention=attention, decode_attention=attention,
                        chips=args.chips, mesh=args.mesh, target=args.target, batch=batch, input_len=args.input_len,
                        context_len=args.context_len, gen_tokens=1, phase=phase, partitioner=partitioner,
                        collective_matmul=collective_matmul,
                    )  # fmt: skip
                    (estimated,) = estimate_cell(cell)
                    (compiled,) = compile_cell(cell)
                except ZooError as error:
                    print(f"{label} refused: {error}")
                    continue
                if compiled.status != "ok" or compiled.comm_bytes_per_chip["all_gather"] is None:
                    print(f"{label} {compiled.error or 'no collectives'}")
                    continue
                ratios = cross_check(compiled, estimated)
                prescribed = prescribed_comm_bytes(compiled)
                cells = []
                for kind in COMMUNICATION_KEYS:
                    e = estimated.comm_bytes_per_chip[kind] or 0
                    c = prescribed[kind] or 0
                    cells.append(f"{c / e:5.2f}/{e / 1e6:<6.1f}" if e else ("    -       " if not c else f"+{c / 1e6:<11.1f}"))
                apart = sum(compiled.details["unprescribed_comm_bytes_per_chip"].values())
                cost = compiled.details["compiler_cost"] or {}
                seconds = cost.get("optimal_seconds")
                xla = f"{seconds * 1e3:8.3f}" if seconds else f"{'-':>8}"
                print(f"{label} " + " ".join(f"{cell:>12}" for cell in cells) + f" {ratios['total'] or 0:12.3f} {apart / 1e6:9.2f} {xla} {estimated.step_time_s * 1e3:8.3f}")


if __name__ == "__main__":
    main()
