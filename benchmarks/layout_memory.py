"""Per-chip bytes of weights and KV cache for a model on the local devices under every built-in
layout: measured from the real sharded arrays, beside the paper's formulas (the estimator).

    python benchmarks/layout_memory.py --model palm-tiny --mesh 2x2x2 --batch 8 --context-len 256

A mesh needs as many devices as it has points: unless XLA_FLAGS already says otherwise, the script
forces that many host CPU devices before JAX starts.
"""

import argparse
import math
import os
import sys


def _force_host_devices(argv: list[str]) -> None:
    mesh = argv[argv.index("--mesh") + 1] if "--mesh" in argv[:-1] else "2x2x2"
    try:
        count = math.prod(int(size) for size in mesh.split("x"))
    except ValueError:
        return  # parse_mesh reports the malformed mesh below
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}".strip()
        os.environ.setdefault("JAX_PLATFORMS", "cpu")


_force_host_devices(sys.argv)

import jax  # noqa: E402

from layouts import ATTENTION_LAYOUTS, FFN_LAYOUTS, Partitioning, init_sharded_model, make_mesh, parse_mesh  # noqa: E402
from layouts.bench.cell import Cell  # noqa: E402
from layouts.bench.estimate_rows import estimate_cell  # noqa: E402
from layouts.sharding import cache_shardings  # noqa: E402
from zoo import abstract_cache, get_preset, init_cache  # noqa: E402


def largest_shard_bytes(tree) -> int:
    """Bytes on the most loaded device (equal shards when dimensions divide)."""
    per_device: dict = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
    return max(per_device.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="palm-tiny")
    parser.add_argument("--mesh", default="2x2x2")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context-len", type=int, default=256)
    parser.add_argument("--gen-tokens", type=int, default=64)
    args = parser.parse_args()
    config = get_preset(args.model)
    shape = parse_mesh(args.mesh)
    mesh = make_mesh(shape)
    chips = shape[0] * shape[1] * shape[2]
    print(f"{args.model} on {chips} {jax.devices()[0].platform} devices, mesh {args.mesh}, batch {args.batch}, KV cache of {args.context_len} + {args.gen_tokens} tokens")
    print(f"{'layout':8} {'attention':9} {'weights measured':>17} {'formula':>9} {'KV measured':>12} {'formula':>9}")
    for ffn in FFN_LAYOUTS:
        for attention in ("heads", "batch"):
            partitioning = Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS[attention], config)
            model = init_sharded_model(config, partitioning, mesh, jax.random.key(0))
            cell = Cell(args.model, decode_layout=ffn, decode_attention=attention, chips=chips, mesh=args.mesh, phase="decode",
                        batch=args.batch, input_len=args.context_len, gen_tokens=args.gen_tokens, target="tpu-v4")  # fmt: skip
            cache_len = cell.cache_len("decode")
            sharding = cache_shardings(abstract_cache(config, args.batch, cache_len), partitioning, mesh)
            cache = jax.jit(lambda: init_cache(config, args.batch, cache_len), out_shardings=sharding)()
            (row,) = estimate_cell(cell)
            memory = row.memory_per_chip_bytes
            print(
                f"{ffn:8} {attention:9} {largest_shard_bytes(model):>17,} {memory['weights']:>9,} "
                f"{largest_shard_bytes((cache.k, cache.v)):>12,} {memory['kv_cache']:>9,}"
            )


if __name__ == "__main__":
    main()
