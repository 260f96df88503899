"""The `zoo` command: a thin shell over the registries."""

import cli.startup  # noqa: F401  (before anything imports jax)
import click

from cli.commands_models import models
from cli.commands_generate import generate
from cli.commands_checkpoint import checkpoint


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """layoutzoo: models × partitioning layouts × chips — estimate, compile for TPU, run."""


main.add_command(models)
main.add_command(generate)
main.add_command(checkpoint)
