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
@FORMAT
def generate(model: str | None, checkpoint: pathlib.Path | None, prompt: str, gen_tokens: int, temperature: float, top_k, top_p, seed: int, output_format: str) -> None:
    """Generate text from PROMPT with a byte-level model: the shipped trained palm-4m by default, the
    checkpoint given by --checkpoint, or a randomly initialised --model preset."""
    import jax
    import jax.numpy as jnp

    from zoo import Sampling, Transformer, generate_jit, get_preset
    from zoo.tokenizer import decode, encode_batch

    sampling = run_guarded(lambda: Sampling(temperature, top_k, top_p))
    tokens = jnp.asarray(run_guarded(lambda: encode_batch([prompt])))
    network = _checkpointed(checkpoint, model) if checkpoint is not None or model is None else Transformer(get_preset(model), key=jax.random.key(seed))
    result = run_guarded(lambda: generate_jit(network, tokens, jax.random.key(seed), max_new_tokens=gen_tokens, sampling=sampling))
    generated = [int(t) for t in result.tokens[0, : int(result.lengths[0])]]
    text = decode(generated)
    if output_format == "json":
        click.echo(json.dumps({"model": network.config.name, "layout": None, "prompt": prompt, "text": text, "tokens": generated}))
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
