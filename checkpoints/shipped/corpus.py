"""The text the shipped model learns from: the Python standard library's own source files, present on
every machine with Python and no download. Their text is under the PSF licence (see
checkpoints/palm-4m/LICENCE-DATA.txt, which the training script writes beside the checkpoint).

Files are split by a hash of their path relative to the stdlib root, so the split is the same on every
machine that has the same file, and a held-out file is never seen in training whatever else differs.
"""

import hashlib
import pathlib
import sysconfig

import numpy as np

# Test suites and bundled applications are left out: they are large, repetitive, and not the
# library's own code.
_EXCLUDED_DIRECTORIES = frozenset({"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo"})
# One file in twenty (by path hash) is held out for evaluation.
_HELD_OUT_ONE_IN = 20


def stdlib_root() -> pathlib.Path:
    return pathlib.Path(sysconfig.get_paths()["stdlib"])


def is_held_out(relative_path: str) -> bool:
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % _HELD_OUT_ONE_IN == 0


def source_files(split: str, root: pathlib.Path | None = None) -> list[pathlib.Path]:
    """The stdlib's .py files of `split` ("train" or "held-out"), sorted by relative path."""
    if split not in ("train", "held-out"):
        raise ValueError(f"unknown split {split!r}; valid: train, held-out")
    root = stdlib_root() if root is None else root
    chosen = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if _EXCLUDED_DIRECTORIES & set(relative.parts):
            continue
        if is_held_out(relative.as_posix()) == (split == "held-out"):
            chosen.append(path)
    return chosen


def corpus_bytes(split: str, root: pathlib.Path | None = None) -> np.ndarray:
    """The split's files concatenated as one uint8 array of bytes."""
    return np.frombuffer(b"".join(path.read_bytes() for path in source_files(split, root)), dtype=np.uint8)


# The held-out set every report and test of the shipped model uses: 32 windows of 257 bytes (256
# predicted bytes each), 8,192 predictions spread evenly over the held-out files.
HELD_OUT_WINDOWS = 32
HELD_OUT_WINDOW_BYTES = 257


def held_out_windows() -> np.ndarray:
    return windows(corpus_bytes("held-out"), HELD_OUT_WINDOW_BYTES, HELD_OUT_WINDOWS)


def windows(text: np.ndarray, length: int, count: int) -> np.ndarray:
    """`count` windows of `length` consecutive bytes spread evenly over `text`: [count, length] int32."""
    if len(text) < length * count:
        raise ValueError(f"{len(text)} bytes cannot hold {count} disjoint windows of {length}")
    stride = (len(text) - length) // max(count - 1, 1)
    starts = stride * np.arange(count)
    return np.stack([text[start : start + length] for start in starts]).astype(np.int32)
