"""`zoo models [NAME]`: the presets with their sizes and derived numbers."""

import json

import click
from rich.table import Table

from cli.options import FORMAT, run_guarded
from cli.tables import Column, fitted_table, table_console
from zoo.presets import PRESETS, get_preset


def model_summary(config) -> dict:
    return {
        "name": config.name,
        "params": config.param_count,
        "n_layers": config.n_layers,
        "d_model": config.d_model,
        "d_ff": config.d_ff,
        "n_heads": config.n_heads,
        "n_kv_heads": config.n_kv_heads,
        "d_head": config.d_head,
        "vocab": config.vocab,
    }


_NUMBER_COLUMNS = (("params", 8), ("layers", 7), ("E", 7), ("F", 6), ("H", 6), ("K", 6), ("Q", 4), ("V", 3))


def _human(count: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(count)


@click.command()
@click.argument("name", required=False)
@FORMAT
def models(name: str | None, output_format: str) -> None:
    """The model presets; with NAME, one in detail."""
    configs = [run_guarded(lambda: get_preset(name))] if name else list(PRESETS.values())
    if output_format == "json":
        for config in configs:
            click.echo(json.dumps(model_summary(config)))
        return
    if name:
        config = configs[0]
        table = Table(title=f"{config.name}: {config.description}", show_header=False)
        for field, value in model_summary(config).items():
            table.add_row(field, f"{value:,}" if isinstance(value, int) else str(value))
        for field in ("block", "mlp", "positions", "use_bias", "norm_bias", "tie_embeddings", "dtype"):
            table.add_row(field, str(getattr(config, field)))
        table.add_row("forward FLOPs per token (2·N, all parameters)", f"{config.forward_flops_per_token:.4g}")
        table.add_row("KV-cache bytes per token (bf16)", f"{config.kv_bytes_per_token('bfloat16'):,}")
        table_console().print(table)
        return
    columns = [Column("name", keep=9), *(Column(header, "right", keep=keep) for header, keep in _NUMBER_COLUMNS), Column("block", keep=2), Column("kv bytes/token", "right", keep=5)]
    lines = [
        [
            config.name, _human(config.param_count), str(config.n_layers), str(config.d_model), str(config.d_ff),
            str(config.n_heads), str(config.n_kv_heads), str(config.d_head), str(config.vocab),
            f"{config.block}/{config.mlp}", f"{config.kv_bytes_per_token('bfloat16'):,}",
        ]
        for config in configs
    ]  # fmt: skip
    table_console().print(fitted_table(columns, lines, "model presets"))
