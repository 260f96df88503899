"""`zoo generate`: text from a prompt with a small model on the local devices."""

import json
import pathlib

import click

from cli.options import FORMAT, run_guarded, usage_error
from zoo.presets import PRESETS


@click.command()
@click.option("--model", default=None, type=click.Choice(sorted(PRESETS)), help="a randomly initialised preset instead of a checkpoint")
@click.option(
    "--checkpoint",
    default=None,
    type=click.Path(path_type=pathlib.Path),
    help="checkpoint directory to generate with; default: the shipped trained palm-4m, unless --model asks for a random one",
)
@click.option("--prompt", default="The ", show_default=True)
@click.option("--gen-tokens", default=32, show_default=True, type=click.IntRange(min=1), help="tokens to generate")
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(min=0.0), help="0 is greedy")
@click.option("--top-k", default=None, type=click.IntRange(min=1))
@click.option("--top-p", default=None, type=click.FloatRange(min=0.0, max=1.0, min_open=True))
@click.option("--seed", default=0, show_default=True)
@click.option("--layout", help="FFN layout for both phases (or a .toml file): generate sharded over the local devices")
@click.option("--prefill-layout", help="FFN layout for prefill [default: --layout]")
@click.option("--decode-layout", help="FFN layout for decode [default: --layout]")
@click.option("--attention", help="attention layout for both phases [default: heads for prefill, heads for decode]")
@click.option("--mesh", help="logical mesh XxYxZ over the local devices [default: the layout's choice for all of them]")
@FORMAT
def generate(
    model: str | None, checkpoint: pathlib.Path | None, prompt: str, gen_tokens: int, temperature: float, top_k, top_p, seed: int,
    layout: str | None, prefill_layout: str | None, decode_layout: str | None, attention: str | None, mesh: str | None, output_format: str,
) -> None:  # fmt: skip
    """Generate text from PROMPT with a byte-level model: the shipped trained palm-4m by default, the
    checkpoint given by --checkpoint, or a randomly initialised --model preset. With --layout, the
    model is split over the local devices and generates under that layout."""
    import jax
    import jax.numpy as jnp

    from zoo import Sampling, Transformer, generate_jit, get_preset
    from zoo.tokenizer import decode, encode_batch

    sampling = run_guarded(lambda: Sampling(temperature, top_k, top_p))
    tokens = jnp.asarray(run_guarded(lambda: encode_batch([prompt])))
    network = _checkpointed(checkpoint, model) if checkpoint is not None or model is None else Transformer(get_preset(model), key=jax.random.key(seed))
    layouts_given = any(option is not None for option in (layout, prefill_layout, decode_layout, attention, mesh))
    if layouts_given:
        layout_name, run = _sharded(network.config, layout, prefill_layout, decode_layout, attention, mesh)
    else:
        layout_name, run = None, generate_jit
    result = run_guarded(lambda: run(network, tokens, jax.random.key(seed), max_new_tokens=gen_tokens, sampling=sampling))
    generated = [int(t) for t in result.tokens[0, : int(result.lengths[0])]]
    text = decode(generated)
    if output_format == "json":
        click.echo(json.dumps({"model": network.config.name, "layout": layout_name, "prompt": prompt, "text": text, "tokens": generated}))
    else:
        click.echo(prompt + text)


def _checkpointed(directory: pathlib.Path | None, model: str | None):
    from checkpoints import CheckpointError, abstract_model, read_manifest, restore
    from checkpoints.shipped import SHIPPED_CHECKPOINT

    directory = SHIPPED_CHECKPOINT if directory is None else directory
    try:
        manifest = read_manifest(directory)
        if model is not None and model != manifest.config.name:
            raise click.UsageError(f"--model {model} does not match {directory}, which holds {manifest.config.name}")
        return restore(directory, abstract_model(manifest))
    except CheckpointError as error:
        raise usage_error(error) from None


def _sharded(config, layout, prefill_layout, decode_layout, attention, mesh):
    """(layout name, generate function) for generation under the given layouts on the local devices."""
    from functools import partial

    import jax

    from layouts import Partitioning, choose_mesh_shape, get_attention_layout, get_layout, make_mesh, parse_mesh, sharded_generate

    def partitioning(name):
        return Partitioning(get_layout(name), get_attention_layout(attention or "heads"), config)

    default = layout or "2d-ws"
    prefill_partitioning = run_guarded(lambda: partitioning(prefill_layout or default))
    decode_partitioning = run_guarded(lambda: partitioning(decode_layout or default))
    devices = len(jax.devices())
    chips = 1 << (devices.bit_length() - 1)
    shape = run_guarded(lambda: parse_mesh(mesh) if mesh else choose_mesh_shape(chips, decode_partitioning.ffn, config))
    device_mesh = run_guarded(lambda: make_mesh(shape))
    name = prefill_partitioning.name if prefill_partitioning.name == decode_partitioning.name else f"{prefill_partitioning.name} -> {decode_partitioning.name}"
    return name, partial(sharded_generate, prefill_partitioning=prefill_partitioning, decode_partitioning=decode_partitioning, mesh=device_mesh)
