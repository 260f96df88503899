"""Restoring a checkpoint into a target: an abstract model (its config, weight format and shapes)
and, optionally, a matching pytree of shardings. Each device's slice is read straight into that
sharding, so a checkpoint written under one layout and chip count restores under any other.

Checks run from the cheapest up, each failing with its own error: the manifest exists (else the save
never finished), it is for the target's config and weight format, every array and file is present,
every file has the size it was written with, the arrays decode, and their checksums match.
"""

import dataclasses
import os
import pathlib

import jax
import orbax.checkpoint as ocp

from checkpoints.array_tree import named_arrays, weight_format, with_arrays
from checkpoints.checksum import ALGORITHM, array_checksums
from checkpoints.errors import (
    ChecksumMismatchError,
    ConfigMismatchError,
    CorruptArrayError,
    ManifestError,
    MissingArrayError,
    TruncatedArrayError,
)
from checkpoints.manifest import ARRAYS_DIRECTORY, Manifest, read_manifest
from checkpoints.storage import array_checkpointer
from zoo import Transformer
from zoo.quantization import abstract_model

# Fields that describe a config without changing its arrays' meaning.
_DESCRIPTIVE_FIELDS = ("description",)


def manifest_model(manifest: Manifest) -> Transformer:
    """The abstract model a checkpoint holds, built from its manifest alone."""
    return abstract_model(manifest.config, "int8" if manifest.weights == "int8" else "bf16")


def restore(directory: str | os.PathLike, target: Transformer, shardings=None, *, verify_checksums: bool = True) -> Transformer:
    """The checkpoint at `directory` as a model shaped like `target` (abstract or concrete), each
    array placed by the matching leaf of `shardings` (default: the first local device)."""
    directory = pathlib.Path(directory)
    manifest = read_manifest(directory)
    check_target(manifest, target, directory)
    check_files(manifest, directory)
    wanted = named_arrays(target)
    placements = named_arrays(shardings) if shardings is not None else {}
    default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    targets = {
        name: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=placements.get(name, default))
        for name, leaf in wanted.items()
    }
    try:
        arrays = array_checkpointer().restore(
            directory / ARRAYS_DIRECTORY,
            args=ocp.args.PyTreeRestore(item=targets, restore_args=ocp.checkpoint_utils.construct_restore_args(targets)),
        )
    except Exception as error:  # the storage layer's errors have no common type; name the array if it can be told
        culprit = next((name for name in targets if name in str(error)), None)
        where = f"array {culprit}" if culprit else "the arrays"
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CorruptArrayError(f"{directory}: reading {where} failed: {first_line}") from error
    if verify_checksums:
        check_checksums(manifest, arrays, directory)
    return with_arrays(target, arrays)


def check_target(manifest: Manifest, target: Transformer, directory: pathlib.Path) -> None:
    ours, theirs = dataclasses.asdict(manifest.config), dataclasses.asdict(target.config)
    differing = [field for field in ours if field not in _DESCRIPTIVE_FIELDS and ours[field] != theirs[field]]
    if differing:
        details = ", ".join(f"{field}={ours[field]!r} (target {theirs[field]!r})" for field in differing)
        raise ConfigMismatchError(f"{directory}: checkpoint is for another config: {details}")
    if weight_format(target) != manifest.weights:
        raise ConfigMismatchError(
            f"{directory}: checkpoint holds {manifest.weights} weights, the target {weight_format(target)}; "
            "build the target with manifest_model(manifest), then quantize or convert after restoring"
        )
    wanted = named_arrays(target)
    absent = sorted(set(wanted) - set(manifest.arrays))
    if absent:
        raise MissingArrayError(f"{directory}: checkpoint lacks {len(absent)} array(s) the target needs: {', '.join(absent[:4])}")
    extra = sorted(set(manifest.arrays) - set(wanted))
    if extra:
        raise ConfigMismatchError(f"{directory}: checkpoint has array(s) the target lacks: {', '.join(extra[:4])}")
    for name, leaf in wanted.items():
        record = manifest.arrays[name]
        if record.shape != tuple(leaf.shape) or record.dtype != str(leaf.dtype):
            raise ConfigMismatchError(
                f"{directory}: array {name} is {record.dtype}{list(record.shape)} in the checkpoint, "
                f"the target wants {leaf.dtype}{list(leaf.shape)}"
            )


def check_files(manifest: Manifest, directory: pathlib.Path) -> None:
    arrays_directory = directory / ARRAYS_DIRECTORY
    for relative, size in manifest.files.items():
        path = arrays_directory / relative
        owner = relative.split("/")[0]
        what = f"array {owner}" if owner in manifest.arrays else "the array store"
        if not path.is_file():
            raise MissingArrayError(f"{directory}: file {ARRAYS_DIRECTORY}/{relative} of {what} is missing")
        actual = path.stat().st_size
        if actual != size:
            raise TruncatedArrayError(
                f"{directory}: file {ARRAYS_DIRECTORY}/{relative} of {what} has {actual} bytes, {size} were written"
            )


def check_checksums(manifest: Manifest, arrays: dict, directory: pathlib.Path) -> None:
    if manifest.checksum_algorithm != ALGORITHM:
        raise ManifestError(f"{directory}: checksums made with {manifest.checksum_algorithm!r}; valid: {ALGORITHM}")
    for name, checksum in array_checksums(arrays).items():
        if checksum != manifest.arrays[name].checksum:
            raise ChecksumMismatchError(f"{directory}: array {name} does not match its checksum: its files were altered after the save")


def verify(directory: str | os.PathLike, shardings=None) -> Manifest:
    """Reads every array of the checkpoint back (onto the first device, or split by `shardings` for
    a model larger than one device) and checks it; returns the manifest when all is well."""
    manifest = read_manifest(directory)
    restore(directory, manifest_model(manifest), shardings)
    return manifest
