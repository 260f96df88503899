"""Cold and warm `zoo compile` (issue 18): palm-540b-64h decode at batch 64 (attention over the
batch) on TPU v4 4x4x4, compiled with an empty compile cache and then again, each a fresh `zoo`
process as a user runs it. Prints, per round, the row's compile step (`details.compile_step_s`:
lowering plus compiling, or plus finding it in the cache), its compile time (where it was compiled)
and the process's wall time; the medians; and whether the warm row equals the cold one.

    .venv/bin/python benchmarks/compile_cache.py [--rounds 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = ["compile", "--model", "palm-540b-64h", "--chips", "64", "--target", "tpu-v4:4x4x4", "--phase", "decode", "--batch", "64", "--decode-attention", "batch", "--format", "json"]
ZOO = str(Path(sys.executable).parent / "zoo")


def _compile(cache: str) -> tuple[dict, float]:
    started = time.perf_counter()
    out = subprocess.run([ZOO, *COMMAND], capture_output=True, text=True, env=os.environ | {"ZOO_CACHE_DIR": cache, "ZOO_COMPILE_CACHE": "on"}, check=True)
    return json.loads(out.stdout.splitlines()[0]), time.perf_counter() - started


def _comparable(row: dict) -> dict:
    details = {key: value for key, value in row["details"].items() if key not in ("compile_cache", "compile_step_s")}
    return row | {"details": details, "env": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    figures = {"cold": [], "warm": []}
    print(f"zoo {' '.join(COMMAND)}")
    for round_ in range(rounds):
        with tempfile.TemporaryDirectory() as cache:
            cold, cold_wall = _compile(cache)
            warm, warm_wall = _compile(cache)
        same = _comparable(cold) == _comparable(warm)
        for name, row, wall in (("cold", cold, cold_wall), ("warm", warm, warm_wall)):
            figures[name].append((row["details"]["compile_step_s"], wall))
            print(f"round {round_ + 1} {name}: cache {row['details']['compile_cache']:<4} compile step {row['details']['compile_step_s']:6.2f} s, "
                  f"compile time {row['compile_time_s']:6.2f} s, process {wall:6.2f} s")  # fmt: skip
        print(f"round {round_ + 1}: warm row {'equals' if same else 'DIFFERS FROM'} the cold row")
    for name, values in figures.items():
        print(f"median {name}: compile step {statistics.median(v[0] for v in values):.2f} s, process {statistics.median(v[1] for v in values):.2f} s")


if __name__ == "__main__":
    main()
