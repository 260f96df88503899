"""`zoo generate`: text from a prompt with a small model on the local devices."""

import functools
import json
import pathlib

import click

from cli.options import CELL_DEFAULTS, FORMAT, run_guarded, usage_error
from layouts.partitioners import check_collective_matmul, check_partitioner
from zoo.presets import PRESETS
from zoo.sampling import MAX_TEMPERATURE, MIN_TEMPERATURE

# C0 controls but newline and tab, DEL, and the C1 controls (a terminal may take U+009B for the
# start of an escape sequence, as it takes ESC): a random model emits any byte.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\n\t"}


def printable(text: str) -> str:
    """`text` safe to print on a terminal: control characters shown as `\\xNN`, newlines and tabs kept."""
    return text.translate(_ESCAPES)


def _attention_help() -> str:
    return (
        f"attention layout for both phases [default: {CELL_DEFAULTS['prefill_attention']} for prefill, {CELL_DEFAULTS['decode_attention']} "
        "for decode]; a layout that splits the batch splits one prompt over no axes"
    )


def _utf8_prompt(context: click.Context, parameter: click.Parameter, value: str) -> str:
    """Python passes command-line bytes that are not UTF-8 on as lone surrogates (U+DC80..U+DCFF
    stand for the bytes 0x80..0xFF); refuse them here, where the byte is still known."""
    for index, character in enumerate(value):
        if "\udc80" <= character <= "\udcff":
            offset = len(value[:index].encode("utf-8"))
            raise click.UsageError(f"--prompt is not valid UTF-8: its byte {offset} is 0x{ord(character) - 0xDC00:02x}; pass UTF-8 text")
    return value


