"""The manifest: what a checkpoint holds and how to check it, written last as the commit marker.

A directory without `manifest.json` is a save that never finished. The manifest records the model
config, the weight format, every array's shape, dtype, logical names and checksum, the size of every
file the arrays were written to, and the versions of the software that wrote it. A manifest that
cannot be read (not UTF-8, not JSON, JSON of the wrong shape) is a one-line ManifestError naming the
file; a directory whose manifest reads is, for `save`, a checkpoint this tool wrote and may replace.
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
        """The manifest in `text`; `where` (the file it came from) starts every error message."""
        try:
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ManifestError(f"{where}: manifest is a JSON {_json_type(document)}; valid: the JSON object a save writes")
            version = document.get("format_version")
            if version != FORMAT_VERSION:
                raise ManifestError(f"{where}: manifest format {version!r} is not readable here; valid: {FORMAT_VERSION}")
            if document["weights"] not in WEIGHT_FORMATS:
                raise ManifestError(f"{where}: weights {document['weights']!r} in the manifest; valid: {', '.join(WEIGHT_FORMATS)}")
            arrays = {name: _array_record(name, record, where) for name, record in document["arrays"].items()}
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
        except KeyError as error:
            raise ManifestError(f"{where}: unreadable manifest (field {error.args[0]!r} is missing)") from None
        except (ValueError, TypeError, AttributeError, RecursionError) as error:
            first_line = str(error).splitlines()[0] if str(error) else ""
            raise ManifestError(f"{where}: unreadable manifest ({type(error).__name__}: {first_line})") from None

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
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ManifestError(f"{path}: cannot read the manifest ({error.strerror})") from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path}: manifest is not UTF-8 text (byte {error.start} of {len(content)}); valid: the JSON a save writes") from None
    return Manifest.from_json(text, str(path))


def _array_record(name: str, record: dict, where: str) -> ArrayRecord:
    shape = tuple(record["shape"])
    if not all(isinstance(size, int) and size >= 0 for size in shape):
        raise ManifestError(f"{where}: array {name} has shape {record['shape']!r}; valid: a list of non-negative integers")
    return ArrayRecord(shape, str(record["dtype"]), tuple(record["names"]), str(record["checksum"]))


def _json_type(value) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}[type(value)]


def write_manifest(directory: pathlib.Path, manifest: Manifest) -> None:
    # Written to a temporary name, flushed, then renamed: a reader sees the whole manifest or none.
    temporary = directory / f".{MANIFEST_FILE}.partial"
    with open(temporary, "w", encoding="utf-8") as handle:
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
