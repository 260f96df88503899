"""`zoo models [NAME]`: the presets with their sizes and derived numbers."""

import json

import click
from rich.table import Table

from cli.options import FORMAT, run_guarded
from cli.report import wide_console
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
        table.add_row("matmul FLOPs per token (2·N)", f"{config.flops_per_token:.4g}")
        table.add_row("KV-cache bytes per token (bf16)", f"{config.kv_bytes_per_token('bfloat16'):,}")
        wide_console().print(table)
        return
    table = Table(title="model presets")
    for column in ("name", "params", "layers", "E", "F", "H", "K", "Q", "V", "block", "kv bytes/token"):
        table.add_column(column, justify="left" if column in ("name", "block") else "right")
    for config in configs:
        table.add_row(
            config.name, _human(config.param_count), str(config.n_layers), str(config.d_model), str(config.d_ff),
            str(config.n_heads), str(config.n_kv_heads), str(config.d_head), str(config.vocab),
            f"{config.block}/{config.mlp}", f"{config.kv_bytes_per_token('bfloat16'):,}",
        )
    wide_console().print(table)
