"""The `zoo` command: a thin shell over the registries.

Usage and input errors print one line on stderr and exit with code 2, before any work starts.
"""

import zoo.platforms  # noqa: F401  (before anything imports jax)

import importlib.metadata
import sys

import click

from cli.commands_bench import bench
from cli.commands_cache import cache_command
from cli.commands_capacity import capacity_command
from cli.commands_cell import compile_command, estimate, run_command
from cli.commands_checkpoint import checkpoint
from cli.commands_generate import generate
from cli.commands_layouts import layouts_command
from cli.commands_models import models
from cli.commands_reproduce import reproduce_paper_command
from zoo.errors import ZooError


class OneLineErrors(click.Group):
    """click's usage errors print several lines (usage, hint, error); users asked for one."""

    def main(self, args=None, prog_name=None, **extra):
        try:
            return super().main(args=args, prog_name=prog_name or "zoo", standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            click.echo("zoo: aborted", err=True)
            sys.exit(1)
        except click.ClickException as error:
            message = " ".join(error.format_message().split())
            context = getattr(error, "ctx", None)
            where = context.command_path if context is not None else "zoo"
            click.echo(f"{where}: error: {message}", err=True)
            sys.exit(error.exit_code)
        except ZooError as error:
            click.echo(f"zoo: error: {' '.join(str(error).split())}", err=True)
            sys.exit(2)


def _versions() -> str:
    found = []
    for distribution in ("layoutzoo", "jax", "jaxlib", "libtpu"):
        try:
            found.append(f"{distribution} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{distribution} not installed")
    return ", ".join(found)


def _print_versions(context: click.Context, _parameter, given: bool) -> None:
    if given and not context.resilient_parsing:
        click.echo(f"zoo: {_versions()}")
        context.exit()


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_versions, help="the versions of layoutzoo, jax, jaxlib and libtpu")
def main() -> None:
    """layoutzoo: models × partitioning layouts × chips — estimate, compile for TPU, run."""


for command in (models, layouts_command, estimate, compile_command, run_command, capacity_command, bench, reproduce_paper_command, generate, checkpoint, cache_command):
    main.add_command(command)
