"""A persistent cache of compiled programs, so that compiling a cell again costs its lowering only.

JAX's own persistent compilation cache (`jax_compilation_cache_dir`) keeps executables. A program
compiled for a TPU topology with no TPU present comes from libtpu's compile-only client, whose
entries JAX writes but cannot read back (libtpu 0.0.42.1: "PjRtCompiler must be constructed with a
Client to call Deserialize"). For those programs the tool keeps what it reads from them
(`ProgramFacts`: the compiler's memory figures and cost analysis, the optimized HLO, the arguments'
bytes in the device layouts, or the compiler's failure, and the seconds compiling took), keyed as JAX
keys its entries: a digest of the lowered module, the devices it is compiled for (platform, kind,
ids and coordinates in mesh order) and the versions of jax, jaxlib and libtpu. Programs for the
local devices must run, so for them the tool turns on JAX's own cache instead (`enable_jax_cache`).

The cache lives in `$ZOO_CACHE_DIR`, else `$XDG_CACHE_HOME/layoutzoo`, else `~/.cache/layoutzoo`
(`compile/` the tool's entries, `jax/` JAX's). `ZOO_COMPILE_CACHE=off` or the commands'
`--no-compile-cache` turn it off; `zoo cache clear` empties it. An entry is one gzip-compressed
JSON file written atomically: a torn or unreadable entry is a miss, never an error.
"""

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax


_ENABLED = {"on": os.environ.get("ZOO_COMPILE_CACHE", "on").lower() not in ("0", "off", "false", "no")}


def cache_root() -> Path:
    """Where the caches live (see the module)."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"])
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "layoutzoo"


def enabled() -> bool:
    return _ENABLED["on"]


def set_enabled(on: bool) -> None:
    """Turn the cache on or off for this process (the commands' `--no-compile-cache`)."""
    _ENABLED["on"] = on


def enable_jax_cache() -> bool:
    """Turn on JAX's own persistent cache for programs compiled for the local devices, every
    program however quick to compile (a `zoo run` repeats the same few); False if the cache is off."""
    if not enabled():
        return False
    jax.config.update("jax_compilation_cache_dir", str(cache_root() / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return True


@contextlib.contextmanager
def jax_cache_savings():
    """Inside the block, one entry per program JAX's cache served (JAX's monitoring event of the
    compile time it saved; an empty list: everything was compiled here)."""
    saved: list[float] = []

    def listener(event: str, seconds: float, **_) -> None:
        if event == "/jax/compilation_cache/compile_time_saved_sec":
            saved.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield saved
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@dataclasses.dataclass(frozen=True)
class ProgramFacts:
    """What the tool reads from a compiled program, or the compiler's failure (one line)."""

    seconds: float  # compiling it took, where it was compiled
    failure: str | None = None
    memory: dict[str, int] | None = None  # the compiler's memory figures (`CompiledPhase.compiler_memory`)
    cost: dict[str, Any] | None = None  # XLA's cost analysis, its first entry
    hlo: str | None = None  # the optimized program's text
    argument_layout_bytes: int | None = None  # the arguments' shards in the compiled device layouts


@functools.cache
def _compiler_versions() -> str:
    """The versions of what compiles: jax, jaxlib, libtpu ("-" where one is not installed)."""
    found = []
    for distribution in ("jax", "jaxlib", "libtpu"):
        try:
            found.append(f"{distribution} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{distribution} -")
    return ", ".join(found)


def program_key(lowered, devices) -> str:
    """The entry's name: a digest of the lowered module, the devices in mesh order and versions."""
    digest = hashlib.sha256(lowered.as_text().encode())
    for device in devices:
        digest.update(f"{device.platform}|{device.device_kind}|{device.id}|{getattr(device, 'coords', None)}|{getattr(device, 'core_on_chip', None)}\n".encode())
    digest.update(_compiler_versions().encode())
    return digest.hexdigest()


def _path(key: str) -> Path:
    return cache_root() / "compile" / f"{key}.json.gz"


def load(key: str) -> ProgramFacts | None:
    """The entry for `key`, or None (absent, unreadable, or the cache off)."""
    if not enabled():
        return None
    try:
        with gzip.open(_path(key), "rt") as file:
            return ProgramFacts(**json.load(file))
    except (OSError, EOFError, ValueError, TypeError):
        return None


def store(key: str, facts: ProgramFacts) -> None:
    """Write the entry atomically; a cache that cannot be written is skipped, not an error."""
    if not enabled():
        return
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, suffix=".tmp", delete=False) as file:
            file.write(gzip.compress(json.dumps(dataclasses.asdict(facts)).encode(), compresslevel=6))
        os.replace(file.name, path)
    except OSError:
        return


def usage() -> tuple[int, int]:
    """(entries, bytes) in both caches."""
    files = [path for path in cache_root().rglob("*") if path.is_file()] if cache_root().exists() else []
    return len(files), sum(path.stat().st_size for path in files)


def clear() -> tuple[int, int]:
    """Remove every entry of both caches; returns what was removed as (entries, bytes)."""
    removed = usage()
    for folder in ("compile", "jax"):
        root = cache_root() / folder
        if root.exists():
            for path in sorted(root.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            root.rmdir()
    return removed
