"""Saving a model (any sharding, any number of hosts) as a checkpoint directory: atomically, and
deleting nothing this tool did not write (ownership.py says how that is proved).

With several processes (`layouts.processes`), every process runs `save` with its part of the model
and writes the shards its devices hold; process 0 alone prepares the staging directory, writes the
manifest (once every process has written its shards) and renames it into place, and every process
returns only after the rename. The directory must be one every process sees (a shared filesystem).
A process that dies mid-save stops the others (the runtime's heartbeat) before the rename: the
previous checkpoint stays.

Checked before anything is written (`ensure_writable`, which callers also run before the work that
produces the model): an existing path is replaced only with `overwrite`, and only if it is a
checkpoint this tool wrote, never the current directory, a directory holding it, a filesystem root or
the home directory; a leftover in the way is the tool's own; the parent can be created and written;
the filesystem has room for the checkpoint.

The arrays and then the manifest are written into `<name>.incomplete`, marked as the tool's when
created, which is renamed to `<name>` only once complete. A save that fails while writing (a full
disk, a storage error) removes its staging directory and raises one CheckpointWriteError line; the
previous checkpoint is untouched. A save killed outright leaves the previous checkpoint and a marked
staging directory without a manifest, which every reader reports as incomplete and the next save to
the same place removes.
"""

import logging
import math
import os
import pathlib
import shutil
import tempfile

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from checkpoints.array_tree import logical_names, named_arrays, weight_format
from checkpoints.checksum import ALGORITHM, array_checksums
from checkpoints.errors import (
    CheckpointExistsError,
    CheckpointWriteError,
    InsufficientSpaceError,
    NotACheckpointError,
    ProtectedDirectoryError,
)
from checkpoints.manifest import ARRAYS_DIRECTORY, MANIFEST_FILE, ArrayRecord, Manifest, array_files, write_manifest, writer_versions
from checkpoints.ownership import (
    STAGING_MARKER,
    checkpoint_path,
    is_checkpoint,
    is_staging,
    mark_staging,
    remove_checkpoint,
    remove_staging,
    replaced_directory,
    staging_directory,
    tree_bytes,
)
from checkpoints.storage import array_checkpointer
from checkpoints.storage_failures import failure_reason, reported_once
from zoo import Transformer

logger = logging.getLogger(__name__)


def checkpoint_bytes(model) -> int:
    """Bytes of the arrays of `model` (concrete or abstract): what a save of it writes, less the few
    kB of the store's metadata."""
    return sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in named_arrays(model).values())


def ensure_writable(directory: str | os.PathLike, overwrite: bool, needed_bytes: int | None = None) -> None:
    """Raises a CheckpointError unless a save to `directory` may go ahead. With `needed_bytes` (the
    checkpoint's size), the free space must hold it, counting the leftovers the save would remove."""
    directory = checkpoint_path(directory)
    replacing = os.path.lexists(directory)
    if replacing:
        if not overwrite:
            if not is_checkpoint(directory):
                raise CheckpointExistsError(f"{directory} already exists and is not a checkpoint this tool wrote; choose a new directory")
            raise CheckpointExistsError(
                f"{directory} already exists; choose a new directory, or pass overwrite (--overwrite) to replace the checkpoint there"
            )
        _check_replaceable(directory)
    staging, replaced = staging_directory(directory), replaced_directory(directory)
    reclaimable = 0
    if os.path.lexists(staging):
        if not is_staging(staging):
            raise NotACheckpointError(
                f"{staging} is in the way: saves to {directory} stage there, and it is not a staging directory this tool "
                f"created (no {STAGING_MARKER} in it); move or delete it"
            )
        reclaimable += tree_bytes(staging)
    if replacing and os.path.lexists(replaced):
        if not is_checkpoint(replaced):
            raise NotACheckpointError(
                f"{replaced} is in the way: replacing {directory} sets the old checkpoint aside there, and it is not a "
                f"checkpoint this tool wrote (no readable {MANIFEST_FILE}); move or delete it"
            )
        reclaimable += tree_bytes(replaced)
    parent = _writable_ancestor(directory)
    if needed_bytes is not None:
        free = shutil.disk_usage(parent).free
        if needed_bytes > free + reclaimable:
            freed = f" (and {reclaimable:,} in leftovers the save removes)" if reclaimable else ""
            raise InsufficientSpaceError(
                f"cannot write checkpoint {directory}: it needs {needed_bytes:,} bytes and {parent} has {free:,} free{freed}; "
                "free some space or choose another directory"
            )


def _check_replaceable(directory: pathlib.Path) -> None:
    real = directory.resolve()
    working = pathlib.Path.cwd().resolve()
    if real == working or real in working.parents:
        relation = "is" if real == working else "holds"
        raise ProtectedDirectoryError(f"{directory} {relation} the current directory, which overwrite (--overwrite) never replaces; choose another directory")
    if real.parent == real:
        raise ProtectedDirectoryError(f"{directory} is a filesystem root, which overwrite (--overwrite) never replaces; choose another directory")
    home = pathlib.Path(os.path.expanduser("~"))
    if home.is_absolute() and (real == home.resolve() or real in home.resolve().parents):
        relation = "is" if real == home.resolve() else "holds"
        raise ProtectedDirectoryError(f"{directory} {relation} the home directory, which overwrite (--overwrite) never replaces; choose another directory")
    if directory.is_symlink():
        raise NotACheckpointError(f"{directory} is a symbolic link; overwrite (--overwrite) replaces only a checkpoint directory itself: give the path it points to")
    if not directory.is_dir():
        raise NotACheckpointError(
            f"{directory} is a file, not a checkpoint; overwrite (--overwrite) replaces only a checkpoint directory this tool wrote: "
            "choose another path"
        )
    if not is_checkpoint(directory):
        raise NotACheckpointError(
            f"{directory} is not a checkpoint (no readable {MANIFEST_FILE}); overwrite (--overwrite) replaces only a checkpoint "
            "directory this tool wrote: choose another directory"
        )


