"""Exceptions for checkpoints that cannot be written or read. Each message is one line naming what is
wrong and what would be valid, so the CLI prints it as is."""


class CheckpointError(ValueError):
    """Base class of every checkpoint error."""


class CheckpointExistsError(CheckpointError):
    """Saving would replace an existing checkpoint and overwriting was not asked for."""


class NotACheckpointError(CheckpointError):
    """A path a save would replace or delete that this tool did not write: a plain file, a directory
    without a readable manifest, or a staging directory without the marker a save puts in it."""


class ProtectedDirectoryError(CheckpointError):
    """A directory a save never replaces, checkpoint or not: the current directory, one holding it, a
    filesystem root, or the home directory."""


class CheckpointWriteError(CheckpointError):
    """Writing the checkpoint failed or cannot start: its parent cannot be created or written, or the
    storage failed part-way (a full disk). Nothing the failed save wrote is left behind."""


class InsufficientSpaceError(CheckpointWriteError):
    """The filesystem that would hold the checkpoint has less free space than the checkpoint needs."""


class IncompleteCheckpointError(CheckpointError):
    """A directory whose save never finished: it has no manifest, the commit marker written last."""


class ManifestError(CheckpointError):
    """A manifest that cannot be read or parsed (not UTF-8, not JSON, the wrong shape), or one in a
    format this version does not read."""


class ConfigMismatchError(CheckpointError):
    """A checkpoint written for another model configuration or weight format than the target's."""


class MissingArrayError(CheckpointError):
    """An array (or one of its files) that the manifest lists is absent, or the target lacks one."""


class TruncatedArrayError(CheckpointError):
    """An array file whose size differs from the size recorded when it was written."""


class ChecksumMismatchError(CheckpointError):
    """An array whose content differs from what was written (flipped bytes, a swapped file)."""


class CorruptArrayError(CheckpointError):
    """An array that the storage layer could not decode at all."""
