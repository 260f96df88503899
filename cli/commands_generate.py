"""`zoo generate`: text from a prompt with a small model on the local devices."""

import json

import click

from cli.options import FORMAT, run_guarded
from zoo.presets import PRESETS


@click.command()
@click.option("--model", default="palm-tiny", show_default=True, type=click.Choice(sorted(PRESETS)), help="model preset")
@click.option("--prompt", default="The ", show_default=True)
@click.option("--gen-tokens", default=32, show_default=True, type=click.IntRange(min=1), help="tokens to generate")
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(min=0.0), help="0 is greedy")
@click.option("--top-k", default=None, type=click.IntRange(min=1))
@click.option("--top-p", default=None, type=click.FloatRange(min=0.0, max=1.0, min_open=True))
@click.option("--seed", default=0, show_default=True)
@FORMAT
def generate(model: str, prompt: str, gen_tokens: int, temperature: float, top_k, top_p, seed: int, output_format: str) -> None:
    """Generate text from PROMPT with a byte-level model (randomly initialised until a checkpoint is given)."""
    import jax
    import jax.numpy as jnp

    from zoo import Sampling, Transformer, generate_jit, get_preset
    from zoo.tokenizer import decode, encode_batch

    config = get_preset(model)
    sampling = run_guarded(lambda: Sampling(temperature, top_k, top_p))
    tokens = jnp.asarray(run_guarded(lambda: encode_batch([prompt])))
    network = Transformer(config, key=jax.random.key(seed))
    result = run_guarded(lambda: generate_jit(network, tokens, jax.random.key(seed), max_new_tokens=gen_tokens, sampling=sampling))
    generated = [int(t) for t in result.tokens[0, : int(result.lengths[0])]]
    text = decode(generated)
    if output_format == "json":
        click.echo(json.dumps({"model": model, "layout": None, "prompt": prompt, "text": text, "tokens": generated}))
    else:
        click.echo(prompt + text)
