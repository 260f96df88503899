"""The command-line arguments the compile-for-a-topology benchmarks share: which model, target,
mesh, batches and layouts to compile."""

import argparse

from layouts import FFN_LAYOUTS


def topology_parser(description: str, prefill_batch: int) -> argparse.ArgumentParser:
    """A parser with the shared arguments (palm-8b on a v4 2x2x2 by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="palm-8b")
    parser.add_argument("--target", default="tpu-v4")
    parser.add_argument("--chips", type=int, default=8)
    parser.add_argument("--mesh", default="2x2x2")
    parser.add_argument("--decode-batches", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--prefill-batch", type=int, default=prefill_batch)
    parser.add_argument("--input-len", type=int, default=2048)
    parser.add_argument("--prefill-chunk", type=int, default=None, help="prompt tokens per sequence a layer takes at a time [default: the estimate's choice]")
    parser.add_argument("--layouts", nargs="+", default=list(FFN_LAYOUTS))
    return parser
