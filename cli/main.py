"""The `zoo` command: a thin shell over the registries.

Usage and input errors print one line on stderr and exit with code 2, before any work starts.
"""

import zoo.platforms  # noqa: F401  (before anything imports jax)

import importlib.metadata
import io
import os
import sys

import click

from cli.commands_bench import bench
from cli.commands_cache import cache_command
from cli.commands_capacity import capacity_command
from cli.commands_cell import compile_command, estimate, run_command
from cli.commands_checkpoint import checkpoint
from cli.commands_generate import generate
from cli.commands_launch import launch_command
from cli.commands_layouts import layouts_command
from cli.commands_models import models
from cli.commands_reproduce import reproduce_paper_command
from cli.options import run_guarded
from layouts import processes
from zoo.errors import ZooError

# The commands that run on devices, and so join the other processes when there are several (on a
# TPU VM of a multi-host slice, automatically); the rest need not wait for every host: model and
# layout lists, estimates, and `zoo compile`, whose TPU targets are topologies compiled for from
# any one host (`launch` starts the processes itself).
DEVICE_COMMANDS = frozenset({"run", "bench", "generate", "checkpoint"})


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
        except Exception as error:
            lost = processes.lost_peer(error)
            if lost is None:
                raise
            click.echo(f"zoo: error: {lost}", err=True)
            sys.exit(1)


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
@click.option("--coordinator", metavar="HOST:PORT", help=f"process 0's address, where the processes meet (or {processes.COORDINATOR_VARIABLE}); on a TPU VM JAX finds it itself")
@click.option("--num-processes", type=click.IntRange(min=1), help=f"how many processes run this command, one per host (or {processes.NUM_PROCESSES_VARIABLE})")
@click.option("--process-id", type=click.IntRange(min=0), help=f"this process's place, 0 to N-1; 0 prints and writes the results (or {processes.PROCESS_ID_VARIABLE})")
@click.pass_context
def main(context: click.Context, coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """layoutzoo: models × partitioning layouts × chips — estimate, compile for TPU, run.

    On several hosts, run the same command on each with --coordinator, --num-processes and
    --process-id (on TPU VMs, nothing: JAX detects the slice); `zoo launch` does it on this machine."""
    if context.invoked_subcommand == "launch":
        return
    settings = run_guarded(lambda: processes.settings_from(coordinator, num_processes, process_id))
    joined = context.invoked_subcommand in DEVICE_COMMANDS and run_guarded(lambda: processes.start(settings))
    leader = processes.is_leader() if joined else settings is None or settings.process_id == 0
    if joined:
        _native_output_to_stderr()
    if not leader:
        # Every process computes the same results; the leader alone prints them (errors still
        # reach stderr from every process).
        sys.stdout = open(os.devnull, "w")


def _native_output_to_stderr() -> None:
    """Between processes, gloo reports each connection it makes on the C library's stdout: file
    descriptor 1 goes to stderr, and Python's stdout keeps the original, so stdout carries the
    command's results alone (`--format json` stays one object per line)."""
    sys.stdout.flush()
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = io.TextIOWrapper(io.FileIO(results, "w"), encoding=sys.stdout.encoding, errors=sys.stdout.errors, line_buffering=True)


for command in (
    models, layouts_command, estimate, compile_command, run_command, capacity_command, bench, reproduce_paper_command, generate, checkpoint, cache_command,
    launch_command,
):  # fmt: skip
    main.add_command(command)
