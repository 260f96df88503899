"""The step time of one `zoo run` cell under two revisions of the code, alternated in one process run
(this machine is shared and noisy: only a ratio measured side by side means anything).

    python benchmarks/compare_revisions.py --base HEAD~1 --rounds 3 -- \
        --model palm-150m --phase decode --batch 1 --input-len 512 --gen-tokens 1 --chips 1

Each revision is checked out once into a temporary git worktree; each round runs `zoo run` (its own
warm-up and median of --repeats) under the base, then under the working tree, and the script prints
every round's step times, the medians of the rounds and working tree ÷ base.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def step_time(tree: Path, zoo_arguments: list[str], phase: str) -> float:
    # The tree goes first on sys.path, ahead of the editable install's.
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); from cli.main import main; main()"
    result = subprocess.run([sys.executable, "-c", code, "run", *zoo_arguments, "--format", "json"], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    (row,) = [row for row in rows if row["phase"] == phase]
    return row["step_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the revision to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phase", default="decode", choices=("prefill", "decode"))
    parser.add_argument("zoo_arguments", nargs=argparse.REMAINDER, help="after --: the `zoo run` cell flags")
    arguments = parser.parse_args()
    zoo_arguments = [argument for argument in arguments.zoo_arguments if argument != "--"] + ["--phase", arguments.phase]
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), arguments.base], check=True)
        try:
            times: dict[str, list[float]] = {"base": [], "working tree": []}
            for round_number in range(arguments.rounds):
                for name, tree in (("base", base), ("working tree", ROOT)):
                    times[name].append(step_time(tree, zoo_arguments, arguments.phase))
                print(f"round {round_number + 1}: base {times['base'][-1] * 1000:.1f} ms, working tree {times['working tree'][-1] * 1000:.1f} ms")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"median of {arguments.rounds} rounds: base ({arguments.base}) {medians['base'] * 1000:.1f} ms, working tree {medians['working tree'] * 1000:.1f} ms, "
          f"working tree / base {medians['working tree'] / medians['base']:.2f}")


if __name__ == "__main__":
    main()
