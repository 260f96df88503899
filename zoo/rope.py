"""Rotary position embeddings (rotate-half form) applied to queries and keys."""

import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def apply_rope(x: Float[Array, "B T H Q"], positions: Int[Array, "#B T"], base: float) -> Float[Array, "B T H Q"]:
    half = x.shape[-1] // 2
    inverse_frequency = base ** (-jnp.arange(half, dtype=jnp.float32) / half)  # [Q/2]
    angles = positions.astype(jnp.float32)[:, :, None] * inverse_frequency  # [B or 1, T, Q/2]
    sin = jnp.sin(angles)[:, :, None, :]
    cos = jnp.cos(angles)[:, :, None, :]
    x32 = x.astype(jnp.float32)
    first, second = x32[..., :half], x32[..., half:]
    rotated = jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return rotated.astype(x.dtype)
