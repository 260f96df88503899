"""The folder a bench writes into: proven to be the bench's own before anything in it is replaced,
held by one bench at a time, and written file by file atomically.

A folder is the bench's if it is new or empty, carries the marker file a bench leaves in every
folder it writes (`.zoo-bench`), or holds nothing but names a bench writes. Anything else (a project
folder, `.`, a folder of the user's own files) is refused before any work, so `--out` can never
replace a user's file. The marker is also the lock: a bench holds an exclusive `flock` on it while
it runs (released by the kernel if the process dies, so a killed bench leaves no stale lock), and a
second bench on the same folder is refused with a one-line message naming the holder.
"""

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

from zoo.errors import ZooError

MARKER = ".zoo-bench"
CELLS = "cells"
BENCH_FILES = frozenset({MARKER, CELLS, "rows.jsonl", "rows.csv", "pareto.png", "memory.png"})
_PARTIAL = ".partial"


def _file_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's temporaries are private)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class OutputError(ZooError):
    """An output folder or file that cannot be used or written; names it and says why."""


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yields a unique temporary name beside `path`; once the block has written it, it replaces
    `path` in one step. A failure removes the temporary and raises OutputError (one line)."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_PARTIAL)
        os.fchmod(handle, _file_mode())
        os.close(handle)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {_reason(error)}") from None
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {_reason(error)}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` only once the new text is complete on disk."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _foreign_entries(folder: Path) -> list[str]:
    names = [entry.name for entry in folder.iterdir()]
    if MARKER in names:
        return []
    return sorted(name for name in names if name not in BENCH_FILES and not (name.startswith(".") and name.endswith(_PARTIAL)))


class OutputFolder(contextlib.AbstractContextManager):
    """`with OutputFolder(path) as out:` checks, creates and locks the folder; `out.path` is it."""

    def __init__(self, path: Path | str, option: str = "--out") -> None:
        text = str(path)
        if not text.strip():
            raise OutputError(f"{option} is empty; name a folder, e.g. {option} zoo-out")
        self.path = Path(text)
        self.option = option
        self._lock: int | None = None

    def check(self) -> None:
        """Refuses a path that is not a folder or holds files the bench did not write. Cheap:
        callers run it before the matrix starts."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{self.option} {self.path} exists and is not a folder; name a new or empty folder")
        if self.path.is_dir():
            try:
                foreign = _foreign_entries(self.path)
            except OSError as error:
                raise OutputError(f"cannot read {self.option} {self.path}: {_reason(error)}") from None
            if foreign:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise OutputError(
                    f"{self.option} {self.path} holds files zoo bench did not write ({shown}); "
                    "name a new or empty folder, or one an earlier zoo bench wrote"
                )

    def __enter__(self) -> "OutputFolder":
        self.check()
        try:
            (self.path / CELLS).mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.path / MARKER, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(f"cannot create {self.option} {self.path}: {_reason(error)}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._lock)
            self._lock = None
            raise OutputError(f"another zoo bench (pid {holder}) is writing to {self.path}; wait for it to finish or choose another {self.option}") from None
        os.ftruncate(self._lock, 0)
        os.pwrite(self._lock, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing releases the flock
            self._lock = None

    @property
    def cells(self) -> Path:
        return self.path / CELLS
