"""Reproduces the shipped checkpoint: trains palm-4m on the standard library's source, stores it in
bf16, and records its held-out bits per byte (bf16 and int8) beside it.

    JAX_PLATFORMS=cpu python -m checkpoints.shipped.train_small_model --out checkpoints/palm-4m --overwrite

About 16 minutes on two idle CPU cores (29 when sharing them with another job).
"""

import argparse
import json
import pathlib
import platform
import sys
import time

import jax

from checkpoints.convert import convert_dtype
from checkpoints.shipped.corpus import HELD_OUT_WINDOW_BYTES, HELD_OUT_WINDOWS, held_out_windows, source_files, stdlib_root
from checkpoints.shipped.evaluate import bits_per_byte
from checkpoints.errors import CheckpointError
from checkpoints.save import ensure_writable, save
from checkpoints.shipped.training import TrainingRecipe, train
from zoo.quantization import quantize

_LICENCE_NOTE = """\
This checkpoint is a model trained on the source files of the Python standard library, selected by
checkpoints/shipped/corpus.py. That text is copyright the Python Software Foundation and others and is
distributed under the PSF License Agreement, reproduced below from the LICENSE.txt of the standard
library the model was trained on. The training text itself is not redistributed here.

"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("checkpoints/palm-4m"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at --out")
    arguments = parser.parse_args(argv)
    try:
        ensure_writable(arguments.out, arguments.overwrite)  # refused now, not after minutes of training
    except CheckpointError as error:
        print(f"{parser.prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(2)

    recipe = TrainingRecipe()
    started = time.perf_counter()
    trained = train(recipe, log=lambda line: print(line, file=sys.stderr, flush=True))
    record = ship(trained, recipe, time.perf_counter() - started, arguments.out, overwrite=arguments.overwrite)
    print(json.dumps(record))


def ship(trained, recipe: TrainingRecipe, training_seconds: float, out: pathlib.Path, *, overwrite: bool) -> dict:
    """Saves the trained model in bf16 at `out` with its training record and the data's licence."""
    shipped = convert_dtype(trained, "bfloat16")
    held_out = held_out_windows()
    record = {
        "recipe": recipe.__dict__,
        "training_wall_seconds": round(training_seconds, 1),
        "held_out_bits_per_byte": {
            "float32": round(bits_per_byte(trained, held_out), 4),
            "bfloat16": round(bits_per_byte(shipped, held_out), 4),
            "int8": round(bits_per_byte(jax.jit(quantize)(shipped), held_out), 4),
        },
        "held_out": {"windows": HELD_OUT_WINDOWS, "window_bytes": HELD_OUT_WINDOW_BYTES, "files": len(source_files("held-out"))},
        "train_files": len(source_files("train")),
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "devices": str(jax.devices())},
    }
    save(shipped, out, overwrite=overwrite)
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (out / "LICENCE-DATA.txt").write_text(_LICENCE_NOTE + (stdlib_root() / "LICENSE.txt").read_text(encoding="utf-8"), encoding="utf-8")
    return record


if __name__ == "__main__":
    main()
