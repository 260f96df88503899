"""Per-chip memory, estimated against compiled, for every built-in layout: decode at two batches
with batch-sharded attention, prefill at batch 1 over heads and at a large batch with
batch-sharded attention (Table 2's high-throughput prefill). Compiled for a TPU topology with
libtpu (no TPU needed); the compiled side is the compiler's total (arguments + outputs − donated +
temporaries) with its temporaries apart, and the KV cache the program takes, to show the program
holds it once. Prefill takes the chunk the estimate chooses to fit (`--prefill-chunk` to fix
one). GiB per chip.

    JAX_PLATFORMS=cpu python benchmarks/memory_table.py                      # palm-8b, v4 2x2x2
    JAX_PLATFORMS=cpu python benchmarks/memory_table.py --model palm-540b-64h --chips 64 --mesh 4x4x4
"""

from topology_arguments import topology_parser

from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell
from zoo.errors import ZooError

GIB = 2**30


def _cases(args) -> list[tuple[str, int, str]]:
    """(phase, batch, attention) for the run."""
    decode = [("decode", batch, "batch") for batch in args.decode_batches]
    return decode + [("prefill", 1, "heads"), ("prefill", args.prefill_batch, "batch")]


def _gib(value) -> str:
    return "-" if value is None else f"{value / GIB:.2f}"


def main() -> None:
    args = topology_parser(__doc__.splitlines()[0], prefill_batch=512).parse_args()
    print(f"{args.model} on {args.target} {args.mesh}; GiB per chip")
    print(f"{'layout':7} {'phase':7} {'batch':>5} {'attn':5} {'chunk':>5} {'est.':>7} {'compiled':>9} {'÷ est.':>7} {'temps':>7} {'KV':>6}  verdict")
    for layout in args.layouts:
        for phase, batch, attention in _cases(args):
            label = f"{layout:7} {phase:7} {batch:5} {attention:5}"
            cell = Cell(
                args.model, prefill_layout=layout, decode_layout=layout, prefill_attention=attention, decode_attention=attention,
                chips=args.chips, mesh=args.mesh, target=args.target, batch=batch, input_len=args.input_len,
                context_len=args.input_len, gen_tokens=64, phase=phase, prefill_chunk=args.prefill_chunk,
            )  # fmt: skip
            try:
                (estimated,) = estimate_cell(cell)
                (compiled,) = compile_cell(cell)
            except ZooError as error:
                print(f"{label} refused: {error}")
                continue
            if estimated.status != "ok":
                print(f"{label} refused: {estimated.error}")
                continue
            est, got = estimated.memory_per_chip_bytes["total"], compiled.memory_per_chip_bytes["total"]
            memory = (compiled.details or {}).get("compiler_memory") or {}
            ratio = f"{got / est:.3f}" if got else "-"
            verdict = "fits" if compiled.fits else (compiled.error or "does not fit")
            chunk = "-" if compiled.prefill_chunk is None else compiled.prefill_chunk
            print(f"{label} {chunk:>5} {_gib(est):>7} {_gib(got):>9} {ratio:>7} {_gib(memory.get('temporaries')):>7} {_gib(compiled.memory_per_chip_bytes['kv_cache']):>6}  {verdict}")


if __name__ == "__main__":
    main()
