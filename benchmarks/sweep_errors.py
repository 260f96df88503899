"""The error rows of the default sweep (issue 14): the four paper models × every built-in FFN and
attention layout × chips 8..256 × batches 1..1024, both phases, estimated; how many rows are errors
and of which kinds (the message with its numbers and names taken out), most frequent first.

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/sweep_errors.py [--examples]
"""

import argparse
import collections
import re

from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_or_error_rows
from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS

MODELS = ("palm-8b", "palm-62b", "palm-540b-64h", "mtnlg-530b")
CHIPS = (8, 16, 32, 64, 128, 256)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _kind(error: str) -> str:
    """The error with its sizes, axes and names replaced, so that one cause counts once."""
    kind = re.sub(r"'[^']*'", "'…'", error)
    kind = re.sub(r"\b[xyz](=\d+)?( x [xyz](=\d+)?)*\b", "AXES", kind)
    return re.sub(r"\d+(\.\d+)?", "N", kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", action="store_true", help="print one full message of each kind")
    examples = parser.parse_args().examples
    rows = [
        row
        for model in MODELS
        for ffn in FFN_LAYOUTS
        for attention in ATTENTION_LAYOUTS
        for chips in CHIPS
        for batch in BATCHES
        for row in estimate_or_error_rows(
            Cell(model, prefill_layout=ffn, decode_layout=ffn, prefill_attention=attention, decode_attention=attention, chips=chips, batch=batch)
        )
    ]
    errors = [row for row in rows if row.status == "error"]
    print(f"{len(rows)} rows, {len(errors)} errors")
    kinds = collections.Counter(_kind(row.error) for row in errors)
    first = {}
    for row in errors:
        first.setdefault(_kind(row.error), row)
    for kind, count in kinds.most_common():
        print(f"{count:6}  {kind}")
        if examples:
            row = first[kind]
            print(f"        e.g. {row.model} {row.layout}/{row.attention} {row.chips} chips batch {row.batch} {row.phase}: {row.error}")


if __name__ == "__main__":
    main()
