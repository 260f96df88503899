"""The TPU7x (Ironwood) cells of issue 18, estimated and compiled: palm-540b-64h decode under 2d-ws
with attention over the batch at 64 and 128 devices, palm-8b prefill under wg-xyz at 16 and 32
devices (`--chips` counts devices on tpu-v7x: two per chip). Per device: step time, memory, fits,
and the compiled program's collective bytes by kind.

    .venv/bin/python benchmarks/tpu7x_cells.py
"""

from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell

GIB = 2**30
CELLS = (
    Cell("palm-540b-64h", chips=64, target="tpu-v7x", phase="decode", batch=64, decode_layout="2d-ws", decode_attention="batch"),
    Cell("palm-540b-64h", chips=128, target="tpu-v7x", phase="decode", batch=64, decode_layout="2d-ws", decode_attention="batch"),
    Cell("palm-8b", chips=16, target="tpu-v7x", phase="prefill", batch=16, input_len=256, prefill_layout="wg-xyz", prefill_attention="batch"),
    Cell("palm-8b", chips=32, target="tpu-v7x", phase="prefill", batch=32, input_len=256, prefill_layout="wg-xyz", prefill_attention="batch"),
)


def main() -> None:
    for cell in CELLS:
        (estimate,) = estimate_cell(cell)
        (compiled,) = compile_cell(cell)
        comm = ", ".join(f"{kind} {value / 2**20:.1f} MiB" for kind, value in compiled.comm_bytes_per_chip.items() if value)
        print(
            f"{cell.model} {cell.phase} batch {cell.batch}, {cell.chips} devices, mesh {estimate.mesh} ({estimate.physical_axes}): "
            f"estimate {estimate.step_time_s * 1e3:.1f} ms, {estimate.memory_per_chip_bytes['total'] / GIB:.2f} GiB, fits {estimate.fits}; "
            f"compiled {compiled.status}, {compiled.memory_per_chip_bytes['total'] / GIB:.2f} GiB, fits {compiled.fits}; {comm}"
        )


if __name__ == "__main__":
    main()
