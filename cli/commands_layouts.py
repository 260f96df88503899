"""`zoo layouts [NAME]`: the layouts; one in detail, with every tensor's placement for a model."""

import json

import click

from cli.options import CELL_DEFAULTS, FORMAT, run_guarded
from cli.report import human_bytes
from cli.tables import Column, fitted_table, table_console
from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.cost.terms import collective_kinds
from layouts.workload import PHASES, Workload
from layouts.introspect import describe
from layouts.layout import Partitioning
from layouts.mesh import choose_mesh_shape, format_mesh, parse_mesh
from layouts.registry import get_attention_layout, get_layout
from zoo.presets import get_preset


_EXAMPLE_MODEL = "palm-8b"


def _implied(partitioning: Partitioning) -> str:
    return "; ".join(f"{phase}: {', '.join(collective_kinds(partitioning, phase)) or 'none'}" for phase in PHASES)


def _spec_text(spec) -> str:
    return "[" + ", ".join("-" if entry is None else entry if isinstance(entry, str) else "".join(entry) for entry in spec) + "]"


@click.command(name="layouts")
@click.argument("name", required=False)
@click.option("--model", help="show every tensor's placement for this model")
@click.option("--chips", type=click.IntRange(min=1), help="chip count (the layout chooses the mesh shape)")
@click.option("--mesh", help="logical mesh XxYxZ")
@click.option("--attention", default=CELL_DEFAULTS["decode_attention"], show_default=True, help="attention layout for the KV cache")
@click.option("--batch", type=click.IntRange(min=1), default=CELL_DEFAULTS["batch"], show_default=True)
@click.option("--context-len", type=click.IntRange(min=1), default=CELL_DEFAULTS["input_len"], show_default=True, help="tokens in the cache when decoding starts")
@click.option("--gen-tokens", type=click.IntRange(min=1), default=CELL_DEFAULTS["gen_tokens"], show_default=True, help="generated tokens the cache also holds")
@FORMAT
def layouts_command(name, model, chips, mesh, attention, batch, context_len, gen_tokens, output_format) -> None:
    """The layouts; with NAME (a built-in or a .toml file), its algorithm, and with --model and
    --chips or --mesh, every tensor's logical names, PartitionSpec, per-chip shape and bytes. The KV
    cache is sized as decoding allocates it (and as estimate and compile count it): the context
    plus the generated tokens."""
    if name is None:
        entries = [{"name": l.name, "kind": "ffn", "phase": l.phase, "summary": l.summary} for l in FFN_LAYOUTS.values()]
        entries += [{"name": l.name, "kind": "attention", "phase": l.phase, "summary": l.summary} for l in ATTENTION_LAYOUTS.values()]
        if output_format == "json":
            for entry in entries:
                click.echo(json.dumps(entry))
            return
        columns = [Column("name", keep=3), Column("kind", keep=2), Column("phase", keep=1), Column("summary", fold=True, keep=2)]
        table_console().print(fitted_table(columns, [list(entry.values()) for entry in entries], "layouts"))
        return

    layout = run_guarded(lambda: get_layout(name))
    attention_layout = run_guarded(lambda: get_attention_layout(attention))
    if model is None:
        if chips is not None or mesh is not None:
            raise click.UsageError("--chips/--mesh need --model")
        # The collectives follow from the rules and the model; shown for a paper model as an example.
        example = Partitioning(layout, attention_layout, get_preset(_EXAMPLE_MODEL))
        kinds = {phase: list(collective_kinds(example, phase)) for phase in PHASES}
        entry = {"name": layout.name, "summary": layout.summary, "algorithm": layout.algorithm, "phase": layout.phase, "family": layout.family,
                 "collectives": {"model": _EXAMPLE_MODEL, "attention": attention_layout.name, **kinds},
                 "rules": {role.value: dict(table) for role, table in layout.rules.items()}}  # fmt: skip
        if output_format == "json":
            click.echo(json.dumps(entry))
        else:
            click.echo(
                f"{layout.name} ({layout.family}, meant for {layout.phase}): {layout.summary}\n\n{layout.algorithm}\n\n"
                f"collectives per layer ({_EXAMPLE_MODEL}, attention over {attention_layout.name}; --model M --chips N for another): {_implied(example)}"
            )
        return

    config = run_guarded(lambda: get_preset(model))
    partitioning = run_guarded(lambda: Partitioning(layout, attention_layout, config))
    if mesh is not None:
        shape = run_guarded(lambda: parse_mesh(mesh))
    elif chips is not None:
        shape = run_guarded(lambda: choose_mesh_shape(chips, layout, config, tokens=batch * context_len))
    else:
        raise click.UsageError("give --chips N or --mesh XxYxZ with --model")
    cache_len = Workload(batch, context_len, context_len, gen_tokens).cache_len("decode")
    report = run_guarded(lambda: describe(partitioning, shape, batch=batch, context_len=cache_len))
    placements = report.weights + report.cache
    if output_format == "json":
        for p in placements:
            click.echo(json.dumps({"tensor": p.path, "names": list(p.names), "spec": _spec_text(p.spec), "shape": list(p.shape),
                                   "per_chip_shape": list(p.per_chip_shape), "per_chip_bytes": p.per_chip_bytes, "dtype": p.dtype}))  # fmt: skip
        return
    columns = [Column("tensor", keep=9), Column("logical names", keep=3), Column("spec", keep=8), Column("shape", keep=4), Column("per chip", keep=5), Column("bytes/chip", "right", keep=7)]
    lines = [[p.path, ", ".join("-" if n is None else n for n in p.names), _spec_text(p.spec), str(p.shape), str(p.per_chip_shape), human_bytes(p.per_chip_bytes)] for p in placements]
    table_console().print(fitted_table(columns, lines, f"{partitioning.name} · {model} · mesh {format_mesh(shape)} · batch {batch}, cache {context_len}+{gen_tokens} tokens"))
    click.echo(f"per chip: weights {human_bytes(report.weight_bytes_per_chip)}, KV cache {human_bytes(report.cache_bytes_per_chip)}")
    click.echo(f"collectives per layer: {_implied(partitioning)}")
