"""From the cell flags to matrices and cells: lists are comma-separated; a single-cell command
takes one value per flag."""

import click

from layouts.bench.matrix import Matrix
from cli.options import positive_ints, split_list
from layouts.bench.cell import Cell

_INTEGER_FLAGS = ("chips", "batch", "input_len", "context_len", "gen_tokens", "prefill_chunk")
_TEXT_FLAGS = ("model", "mesh", "target", "phase", "weights", "partitioner", "collective_matmul")


def matrix_from_flags(values: dict, sources: tuple[str, ...]) -> Matrix:
    fields: dict[str, tuple] = {}
    for name in _TEXT_FLAGS:
        fields[name] = tuple(split_list(values.get(name)))
    for name in _INTEGER_FLAGS:
        fields[name] = tuple(positive_ints("--" + name.replace("_", "-"), values.get(name)))
    for kind in ("layout", "attention"):
        both = split_list(values.get(kind))
        for phase in ("prefill", "decode"):
            fields[f"{phase}_{kind}"] = tuple(split_list(values.get(f"{phase}_{kind}")) or both)
    if not fields["model"]:
        raise click.UsageError("missing --model; see `zoo models` for the presets")
    return Matrix(**fields, source=sources)


def cell_from_flags(values: dict, **overrides) -> Cell:
    """The one cell the flags describe (more than one value for a flag is a usage error)."""
    for name, value in values.items():
        if value is not None and len(split_list(str(value))) > 1:
            raise click.UsageError(f"--{name.replace('_', '-')} takes one value here; lists are for `zoo bench`")
    for name, value in overrides.items():
        if values.get(name) is None:
            values = {**values, name: value}
    cells = matrix_from_flags(values, ("estimate",)).cells()
    return cells[0]
