"""`zoo checkpoint`: write, inspect, check and convert checkpoints.

Every command that writes refuses an existing directory unless given --overwrite. Commands that
read a checkpoint place it by --layout/--attention/--mesh (default: one device), so a checkpoint is
read and written shard by shard, and saving under another placement than it was read with is how a
checkpoint is resharded.
"""

import json
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
    from layouts import Partitioning, get_attention_layout, get_layout, make_mesh, param_shardings, parse_mesh

    shape = parse_mesh(mesh)
    if layout is None:
        if shape != (1, 1, 1):
            raise click.UsageError(f"--mesh {mesh} needs a --layout to split the arrays by")
        return None
    partitioning = Partitioning(ffn=get_layout(layout), attention=get_attention_layout(attention), config=abstract.config)
    return param_shardings(abstract, partitioning, make_mesh(shape))


def _refuse_existing(out: pathlib.Path, overwrite: bool) -> None:
    from checkpoints.save import ensure_writable

    ensure_writable(out, overwrite)


def _read(source: pathlib.Path, layout, attention, mesh):
    from checkpoints import abstract_model, read_manifest, restore

    target = abstract_model(read_manifest(source))
    return restore(source, target, _shardings(target, layout, attention, mesh))


def _write(model, out: pathlib.Path, overwrite: bool) -> None:
    from checkpoints import save

    manifest = save(model, out, overwrite=overwrite)
    click.echo(f"wrote {out}: {manifest.config.name}, {manifest.weights} weights, {len(manifest.arrays)} arrays, {manifest.total_bytes:,} bytes")


@click.group()
def checkpoint() -> None:
    """Sharded checkpoints: init, save, info, verify, quantize, convert."""


@checkpoint.command()
@click.option("--model", required=True, type=click.Choice(sorted(PRESETS)), help="model preset")
@click.option("--weights", default="bf16", show_default=True, type=_WEIGHTS)
@click.option("--seed", default=0, show_default=True)
@_placement
@_OVERWRITE
@_OUT
def init(model: str, weights: str, seed: int, layout, attention, mesh, overwrite: bool, out: pathlib.Path) -> None:
    """Write a randomly initialised MODEL to OUT, created directly in its shards."""
    import jax

    from zoo import Transformer, build_abstract, get_preset
    from zoo.quantization import quantize

    def action():
        _refuse_existing(out, overwrite)
        config = get_preset(model)
        shardings = _shardings(build_abstract(config), layout, attention, mesh)
        # Initialised inside jit with the target shardings: no device ever holds the whole model.
        initialise = jax.jit(lambda key: Transformer(config, key=key), out_shardings=shardings)
        network = initialise(jax.random.key(seed))
        if weights == "int8":
            network = jax.jit(quantize)(network)
        _write(network, out, overwrite)

    _guarded(action)


@checkpoint.command()
@_placement
@_OVERWRITE
@_SOURCE
@_OUT
def save(layout, attention, mesh, overwrite: bool, source: pathlib.Path, out: pathlib.Path) -> None:
    """Read SOURCE onto --layout/--mesh and write it to OUT from there (each shard by the process
    holding it): resharding, or copying with a fresh manifest."""
    def action():
        _refuse_existing(out, overwrite)
        _write(_read(source, layout, attention, mesh), out, overwrite)

    _guarded(action)


@checkpoint.command()
@_placement
@_OVERWRITE
@_SOURCE
@_OUT
def quantize(layout, attention, mesh, overwrite: bool, source: pathlib.Path, out: pathlib.Path) -> None:
    """Write SOURCE's weights as int8 (per-output-channel, bf16 scales) to OUT."""
    import jax

    from checkpoints import CheckpointError, read_manifest
    from zoo.quantization import quantize as to_int8

    def action():
        _refuse_existing(out, overwrite)
        if read_manifest(source).weights == "int8":
            raise CheckpointError(f"{source} already holds int8 weights; quantize a bf16 or float32 checkpoint")
        _write(jax.jit(to_int8)(_read(source, layout, attention, mesh)), out, overwrite)

    _guarded(action)


@checkpoint.command()
@click.option("--dtype", required=True, type=click.Choice(["bfloat16", "float32"]), help="dtype to store the weights in")
@_placement
@_OVERWRITE
@_SOURCE
@_OUT
def convert(dtype: str, layout, attention, mesh, overwrite: bool, source: pathlib.Path, out: pathlib.Path) -> None:
    """Write SOURCE's weights in --dtype to OUT (and in another placement, with --layout/--mesh)."""
    from checkpoints import convert_dtype

    def action():
        _refuse_existing(out, overwrite)
        _write(convert_dtype(_read(source, layout, attention, mesh), dtype), out, overwrite)

    _guarded(action)


@checkpoint.command()
@click.argument("directory", type=click.Path(path_type=pathlib.Path))
@FORMAT
def info(directory: pathlib.Path, output_format: str) -> None:
    """Show the manifest of the checkpoint in DIRECTORY."""
    from checkpoints import read_manifest

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
    arrays = Table(title="arrays")
    for column in ("name", "shape", "dtype", "logical axes", "checksum"):
        arrays.add_column(column)
    for name, record in sorted(manifest.arrays.items()):
        names = ", ".join("·" if axis is None else axis for axis in record.names)
        arrays.add_row(name, "×".join(map(str, record.shape)), record.dtype, names, record.checksum)
    console = Console()
    console.print(summary)
    console.print(arrays)


@checkpoint.command()
@click.argument("directory", type=click.Path(path_type=pathlib.Path))
def verify(directory: pathlib.Path) -> None:
    """Read every array of DIRECTORY back and check its files and checksums."""
    from checkpoints import verify as verify_checkpoint

    manifest = _guarded(lambda: verify_checkpoint(directory))
    click.echo(f"ok: {directory}: {len(manifest.arrays)} arrays, {manifest.total_bytes:,} bytes; files and checksums match")
