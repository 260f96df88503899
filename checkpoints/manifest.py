"""The manifest: what a checkpoint holds and how to check it, written last as the commit marker.

A directory without `manifest.json` is a save that never finished. The manifest records the model
config, the weight format, every array's shape, dtype, logical names and checksum, the size of every
file the arrays were written to, and the versions of the software that wrote it.
"""

import dataclasses
import importlib.metadata
import json
import os
import pathlib

from checkpoints.errors import IncompleteCheckpointError, ManifestError
from zoo.config import ModelConfig

MANIFEST_FILE = "manifest.json"
ARRAYS_DIRECTORY = "arrays"
FORMAT_VERSION = 1
WEIGHT_FORMATS = ("bfloat16", "float32", "int8")


@dataclasses.dataclass(frozen=True)
class ArrayRecord:
    shape: tuple[int, ...]
    dtype: str
    names: tuple[str | None, ...]
    checksum: str


@dataclasses.dataclass(frozen=True)
class Manifest:
    config: ModelConfig
    weights: str  # one of WEIGHT_FORMATS: the dtype the matmul weights are stored in
    arrays: dict[str, ArrayRecord]
    files: dict[str, int]  # path under arrays/ -> bytes
    checksum_algorithm: str
    writer: dict[str, str]
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        document = dataclasses.asdict(self)
        document["config"] = dataclasses.asdict(self.config)
        return json.dumps(document, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> "Manifest":
        try:
            document = json.loads(text)
            version = document.get("format_version")
            if version != FORMAT_VERSION:
                raise ManifestError(f"{where}: manifest format {version!r} is not readable here; valid: {FORMAT_VERSION}")
            arrays = {
                name: ArrayRecord(tuple(record["shape"]), record["dtype"], tuple(record["names"]), record["checksum"])
                for name, record in document["arrays"].items()
            }
            return cls(
                config=ModelConfig(**document["config"]),
                weights=document["weights"],
                arrays=arrays,
                files={path: int(size) for path, size in document["files"].items()},
                checksum_algorithm=document["checksum_algorithm"],
                writer=dict(document["writer"]),
                format_version=version,
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ManifestError(f"{where}: unreadable manifest ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


def writer_versions() -> dict[str, str]:
    versions = {}
    for distribution in ("jax", "jaxlib", "orbax-checkpoint", "tensorstore", "equinox", "layoutzoo"):
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[distribution] = "not installed"
    return versions


def read_manifest(directory: str | os.PathLike) -> Manifest:
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ManifestError(f"{directory}: no such checkpoint directory")
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise IncompleteCheckpointError(
            f"{directory}: incomplete checkpoint (no {MANIFEST_FILE}: its save was interrupted or is still running); "
            "restore a complete checkpoint or save again"
        )
    return Manifest.from_json(path.read_text(), str(directory))


def write_manifest(directory: pathlib.Path, manifest: Manifest) -> None:
    # Written to a temporary name, flushed, then renamed: a reader sees the whole manifest or none.
    temporary = directory / f".{MANIFEST_FILE}.partial"
    with open(temporary, "w") as handle:
        handle.write(manifest.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, directory / MANIFEST_FILE)


def array_files(arrays_directory: pathlib.Path) -> dict[str, int]:
    """{relative path: bytes} of every file under the arrays directory."""
    return {
        path.relative_to(arrays_directory).as_posix(): path.stat().st_size
        for path in sorted(arrays_directory.rglob("*"))
        if path.is_file()
    }
