"""`zoo launch`: one command as several processes on this machine, joined into one set of devices."""

import shutil

import click

from cli.launcher import launch


@click.command(name="launch", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--processes", type=click.IntRange(min=1, max=64), default=2, show_default=True, help="how many processes to start")
@click.option(
    "--devices-per-process", type=click.IntRange(min=1, max=64), default=4, show_default=True,
    help="forced CPU devices each process has (the mesh spans processes × this)",
)  # fmt: skip
@click.option("--grace", type=click.FloatRange(min=0.0), default=3.0, show_default=True, help="seconds the others get to stop (SIGINT) after one fails, before SIGKILL")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def launch_command(processes: int, devices_per_process: int, grace: float, command: tuple[str, ...]) -> None:
    """Run COMMAND (e.g. `zoo run ...` after `--`) as PROCESSES processes on this machine, each
    with its share of forced CPU devices, joined over loopback by JAX's distributed runtime
    (collectives over gloo): a test of the multi-host paths without a cluster. Output lines carry
    a `[i]` prefix. If one process fails, the others are stopped and the exit code is its own."""
    if command[0] == "launch" or command[:2] == ("zoo", "launch"):
        raise click.UsageError("zoo launch cannot launch itself; give the command each process runs, e.g. -- zoo run --layout 2d-ws")
    if command[0] != "zoo" and shutil.which(command[0]) is None:
        raise click.UsageError(f"no program {command[0]!r} to launch: give `zoo ...` or a command on PATH (or its path)")
    outcome = launch(list(command), processes=processes, devices_per_process=devices_per_process, grace_s=grace)
    if outcome.failure is not None:
        click.echo(f"zoo launch: error: {outcome.failure}", err=True)
    raise SystemExit(outcome.status)
