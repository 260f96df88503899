"""Weights on disk: sharded save and restore across layouts and chip counts, an integrity manifest,
int8 conversion, and the small trained model the project ships.

    from checkpoints import save, restore, read_manifest, load_shipped
"""

from checkpoints.convert import convert_dtype
from checkpoints.errors import (
    CheckpointError,
    CheckpointExistsError,
    ChecksumMismatchError,
    ConfigMismatchError,
    CorruptArrayError,
    IncompleteCheckpointError,
    ManifestError,
    MissingArrayError,
    TruncatedArrayError,
)
from checkpoints.manifest import Manifest, read_manifest
from checkpoints.restore import abstract_model, restore, verify
from checkpoints.save import save
from checkpoints.shipped import SHIPPED_CHECKPOINT, load_shipped

__all__ = [
    "CheckpointError",
    "CheckpointExistsError",
    "ChecksumMismatchError",
    "ConfigMismatchError",
    "CorruptArrayError",
    "IncompleteCheckpointError",
    "Manifest",
    "ManifestError",
    "MissingArrayError",
    "SHIPPED_CHECKPOINT",
    "TruncatedArrayError",
    "abstract_model",
    "convert_dtype",
    "load_shipped",
    "read_manifest",
    "restore",
    "save",
    "verify",
]
