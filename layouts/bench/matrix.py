"""The benchmark matrix: the cross product of lists for every axis of a cell, times the sources.

A matrix comes from the command line's comma-separated flags, from an experiment file (TOML, the
same keys as the flags), or from the built-in default. An experiment may hold several matrices
(`[[matrix]]` tables) whose cells are run together.
"""

import dataclasses
import itertools
from pathlib import Path

from layouts.bench.auto import is_auto
from layouts.bench.cell import Cell
from layouts.toml_file import read_toml
from zoo.errors import ZooError

SOURCES = ("estimate", "compile", "run")


class ExperimentFileError(ZooError):
    """An experiment file with an unknown key or a value of the wrong type; names file and key."""


@dataclasses.dataclass(frozen=True)
class Matrix:
    """Each field lists the values of one axis; empty means the Cell default."""

    model: tuple[str, ...]
    prefill_layout: tuple[str, ...] = ()
    decode_layout: tuple[str, ...] = ()
    prefill_attention: tuple[str, ...] = ()
    decode_attention: tuple[str, ...] = ()
    chips: tuple[int, ...] = ()
    mesh: tuple[str, ...] = ()
    target: tuple[str, ...] = ()
    phase: tuple[str, ...] = ()
    batch: tuple[int, ...] = ()
    input_len: tuple[int, ...] = ()
    context_len: tuple[int, ...] = ()
    gen_tokens: tuple[int, ...] = ()
    weights: tuple[str, ...] = ()
    partitioner: tuple[str, ...] = ()
    collective_matmul: tuple[str, ...] = ()
    prefill_chunk: tuple[int, ...] = ()
    source: tuple[str, ...] = ("estimate",)

    def __post_init__(self) -> None:
        if not self.model:
            raise ZooError("a matrix needs at least one model (--model)")
        unknown = [source for source in self.source if source not in SOURCES]
        if unknown:
            raise ZooError(f"unknown source {unknown[0]!r}; valid: {', '.join(SOURCES)}")

    def cells(self) -> list[Cell]:
        """Every cell of the cross product, checked (names, sizes) before anything runs.

        `auto` layouts are left as they are: the runner asks the estimator for them per cell."""
        axes = [field.name for field in dataclasses.fields(self) if field.name != "source"]
        chosen = {name: getattr(self, name) for name in axes if getattr(self, name)}
        cells = []
        for values in itertools.product(*chosen.values()):
            cell = Cell(**dict(zip(chosen, values)))
            if not is_auto(cell):
                cell.resolve()  # unknown names and impossible meshes fail here, before any work
            cells.append(cell)
        return cells


def default_matrices() -> list[Matrix]:
    """`zoo bench` with no arguments: the paper's four models on TPU v4 at the chip counts the paper
    serves them on. Every built-in prefill layout is estimated at batch 1 and 512, the
    weight-stationary decode layouts at batch 64 and 512; the paper's low-latency choices (prefill
    at batch 1 over heads, decode at batch 64 with attention over the batch, 2D weight-stationary)
    are compiled for the TPU topology; and a tiny model is compiled and run on the local devices."""
    from layouts.builtin import FFN_LAYOUTS
    from layouts.compiled.targets import local_chip_count

    paper = [("palm-8b", 8), ("palm-62b", 16), ("palm-540b-64h", 64), ("mtnlg-530b", 64)]
    decode_layouts = tuple(name for name, layout in FFN_LAYOUTS.items() if layout.family == "weight-stationary")
    matrices = []
    for model, chips in paper:
        common = dict(model=(model,), chips=(chips,))
        matrices += [
            Matrix(**common, phase=("prefill",), prefill_layout=tuple(FFN_LAYOUTS), batch=(1, 512), source=("estimate",)),
            Matrix(**common, phase=("decode",), decode_layout=decode_layouts, decode_attention=("batch",), batch=(64, 512), source=("estimate",)),
            Matrix(**common, phase=("prefill",), batch=(1,), source=("compile",)),
            Matrix(**common, phase=("decode",), decode_attention=("batch",), batch=(64,), source=("compile",)),
        ]
    # As many local devices as form a power of two (up to 8): one CPU on a plain machine.
    local = min(local_chip_count(), 8)
    matrices.append(
        Matrix(
            model=("palm-tiny",), chips=(local,), target=("local",), batch=(8,), input_len=(128,), gen_tokens=(16,),
            decode_attention=("batch" if local > 1 else "heads",), source=("compile", "run"),
        )
    )
    return matrices


_INTEGER_AXES = {"chips", "batch", "input_len", "context_len", "gen_tokens", "prefill_chunk"}


def load_experiment(path_like: str | Path) -> list[Matrix]:
    """Matrices from an experiment file: top-level keys (one matrix) or `[[matrix]]` tables."""
    path = Path(path_like)
    data = read_toml(path, ExperimentFileError, "experiment")
    tables = data.pop("matrix", None)
    if tables is None:
        tables = [data]
    elif data:
        raise ExperimentFileError(f"{path}: key {sorted(data)[0]!r} must sit inside a [[matrix]] table when the file has them")
    elif not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ExperimentFileError(f"{path}: 'matrix' must be an array of tables ([[matrix]])")
    return [_matrix_from_table(path, table) for table in tables]


def _matrix_from_table(path: Path, table: dict) -> Matrix:
    fields = {field.name for field in dataclasses.fields(Matrix)}
    values: dict[str, tuple] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name == "layout" or name == "attention":
            targets = [f"prefill_{name}", f"decode_{name}"]
        elif name in fields:
            targets = [name]
        else:
            valid = sorted(field.replace("_", "-") for field in fields | {"layout", "attention"})
            raise ExperimentFileError(f"{path}: unknown key {key!r}; valid keys: {', '.join(valid)}")
        items = value if isinstance(value, list) else [value]
        expected = int if name in _INTEGER_AXES else str
        for item in items:
            if not isinstance(item, expected) or isinstance(item, bool):
                kind = "integers" if expected is int else "strings"
                raise ExperimentFileError(f"{path}: key {key!r} takes {kind} (or a list of them), got {item!r}")
        for target in targets:
            values[target] = tuple(items)
    if "model" not in values:
        raise ExperimentFileError(f"{path}: missing key 'model' (a preset name or a list of them; see `zoo models`)")
    try:
        return Matrix(**values)
    except ZooError as error:
        raise ExperimentFileError(f"{path}: {error}") from None
