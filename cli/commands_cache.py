"""`zoo cache`: where the compile cache lives, how much it holds, and emptying it
(`layouts/compiled/compile_cache.py`)."""

import click

from layouts.compiled import compile_cache


def _size(count: int, size: int) -> str:
    return f"{count} entries, {size / 2**20:.1f} MiB"


@click.group(name="cache")
def cache_command() -> None:
    """The compile cache: programs compiled once are not compiled again (`--no-compile-cache` on
    compile, run and bench skips it; ZOO_CACHE_DIR moves it; ZOO_COMPILE_CACHE=off turns it off)."""


@cache_command.command(name="info")
def info() -> None:
    """Where the cache is and what it holds."""
    state = "on" if compile_cache.enabled() else "off (ZOO_COMPILE_CACHE)"
    click.echo(f"{compile_cache.cache_root()}: {_size(*compile_cache.usage())}; {state}")


@cache_command.command(name="clear")
def clear() -> None:
    """Remove every entry."""
    click.echo(f"removed {_size(*compile_cache.clear())} from {compile_cache.cache_root()}")