def _writable_ancestor(directory: pathlib.Path) -> pathlib.Path:
    """The nearest existing ancestor of `directory`, proved writable by creating a directory in it
    (permission bits say little to root, or on /proc and read-only mounts)."""
    ancestor = directory.parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CheckpointWriteError(f"cannot write checkpoint {directory}: {ancestor} is not a directory; choose a path under a writable directory")
    try:
        probe = tempfile.mkdtemp(prefix=".zoo-write-probe-", dir=ancestor)
    except OSError as error:
        raise CheckpointWriteError(
            f"cannot write checkpoint {directory}: cannot create directories in {ancestor} ({error.strerror}); "
            "choose a path under a writable directory"
        ) from None
    os.rmdir(probe)
    return ancestor


def save(model: Transformer, directory: str | os.PathLike, *, overwrite: bool = False) -> Manifest:
    """Writes `model` to `directory`; an existing checkpoint there is replaced only with `overwrite`.
    Raises a CheckpointError before writing anything if the save cannot or must not go ahead, and a
    CheckpointWriteError, having removed what it wrote, if writing fails. One writer per directory:
    a second save to the same place at the same time is not guarded against."""
    directory = checkpoint_path(directory)
    ensure_writable(directory, overwrite, checkpoint_bytes(model))
    staging = staging_directory(directory)
    is_writer = jax.process_index() == 0
    if is_writer:
        try:
            _remove_leftovers(directory)
            mark_staging(staging)
        except OSError as error:
            raise CheckpointWriteError(f"cannot write checkpoint {directory}: {failure_reason(error)}") from error
    multihost_utils.sync_global_devices(f"checkpoint staging {staging}")
    try:
        manifest = _stage_arrays(model, staging, directory)
        if is_writer:
            write_manifest(staging, manifest)
            _commit(staging, directory)
    except BaseException as error:
        if is_writer:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise CheckpointWriteError(f"cannot write checkpoint {directory}: {failure_reason(error)}") from error
        raise
    multihost_utils.sync_global_devices(f"checkpoint committed {directory}")
    return manifest


def _remove_leftovers(directory: pathlib.Path) -> None:
    # ensure_writable proved each of these the tool's own: a staging directory is always in the way,
    # a set-aside checkpoint only when replacing (else it may be the last copy of one).
    staging, replaced = staging_directory(directory), replaced_directory(directory)
    if os.path.lexists(staging):
        size = tree_bytes(staging)
        remove_staging(staging)
        logger.warning("removed %s (%s bytes), the staging directory of an earlier save that did not finish", staging, f"{size:,}")
    if os.path.lexists(directory) and os.path.lexists(replaced):
        size = tree_bytes(replaced)
        remove_checkpoint(replaced)
        logger.warning("removed %s (%s bytes), a checkpoint set aside by an earlier --overwrite save that did not finish", replaced, f"{size:,}")


def _stage_arrays(model: Transformer, staging: pathlib.Path, directory: pathlib.Path) -> Manifest:
    """Writes the arrays of `model` into `staging`; returns the manifest that describes them."""
    arrays = named_arrays(model)
    try:
        with reported_once():
            array_checkpointer().save(staging / ARRAYS_DIRECTORY, args=ocp.args.PyTreeSave(arrays))
    except Exception as error:  # the storage layer's errors have no common type (tensorstore raises ValueError)
        raise CheckpointWriteError(f"cannot write checkpoint {directory}: {failure_reason(error)}") from error
    # With several processes each writes its own shards: the manifest lists the files once all are there.
    multihost_utils.sync_global_devices(f"checkpoint arrays written {staging}")
    names = logical_names(model)
    checksums = array_checksums(arrays)
    records = {
        name: ArrayRecord(tuple(array.shape), str(array.dtype), names.get(name, ()), checksums[name])
        for name, array in arrays.items()
    }
    return Manifest(
        config=model.config,
        weights=weight_format(model),
        arrays=records,
        files=array_files(staging / ARRAYS_DIRECTORY),
        checksum_algorithm=ALGORITHM,
        writer=writer_versions(),
    )


def _commit(staging: pathlib.Path, directory: pathlib.Path) -> None:
    if os.path.lexists(directory):
        # A directory cannot be atomically replaced by another, so the old one steps aside first; if the
        # process dies between the two renames, both complete checkpoints are still on disk.
        replaced = replaced_directory(directory)
        os.rename(directory, replaced)
        try:
            os.rename(staging, directory)
        except OSError:
            os.rename(replaced, directory)
            raise
        _tidy_after_commit(lambda: remove_checkpoint(replaced), f"{replaced} (the previous checkpoint, set aside) could not be removed")
    else:
        os.rename(staging, directory)
    _tidy_after_commit(lambda: (directory / STAGING_MARKER).unlink(), f"{directory / STAGING_MARKER} could not be removed")


def _tidy_after_commit(tidy, failure: str) -> None:
    # The new checkpoint is in place: a failure to tidy up after it is reported, not raised.
    try:
        tidy()
    except OSError as error:
        logger.warning("%s (%s); delete it by hand", failure, error.strerror)
