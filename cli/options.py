"""Options shared by every command, with the names DESIGN.md fixes."""

import click

from zoo.errors import ZooError

FORMAT = click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True, help="table for people; json prints one object per line on stdout")


def usage_error(error: Exception) -> click.UsageError:
    """A library input error as a one-line CLI usage error (exit code 2)."""
    return click.UsageError(str(error).splitlines()[0] if str(error) else type(error).__name__)


def run_guarded(action):
    """Runs `action`, turning the library's input errors into exit-code-2 usage errors."""
    try:
        return action()
    except ZooError as error:
        raise usage_error(error) from None
