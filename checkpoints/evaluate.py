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