@click.command()
@click.option("--model", default=None, type=click.Choice(sorted(PRESETS)), help="a randomly initialised preset instead of a checkpoint")
@click.option(
    "--checkpoint",
    default=None,
    type=click.Path(path_type=pathlib.Path),
    help="checkpoint directory to generate with; default: the shipped trained palm-4m, unless --model asks for a random one",
)
@click.option("--prompt", default="The ", show_default=True, callback=_utf8_prompt)
@click.option("--gen-tokens", default=32, show_default=True, type=click.IntRange(min=1), help="tokens to generate")
@click.option("--temperature", default=0.0, show_default=True, type=float, help=f"0 is greedy, else {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}")
@click.option("--top-k", default=None, type=int)
@click.option("--top-p", default=None, type=float, help="in (0, 1]")
@click.option("--seed", default=0, show_default=True)
@click.option("--chips", default=None, type=click.IntRange(min=1), help=(
    "how many of the local devices to split the generation over; more than one implies splitting under the default "
    "layouts [default: 1; with a layout option, the largest power of two up to the local device count]"
))  # fmt: skip
@click.option("--layout", help="FFN layout for both phases (or a .toml file): generate sharded over the local devices")
@click.option("--prefill-layout", help=f"FFN layout for prefill [default: --layout, else {CELL_DEFAULTS['prefill_layout']}]")
@click.option("--decode-layout", help=f"FFN layout for decode [default: --layout, else {CELL_DEFAULTS['decode_layout']}]")
@click.option("--attention", help=_attention_help())
@click.option("--prefill-attention", help=f"attention layout for prefill [default: --attention, else {CELL_DEFAULTS['prefill_attention']}]")
@click.option("--decode-attention", help=f"attention layout for decode [default: --attention, else {CELL_DEFAULTS['decode_attention']}]")
@click.option("--mesh", help="logical mesh XxYxZ over the local devices [default: the decode layout's choice for --chips]")
@click.option("--partitioner", help=f"who writes the sharded program's collectives: explicit or compiler [default: {CELL_DEFAULTS['partitioner']}]")
@click.option("--collective-matmul", help="none, unidirectional or bidirectional (explicit partitioner) [default: none]")
@click.option("--prefill-chunk", type=click.IntRange(min=1), help="prompt tokens each layer takes at a time in prefill [default: the whole prompt]")
@FORMAT
def generate(
    model: str | None, checkpoint: pathlib.Path | None, prompt: str, gen_tokens: int, temperature: float, top_k, top_p, seed: int,
    chips: int | None, layout: str | None, prefill_layout: str | None, decode_layout: str | None, attention: str | None,
    prefill_attention: str | None, decode_attention: str | None, mesh: str | None, partitioner: str | None, collective_matmul: str | None,
    prefill_chunk: int | None, output_format: str,
) -> None:  # fmt: skip
    """Generate text from PROMPT with a byte-level model: the shipped trained palm-4m by default, the
    checkpoint given by --checkpoint, or a randomly initialised --model preset. With --chips above 1
    or a layout option, the model is split over that many local devices and generates under the
    layouts. Nothing is allocated before the work is checked to fit the devices' free memory."""
    import jax
    import jax.numpy as jnp

    from checkpoints.shipped import SHIPPED_CHECKPOINT
    from layouts.compiled.local_memory import check_fits_locally
    from layouts.processes import gathered
    from zoo import Sampling, generate_jit, get_preset
    from zoo.execution import execution_for
    from zoo.generation import check_token_budget, generation_bytes
    from zoo.tokenizer import decode, encode_batch

    sampling = run_guarded(lambda: Sampling(temperature, top_k, top_p))
    tokens = run_guarded(lambda: encode_batch([prompt]))
    batch, prompt_len = tokens.shape
    run_guarded(lambda: check_token_budget(prompt_len, gen_tokens))
    directory = SHIPPED_CHECKPOINT if checkpoint is None else checkpoint
    manifest = None if checkpoint is None and model is not None else _manifest(directory, model)
    config = get_preset(model) if manifest is None else manifest.config

    attentions = (prefill_attention or attention, decode_attention or attention)
    program = {"partitioner": partitioner or CELL_DEFAULTS["partitioner"], "collective_matmul": collective_matmul or CELL_DEFAULTS["collective_matmul"]}
    run_guarded(lambda: check_collective_matmul(program["collective_matmul"], check_partitioner(program["partitioner"])))
    split_options = (layout, prefill_layout, decode_layout, attention, prefill_attention, decode_attention, mesh, partitioner, collective_matmul, prefill_chunk)
    layout_given = any(option is not None for option in split_options)
    chip_count = _chip_count(chips, mesh, splitting=layout_given)
    placement = None  # where the weights go: one device, or the prefill layout's shards
    if chip_count == 1 and not layout_given and jax.process_count() == 1:
        layout_name, run, devices = None, generate_jit, jax.devices()[:1]
    else:
        layout_name, run, devices, placement = _sharded(config, batch, chip_count, layout, prefill_layout, decode_layout, attentions, mesh)
        run = functools.partial(run, **program, prefill_chunk=prefill_chunk)
    stored = {} if manifest is None else {"weights": manifest.weights, "weight_bytes": manifest.total_bytes}
    # The model runs as the devices' backend runs it fastest (`zoo.execution`).
    execution = execution_for(devices[0].platform, "int8" if stored.get("weights") == "int8" else "bf16", len(devices))
    required = generation_bytes(config, batch, prompt_len, gen_tokens, **stored, platform=devices[0].platform, execution=execution)
    run_guarded(lambda: check_fits_locally(required, f"generating {gen_tokens} tokens with {config.name}", devices))

    # Each process creates or reads only the shards its own devices hold.
    network = _initialised(config, seed, placement, execution) if manifest is None else _restored(directory, manifest, placement, execution)
    result = run_guarded(lambda: run(network, jnp.asarray(tokens), jax.random.key(seed), max_new_tokens=gen_tokens, sampling=sampling))
    generated = [int(t) for t in gathered(result.tokens)[0, : int(gathered(result.lengths)[0])]]
    text = decode(generated)
    if output_format == "json":
        click.echo(json.dumps({"model": config.name, "layout": layout_name, "prompt": prompt, "text": text, "tokens": generated}))
    else:
        click.echo(printable(prompt + text))


def _manifest(directory: pathlib.Path, model: str | None):
    """The checkpoint's manifest: its config and size, read without loading a weight."""
    from checkpoints import CheckpointError, read_manifest

    try:
        manifest = read_manifest(directory)
    except CheckpointError as error:
        raise usage_error(error) from None
    if model is not None and model != manifest.config.name:
        raise click.UsageError(f"--model {model} does not match {directory}, which holds {manifest.config.name}")
    return manifest


