"""What this tool wrote, and so may delete: the only directories a save ever removes.

A save works beside its target `<name>`: it stages into `<name>.incomplete` and, when replacing a
checkpoint, sets the old one aside as `<name>.replaced` until the new one is in place. Before anything
is deleted it must prove to be the tool's own:

- a checkpoint (`<name>` itself, or `<name>.replaced`) is a directory, not a link, whose manifest.json
  reads as a Manifest;
- a staging directory carries the marker file a save writes into it the moment it creates it (and
  removes from the checkpoint once it is renamed into place).

Removal deletes the proof last (the manifest, the marker), so a removal cut short leaves a directory
that still proves to be the tool's and is removed by the next save. Leftovers a killed save leaves are
reported by `leftovers`, with their size and how to get rid of them.
"""

import dataclasses
import os
import pathlib
import shutil

from checkpoints.errors import CheckpointError
from checkpoints.manifest import MANIFEST_FILE, read_manifest

STAGING_SUFFIX = ".incomplete"
REPLACED_SUFFIX = ".replaced"
STAGING_MARKER = ".zoo-checkpoint-staging"


def checkpoint_path(directory: str | os.PathLike) -> pathlib.Path:
    """`directory` as given, normalised (`out/tiny/` is `out/tiny`), or made absolute where it names
    no directory by itself (`.`, `..`), so that its siblings can be named."""
    path = pathlib.Path(os.path.normpath(directory))
    return path if path.name not in ("", ".", "..") else pathlib.Path(os.path.abspath(directory))


def staging_directory(directory: pathlib.Path) -> pathlib.Path:
    return directory.with_name(directory.name + STAGING_SUFFIX)


def replaced_directory(directory: pathlib.Path) -> pathlib.Path:
    return directory.with_name(directory.name + REPLACED_SUFFIX)


def is_checkpoint(path: pathlib.Path) -> bool:
    """Whether `path` is a checkpoint directory this tool wrote (its manifest reads)."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        read_manifest(path)
    except CheckpointError:
        return False
    return True


def is_staging(path: pathlib.Path) -> bool:
    """Whether `path` is a staging directory a save created."""
    return not path.is_symlink() and (path / STAGING_MARKER).is_file()


def mark_staging(path: pathlib.Path) -> None:
    """Creates the staging directory `path` with its marker (its parents too, if missing)."""
    path.mkdir(parents=True)
    try:
        (path / STAGING_MARKER).write_text("a checkpoint save stages here; it is removed by the next save to the same place\n")
    except OSError:
        shutil.rmtree(path, ignore_errors=True)  # created just now, and unmarked it would be in the way
        raise


def remove_checkpoint(path: pathlib.Path) -> None:
    """Removes a directory that `is_checkpoint`, the manifest last."""
    _remove_all_but(path, MANIFEST_FILE)


def remove_staging(path: pathlib.Path) -> None:
    """Removes a directory that `is_staging`, the marker last."""
    _remove_all_but(path, STAGING_MARKER)


def _remove_all_but(path: pathlib.Path, proof: str) -> None:
    for entry in path.iterdir():
        if entry.name == proof:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (path / proof).unlink()
    path.rmdir()


def tree_bytes(path: pathlib.Path) -> int:
    """Bytes of the files under `path` (links not followed)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # removed while we walked
                continue
    return total


@dataclasses.dataclass(frozen=True)
class Leftover:
    """A directory left beside the checkpoint `of` by a save that did not finish."""

    path: pathlib.Path
    of: pathlib.Path
    bytes: int
    owned: bool  # proved to be the tool's own, so the next save to `of` removes it

    def describe(self) -> str:
        """One line: what the leftover is and how to get rid of it."""
        where = f"{self.path} ({self.bytes:,} bytes)"
        staging = self.path.name.endswith(STAGING_SUFFIX)
        if not self.owned:
            blocked = "saves" if staging else "--overwrite saves"
            return f"{where} was not written by this tool; {blocked} to {self.of} refuse until it is moved or deleted"
        if staging:
            return f"{where} is the staging directory of an interrupted save to {self.of}; delete it (rm -r {self.path}) or save to {self.of} again, which removes it"
        return (
            f"{where} is the previous checkpoint, set aside by an interrupted --overwrite save to {self.of}; "
            f"delete it (rm -r {self.path}) once {self.of} verifies, or move it back if {self.of} is missing"
        )


def leftovers(directory: str | os.PathLike) -> list[Leftover]:
    """The staging and set-aside directories beside `directory`, if any."""
    directory = checkpoint_path(directory)
    if not directory.name:  # a filesystem root has no siblings
        return []
    found = []
    for path, owned in ((staging_directory(directory), is_staging), (replaced_directory(directory), is_checkpoint)):
        if os.path.lexists(path):
            found.append(Leftover(path, directory, tree_bytes(path), owned(path)))
    return found
