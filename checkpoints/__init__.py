"""Weights on disk: sharded save and restore across layouts and chip counts, an integrity manifest,
int8 conversion, and the small trained model the project ships. Saves are atomic and delete only
what this tool wrote (save.py, ownership.py).

    from checkpoints import save, restore, read_manifest, load_shipped
"""

from checkpoints.convert import convert_dtype
from checkpoints.errors import (
    CheckpointError,
    CheckpointExistsError,
    CheckpointWriteError,
    ChecksumMismatchError,
    ConfigMismatchError,
    CorruptArrayError,
    IncompleteCheckpointError,
    InsufficientSpaceError,
    ManifestError,
    MissingArrayError,
    NotACheckpointError,
    ProtectedDirectoryError,
    TruncatedArrayError,
)
from checkpoints.manifest import Manifest, read_manifest
from checkpoints.restore import manifest_model, restore, verify
from checkpoints.save import save
from checkpoints.shipped import SHIPPED_CHECKPOINT, load_shipped

__all__ = [
    "CheckpointError",
    "CheckpointExistsError",
    "CheckpointWriteError",
    "ChecksumMismatchError",
    "ConfigMismatchError",
    "CorruptArrayError",
    "IncompleteCheckpointError",
    "InsufficientSpaceError",
    "Manifest",
    "ManifestError",
    "MissingArrayError",
    "NotACheckpointError",
    "ProtectedDirectoryError",
    "SHIPPED_CHECKPOINT",
    "TruncatedArrayError",
    "manifest_model",
    "convert_dtype",
    "load_shipped",
    "read_manifest",
    "restore",
    "save",
    "verify",
]
