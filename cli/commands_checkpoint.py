"""`zoo checkpoint`: write, inspect, check and convert checkpoints.

Every command that writes refuses an existing directory unless given --overwrite, and with it
replaces only a checkpoint this tool wrote (never a plain file, another directory or the current
one). Everything a save checks (the path, leftovers in the way, a writable parent, enough free space
for the model to be written) is checked before the model is built or read; bad input and failures to
write are one-line errors with exit code 2. Commands that read a checkpoint place it by
--layout/--attention/--mesh (default: one device), so a checkpoint is read and written shard by
shard, and saving under another placement than it was read with is how a checkpoint is resharded.
With --format json each command prints one JSON object on stdout; notes (leftovers of an unfinished
save) go to stderr.
"""

import json
import math
import pathlib

import click

from cli.options import FORMAT, usage_error
from zoo.presets import PRESETS

_WEIGHTS = click.Choice(["bf16", "int8"])
_OVERWRITE = click.option("--overwrite", is_flag=True, help="replace an existing checkpoint at OUT")
_SOURCE = click.argument("source", type=click.Path(path_type=pathlib.Path))
_OUT = click.argument("out", type=click.Path(path_type=pathlib.Path))


def _placement(command):
    command = click.option("--mesh", default="1x1x1", show_default=True, help="XxYxZ devices the arrays are split over")(command)
    command = click.option("--attention", default="heads", show_default=True, help="attention / KV-cache layout (name or file)")(command)
    return click.option("--layout", default=None, help="FFN layout (name or file) the arrays are split by; default: one device")(command)


def _guarded(action):
    """Runs `action`; bad input and damaged checkpoints become exit-code-2 one-line errors."""
    from checkpoints.errors import CheckpointError
    from zoo.errors import ZooError

    try:
        return action()
    except (ZooError, CheckpointError) as error:
        raise usage_error(error) from None


def _shardings(abstract, layout: str | None, attention: str, mesh: str):
    from layouts import get_partitioning, make_mesh, param_shardings, parse_mesh

    shape = parse_mesh(mesh)
    if layout is None:
        if shape != (1, 1, 1):
            raise click.UsageError(f"--mesh {mesh} needs a --layout to split the arrays by")
        return None
    return param_shardings(abstract, get_partitioning(layout, attention, abstract.config), make_mesh(shape))


def _check_out(out: pathlib.Path, overwrite: bool, abstract) -> None:
    """Every check a save makes before writing, run before the work that produces the model:
    `abstract` (the model to be written, shapes only) sizes the free space it needs."""
    from checkpoints.save import checkpoint_bytes, ensure_writable

    ensure_writable(out, overwrite, checkpoint_bytes(abstract))


def _source(source: pathlib.Path):
    """The abstract model the checkpoint at `source` holds, from its manifest alone."""
    from checkpoints import manifest_model, read_manifest

    return manifest_model(read_manifest(source))


def _read(source: pathlib.Path, target, layout, attention, mesh):
    from checkpoints import restore

    return restore(source, target, _shardings(target, layout, attention, mesh))


def _report(output_format: str, record: dict, line: str) -> None:
    """`record` as one JSON object, or `line` for people; either alone on stdout."""
    click.echo(json.dumps(record) if output_format == "json" else line)


def _write(model, out: pathlib.Path, overwrite: bool, output_format: str) -> None:
    from checkpoints import save

    manifest = save(model, out, overwrite=overwrite)
    record = {"path": str(out), "model": manifest.config.name, "weights": manifest.weights, "arrays": len(manifest.arrays), "bytes": manifest.total_bytes}
    _report(output_format, record, f"wrote {out}: {manifest.config.name}, {manifest.weights} weights, {len(manifest.arrays)} arrays, {manifest.total_bytes:,} bytes")


def _note_leftovers(directory: pathlib.Path) -> None:
    """One line on stderr for each directory an unfinished save left beside `directory`."""
    from checkpoints.ownership import leftovers

    for leftover in leftovers(directory):
        click.echo(f"note: {leftover.describe()}", err=True)


@click.group()
def checkpoint() -> None:
    """Sharded checkpoints: init, save, info, verify, quantize, convert."""


@checkpoint.command()
@click.option("--model", required=True, type=click.Choice(sorted(PRESETS)), help="model preset")
@click.option("--weights", default="bf16", show_default=True, type=_WEIGHTS)
@click.option("--seed", default=0, show_default=True)
@_placement
@_OVERWRITE
@FORMAT
@_OUT
def init(model: str, weights: str, seed: int, layout, attention, mesh, overwrite: bool, output_format: str, out: pathlib.Path) -> None:
    """Write a randomly initialised MODEL to OUT, created directly in its shards."""
    import jax

    from layouts.compiled.local_memory import check_fits_locally
    from layouts.sharding import init_in_shards
    from zoo import build_abstract, get_preset
    from zoo.quantization import abstract_model

    def action():
        config = get_preset(model)
        _check_out(out, overwrite, abstract_model(config, weights))
        abstract = build_abstract(config)
        shardings = _shardings(abstract_model(config, weights), layout, attention, mesh)
        # The model at its dtype, plus one stacked weight drawn in float32 before its cast (and, for
        # int8, the quantized copy beside it): checked against the devices' free memory first.
        arrays = jax.tree.leaves(abstract)
        largest_float32 = max(math.prod(leaf.shape) for leaf in arrays) * 4
        needed = sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in arrays) * (1.5 if weights == "int8" else 1) + largest_float32
        check_fits_locally(int(needed), f"initialising {config.name}")
        network = init_in_shards(config, shardings, jax.random.key(seed), weights)
        _write(network, out, overwrite, output_format)

    _guarded(action)


