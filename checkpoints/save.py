"""Saving a model (any sharding, any number of hosts) as a checkpoint directory, atomically.

The arrays and then the manifest are written into a sibling staging directory,
`<name>.incomplete`, which is renamed to `<name>` only once complete. A save killed at any point
leaves either the previous checkpoint untouched, or a staging directory without a manifest that
every reader reports as incomplete.
"""

import os
import pathlib
import shutil

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from checkpoints.array_tree import logical_names, named_arrays, weight_format
from checkpoints.checksum import ALGORITHM, array_checksums
from checkpoints.errors import CheckpointExistsError
from checkpoints.manifest import ARRAYS_DIRECTORY, ArrayRecord, Manifest, array_files, write_manifest, writer_versions
from checkpoints.storage import array_checkpointer
from zoo import Transformer

STAGING_SUFFIX = ".incomplete"


def staging_directory(directory: pathlib.Path) -> pathlib.Path:
    return directory.with_name(directory.name + STAGING_SUFFIX)


def ensure_writable(directory: str | os.PathLike, overwrite: bool) -> None:
    """Raises CheckpointExistsError unless a save to `directory` may go ahead (callers check early,
    before the work that produces the model)."""
    if pathlib.Path(directory).exists() and not overwrite:
        raise CheckpointExistsError(f"{directory} already exists; choose a new directory or pass overwrite (--overwrite) to replace it")


def save(model: Transformer, directory: str | os.PathLike, *, overwrite: bool = False) -> Manifest:
    """Writes `model` to `directory`; an existing checkpoint there is replaced only with `overwrite`.
    One writer per directory: a second save to the same place at the same time is not guarded against."""
    directory = pathlib.Path(directory).absolute()
    ensure_writable(directory, overwrite)
    staging = staging_directory(directory)
    is_writer = jax.process_index() == 0
    if is_writer:
        # A staging directory left by an interrupted save holds nothing worth keeping.
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    multihost_utils.sync_global_devices(f"checkpoint staging {staging}")

    arrays = named_arrays(model)
    array_checkpointer().save(staging / ARRAYS_DIRECTORY, args=ocp.args.PyTreeSave(arrays))
    names = logical_names(model)
    checksums = array_checksums(arrays)
    records = {
        name: ArrayRecord(tuple(array.shape), str(array.dtype), names.get(name, ()), checksums[name])
        for name, array in arrays.items()
    }
    manifest = Manifest(
        config=model.config,
        weights=weight_format(model),
        arrays=records,
        files=array_files(staging / ARRAYS_DIRECTORY),
        checksum_algorithm=ALGORITHM,
        writer=writer_versions(),
    )
    if is_writer:
        write_manifest(staging, manifest)
        _commit(staging, directory)
    multihost_utils.sync_global_devices(f"checkpoint committed {directory}")
    return manifest


def _commit(staging: pathlib.Path, directory: pathlib.Path) -> None:
    if not directory.exists():
        os.rename(staging, directory)
        return
    # A directory cannot be atomically replaced by another, so the old one steps aside first; if the
    # process dies between the two renames, both complete checkpoints are still on disk.
    replaced = directory.with_name(directory.name + ".replaced")
    shutil.rmtree(replaced, ignore_errors=True)
    os.rename(directory, replaced)
    os.rename(staging, directory)
    shutil.rmtree(replaced)
