"""Bits per byte: how well a byte-level model predicts text (a uniform model scores 8)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo import Transformer, forward


@eqx.filter_jit
def next_byte_loss(model: Transformer, windows: Int[Array, "B T"]) -> Float[Array, ""]:
    """Mean cross-entropy in nats of predicting each byte of `windows` from the bytes before it."""
    logits = forward(model, windows[:, :-1])
    log_probabilities = jax.nn.log_softmax(logits, axis=-1)
    targets = windows[:, 1:]
    chosen = jnp.take_along_axis(log_probabilities, targets[..., None], axis=-1)[..., 0]
    return -jnp.mean(chosen)


def bits_per_byte(model: Transformer, windows) -> float:
    return float(next_byte_loss(model, jnp.asarray(windows))) / math.log(2)


def main() -> None:
    """Prints a checkpoint's held-out bits per byte in its own weights and in int8.

    JAX_PLATFORMS=cpu python -m checkpoints.shipped.evaluate [CHECKPOINT]   (default: the shipped one)
    """
    import json
    import sys

    from checkpoints.shipped.corpus import held_out_windows
    from checkpoints.manifest import read_manifest
    from checkpoints.restore import manifest_model, restore
    from checkpoints.shipped import SHIPPED_CHECKPOINT
    from zoo.quantization import quantize

    directory = sys.argv[1] if len(sys.argv) > 1 else SHIPPED_CHECKPOINT
    manifest = read_manifest(directory)
    model = restore(directory, manifest_model(manifest))
    windows = held_out_windows()
    report = {"checkpoint": str(directory), "held_out_bytes_predicted": int(windows[:, 1:].size)}
    report[manifest.weights] = round(bits_per_byte(model, windows), 4)
    if manifest.weights != "int8":
        report["int8"] = round(bits_per_byte(jax.jit(quantize)(model), windows), 4)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
