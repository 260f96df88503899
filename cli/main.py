"""The `zoo` command: a thin shell over the registries.

Usage and input errors print one line on stderr and exit with code 2, before any work starts.
"""

import cli.startup  # noqa: F401  (before anything imports jax)

import sys

import click

from cli.commands_bench import bench
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


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """layoutzoo: models × partitioning layouts × chips — estimate, compile for TPU, run."""


for command in (models, layouts_command, estimate, compile_command, run_command, bench, reproduce_paper_command, generate, checkpoint):
    main.add_command(command)
