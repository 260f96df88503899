"""Reading the user's TOML files (layouts, chips, experiments) with one-line errors naming the file."""

import tomllib
from pathlib import Path

from zoo.errors import ZooError


def read_toml(path: Path, error: type[ZooError], kind: str) -> dict:
    """The document at `path`; a missing or unreadable file or invalid TOML raises `error`."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {kind} file") from None
    except OSError as failure:
        raise error(f"{path}: cannot read {kind} file ({failure.strerror})") from None
    except UnicodeDecodeError as failure:
        raise error(f"{path}: not a text {kind} file (byte {failure.start} is not UTF-8); {kind} files are TOML") from None
    except tomllib.TOMLDecodeError as failure:
        raise error(f"{path}: not valid TOML ({failure})") from None
