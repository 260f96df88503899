"""The trained model the project ships: palm-4m, byte-level, trained on the Python standard
library's source by checkpoints/train_small_model.py."""

import pathlib

from checkpoints.manifest import read_manifest
from checkpoints.restore import manifest_model, restore
from zoo import Transformer

SHIPPED_CHECKPOINT = pathlib.Path(__file__).resolve().parent / "palm-4m"


def load_shipped(shardings=None) -> Transformer:
    """The shipped model, placed by `shardings` (a pytree matching it) or on the first device."""
    return restore(SHIPPED_CHECKPOINT, manifest_model(read_manifest(SHIPPED_CHECKPOINT)), shardings)