def _restored(directory: pathlib.Path, manifest, placement, execution):
    """The checkpoint's model, each process reading its devices' slices (`placement`: the layout
    and mesh; None: one device), then converted to the form `execution` runs it in."""
    from checkpoints import CheckpointError, manifest_model, restore
    from layouts.sharding import param_shardings
    from zoo.execution import executed_jit

    target = manifest_model(manifest)
    shardings = None if placement is None else param_shardings(target, *placement)
    try:
        return executed_jit(restore(directory, target, shardings), execution)
    except CheckpointError as error:
        raise usage_error(error) from None


def _initialised(config, seed: int, placement, execution):
    """A random model from `seed` in the form `execution` runs it, created in its shards
    (`placement`) or on one device."""
    import jax

    from layouts.sharding import init_in_shards, param_shardings
    from zoo.execution import executed_abstract
    from zoo.quantization import abstract_model

    shardings = None if placement is None else param_shardings(executed_abstract(abstract_model(config), execution), *placement)
    return init_in_shards(config, shardings, jax.random.key(seed), "bf16", execution)


def _chip_count(chips: int | None, mesh: str | None, *, splitting: bool) -> int:
    """The number of local devices to generate on: --chips, else the --mesh's size, else one
    unless a layout option asks for splitting."""
    import jax

    from layouts import parse_mesh
    from layouts.compiled.targets import local_chip_count

    available = jax.devices()
    if chips is not None and chips > len(available):
        raise click.UsageError(f"--chips {chips} is more than the {len(available)} local {available[0].platform} device(s); valid: 1 to {len(available)}")
    if mesh is not None:
        x, y, z = run_guarded(lambda: parse_mesh(mesh))
        if chips is not None and x * y * z != chips:
            raise click.UsageError(f"--mesh {mesh} has {x * y * z} chips but --chips is {chips}; pass a mesh of {chips} chips or leave one out")
        return x * y * z
    if chips is not None:
        return chips
    if jax.process_count() > 1:
        return len(available)  # with several processes, every process's devices (`layouts.mesh`)
    return local_chip_count() if splitting else 1


def _sharded(config, batch: int, chips: int, layout, prefill_layout, decode_layout, attentions: tuple[str | None, str | None], mesh):
    """(layout name, generate function, devices, (prefill partitioning, mesh)) for generation split
    over `chips` devices (every process's, when there are several)."""
    import jax

    from layouts import choose_mesh_shape, get_partitioning, make_mesh, parse_mesh, sharded_generate, weight_placements
    from layouts.fit import fit
    from zoo import build_abstract

    prefill_partitioning = run_guarded(
        lambda: get_partitioning(prefill_layout or layout or CELL_DEFAULTS["prefill_layout"], attentions[0] or CELL_DEFAULTS["prefill_attention"], config)
    )
    decode_partitioning = run_guarded(
        lambda: get_partitioning(decode_layout or layout or CELL_DEFAULTS["decode_layout"], attentions[1] or CELL_DEFAULTS["decode_attention"], config)
    )
    devices = jax.devices()[:chips]
    shape = run_guarded(lambda: parse_mesh(mesh) if mesh else choose_mesh_shape(chips, decode_partitioning.ffn, config, batch=batch))
    # The heads and the batch split as far as they divide (`layouts.fit`): one prompt splits over no axes.
    prefill_partitioning, decode_partitioning = (fit(partitioning, shape, batch) for partitioning in (prefill_partitioning, decode_partitioning))
    device_mesh = run_guarded(lambda: make_mesh(shape, devices))
    abstract = build_abstract(config)
    for partitioning in (prefill_partitioning, decode_partitioning):  # a dimension that does not divide fails before any allocation
        run_guarded(lambda: weight_placements(abstract, partitioning, dict(device_mesh.shape)))
    name = prefill_partitioning.name if prefill_partitioning.name == decode_partitioning.name else f"{prefill_partitioning.name} -> {decode_partitioning.name}"
    run = functools.partial(sharded_generate, prefill_partitioning=prefill_partitioning, decode_partitioning=decode_partitioning, mesh=device_mesh)
    return name, run, devices, (prefill_partitioning, device_mesh)
