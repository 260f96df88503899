"""The trained model the project ships: palm-4m, byte-level, trained on the Python standard
library's source. This package holds what made it and measures it, apart from the checkpoint
format itself (`checkpoints`): the corpus (`corpus`), the recipe (`training`), the script that
reproduces it (`train_small_model`) and its held-out bits per byte (`evaluate`). The arrays live in
`checkpoints/palm-4m/`."""

import pathlib

from checkpoints.manifest import read_manifest
from checkpoints.restore import manifest_model, restore
from zoo import Transformer

SHIPPED_CHECKPOINT = pathlib.Path(__file__).resolve().parents[1] / "palm-4m"


def load_shipped(shardings=None) -> Transformer:
    """The shipped model, placed by `shardings` (a pytree matching it) or on the first device."""
    return restore(SHIPPED_CHECKPOINT, manifest_model(read_manifest(SHIPPED_CHECKPOINT)), shardings)
