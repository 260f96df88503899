"""The bench's per-cell cache: one JSON file per (cell, source) in `OUT/cells/`, reused only while
everything that could change its rows is the same.

An entry records the fingerprint it was computed under: the project's version and a digest of its
source files (a new calibration is a source change), jax, jaxlib and libtpu, the estimator's
calibration factors, and for a cell run or compiled on the local devices, those devices. An entry
whose fingerprint differs is stale and recomputed; one that cannot be read (truncated, edited, not
JSON) is reported and recomputed. Neither stops the matrix.
"""

import dataclasses
import enum
import functools
import hashlib
import json
from pathlib import Path

from layouts.cost.calibration import MODES
from layouts.bench.cell import Cell
from layouts.bench.result_row import ResultRow, environment

FORMAT_VERSION = 2
_PACKAGES = ("zoo", "layouts", "cli")
_SOURCE_SUFFIXES = (".py", ".toml")


_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the packages


def source_files() -> list[Path]:
    """The packages' source files, relative to the folder holding them."""
    return [
        path.relative_to(_ROOT)
        for package in _PACKAGES
        for path in sorted((_ROOT / package).rglob("*"))
        if path.suffix in _SOURCE_SUFFIXES and path.is_file()
    ]


@functools.cache
def source_digest() -> str:
    """A digest of the packages' source files, so an edited checkout never reuses old rows."""
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(str(path).encode())
        digest.update((_ROOT / path).read_bytes())
    return digest.hexdigest()[:16]


def _local_devices() -> str:
    import jax

    devices = jax.devices()
    return f"{len(devices)} x {devices[0].platform}:{devices[0].device_kind}"


def fingerprint(cell: Cell, source: str) -> dict:
    """Everything besides the cell itself that the rows of (cell, source) depend on."""
    versions = environment()
    found = {
        "format": FORMAT_VERSION,
        "layoutzoo": versions["layoutzoo"],
        "source_digest": source_digest(),
        "jax": versions["jax"],
        "jaxlib": versions["jaxlib"],
        "libtpu": versions["libtpu"],
        "calibration": {name: dataclasses.asdict(mode) for name, mode in MODES.items()},
    }
    if cell.target == "local" and source != "estimate":
        found["local_devices"] = _local_devices()
    return found


def cell_key(cell: Cell, source: str) -> str:
    text = json.dumps({"cell": cell.__dict__, "source": source}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Lookup(enum.Enum):
    HIT = "reused"
    MISSING = "not cached"
    STALE = "stale: cached by other code or versions"
    UNREADABLE = "unreadable"


@dataclasses.dataclass(frozen=True)
class CellCache:
    folder: Path

    def path(self, cell: Cell, source: str) -> Path:
        return self.folder / f"{cell_key(cell, source)}.json"

    def load(self, cell: Cell, source: str) -> tuple[Lookup, list[ResultRow] | str | None]:
        """(HIT, rows), (MISSING, None), (STALE, what changed) or (UNREADABLE, why)."""
        path = self.path(cell, source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Lookup.MISSING, None
        except (OSError, UnicodeDecodeError) as error:
            return Lookup.UNREADABLE, f"{path}: {error}"
        try:
            entry = json.loads(text)
        except json.JSONDecodeError as error:
            return Lookup.UNREADABLE, f"{path}: not JSON ({error})"
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), dict):
            return Lookup.STALE, "written by an older layoutzoo"
        changed = _changes(entry["fingerprint"], fingerprint(cell, source))
        if changed:
            return Lookup.STALE, changed
        try:
            rows = [ResultRow(**row) for row in entry["rows"]]
        except (KeyError, TypeError) as error:
            return Lookup.UNREADABLE, f"{path}: not a list of result rows ({error})"
        return Lookup.HIT, rows

    def store(self, cell: Cell, source: str, rows: list[ResultRow]) -> None:
        from layouts.bench.output_folder import write_atomically

        entry = {"fingerprint": fingerprint(cell, source), "cell": cell.__dict__, "source": source, "rows": [row.as_dict() for row in rows]}
        write_atomically(self.path(cell, source), json.dumps(entry, default=str))


def _changes(recorded: dict, current: dict) -> str | None:
    """What differs between two fingerprints, in a few words; None when nothing does."""
    keys = [key for key in sorted(recorded.keys() | current.keys()) if recorded.get(key) != current.get(key)]
    if not keys:
        return None
    return ", ".join(
        f"{key} {recorded.get(key)} -> {current.get(key)}" if key in ("layoutzoo", "jax", "jaxlib", "libtpu") else f"{key} changed" for key in keys
    )