@checkpoint.command()
@_placement
@_OVERWRITE
@FORMAT
@_SOURCE
@_OUT
def save(layout, attention, mesh, overwrite: bool, output_format: str, source: pathlib.Path, out: pathlib.Path) -> None:
    """Read SOURCE onto --layout/--mesh and write it to OUT from there (each shard by the process
    holding it): resharding, or copying with a fresh manifest."""
    def action():
        target = _source(source)
        _check_out(out, overwrite, target)
        _write(_read(source, target, layout, attention, mesh), out, overwrite, output_format)

    _guarded(action)


@checkpoint.command()
@_placement
@_OVERWRITE
@FORMAT
@_SOURCE
@_OUT
def quantize(layout, attention, mesh, overwrite: bool, output_format: str, source: pathlib.Path, out: pathlib.Path) -> None:
    """Write SOURCE's weights as int8 (per-output-channel, bf16 scales) to OUT."""
    import jax

    from checkpoints import CheckpointError, manifest_model, read_manifest
    from zoo.quantization import quantize as to_int8

    def action():
        manifest = read_manifest(source)
        if manifest.weights == "int8":
            raise CheckpointError(f"{source} already holds int8 weights; quantize a bf16 or float32 checkpoint")
        target = manifest_model(manifest)
        _check_out(out, overwrite, jax.eval_shape(to_int8, target))
        _write(jax.jit(to_int8)(_read(source, target, layout, attention, mesh)), out, overwrite, output_format)

    _guarded(action)


@checkpoint.command()
@click.option("--dtype", required=True, type=click.Choice(["bfloat16", "float32"]), help="dtype to store the weights in")
@_placement
@_OVERWRITE
@FORMAT
@_SOURCE
@_OUT
def convert(dtype: str, layout, attention, mesh, overwrite: bool, output_format: str, source: pathlib.Path, out: pathlib.Path) -> None:
    """Write SOURCE's weights in --dtype to OUT (and in another placement, with --layout/--mesh)."""
    import jax

    from checkpoints import convert_dtype

    def action():
        target = _source(source)
        _check_out(out, overwrite, jax.eval_shape(lambda abstract: convert_dtype(abstract, dtype), target))
        _write(convert_dtype(_read(source, target, layout, attention, mesh), dtype), out, overwrite, output_format)

    _guarded(action)


@checkpoint.command()
@click.argument("directory", type=click.Path(path_type=pathlib.Path))
@FORMAT
def info(directory: pathlib.Path, output_format: str) -> None:
    """Show the manifest of the checkpoint in DIRECTORY."""
    from checkpoints import read_manifest

    _note_leftovers(directory)
    manifest = _guarded(lambda: read_manifest(directory))
    if output_format == "json":
        click.echo(json.dumps(json.loads(manifest.to_json())))
        return
    from rich.console import Console
    from rich.table import Table

    config = manifest.config
    summary = Table(title=f"{directory}", show_header=False)
    summary.add_row("model", f"{config.name} ({config.param_count:,} parameters)")
    summary.add_row("weights", manifest.weights)
    summary.add_row("arrays", f"{len(manifest.arrays)} in {len(manifest.files)} files, {manifest.total_bytes:,} bytes")
    summary.add_row("checksums", manifest.checksum_algorithm)
    summary.add_row("written by", ", ".join(f"{name} {version}" for name, version in sorted(manifest.writer.items())))
    # Names tell arrays apart (an int8 weight's .quantized and .scale differ only at the end), so
    # they are never cut; on a narrow terminal the logical axes fold and the checksums shrink to a
    # prefix instead (--format json has them whole).
    arrays = Table(title="arrays")
    arrays.add_column("name", no_wrap=True, min_width=max(map(len, manifest.arrays), default=4))
    arrays.add_column("shape", no_wrap=True)
    arrays.add_column("dtype", no_wrap=True)
    arrays.add_column("logical axes", overflow="fold")
    arrays.add_column("checksum", overflow="ellipsis")
    for name, record in sorted(manifest.arrays.items()):
        names = ", ".join("·" if axis is None else axis for axis in record.names)
        arrays.add_row(name, "×".join(map(str, record.shape)), record.dtype, names, record.checksum)
    console = Console()
    console.print(summary)
    console.print(arrays)


@checkpoint.command()
@click.argument("directory", type=click.Path(path_type=pathlib.Path))
@FORMAT
def verify(directory: pathlib.Path, output_format: str) -> None:
    """Read every array of DIRECTORY back and check its files and checksums."""
    from checkpoints import verify as verify_checkpoint

    _note_leftovers(directory)
    manifest = _guarded(lambda: verify_checkpoint(directory))
    record = {"path": str(directory), "ok": True, "arrays": len(manifest.arrays), "bytes": manifest.total_bytes}
    _report(output_format, record, f"ok: {directory}: {len(manifest.arrays)} arrays, {manifest.total_bytes:,} bytes; files and checksums match")
