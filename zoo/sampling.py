"""Choosing the next token from logits: greedy, temperature, top-k and top-p (nucleus)."""

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.errors import ZooError

# Below this a positive temperature is greedy in all but name (a logit gap of 0.05 already weighs
# e^50 to 1), and far smaller ones overflow logits / temperature to inf (NaN after softmax).
MIN_TEMPERATURE = 1e-3
# Above this sampling is uniform over the vocabulary in all but name: a logit gap of 10 (22,000
# to 1 at temperature 1) weighs 1.1 to 1 at 100. Larger values are typos, and inf turns every
# logit into 0 or NaN.
MAX_TEMPERATURE = 100.0


class SamplingError(ZooError):
    """Sampling settings outside their valid ranges (NaN included)."""


@dataclasses.dataclass(frozen=True)
class Sampling:
    """temperature 0 is greedy, otherwise in [MIN_TEMPERATURE, MAX_TEMPERATURE]; top_k and top_p
    filter before sampling (None: no filter)."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self):
        # Written so that NaN fails every check: NaN compares false with everything.
        temperature = self.temperature
        if not (temperature == 0 or MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
            raise SamplingError(f"temperature must be 0 (greedy) or in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}], got {temperature!r}")
        top_k = self.top_k
        if top_k is not None and not top_k >= 1:
            raise SamplingError(f"top_k must be a positive integer or None, got {top_k!r}")
        top_p = self.top_p
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise SamplingError(f"top_p must be in (0, 1] or None, got {top_p!r}")


GREEDY = Sampling()


def sample(logits: Float[Array, "B V"], key, sampling: Sampling) -> Int[Array, " B"]:
    if sampling.temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits.astype(jnp.float32) / jnp.float32(sampling.temperature)
    if sampling.top_k is not None and sampling.top_k < logits.shape[-1]:
        kth_largest = jax.lax.top_k(logits, sampling.top_k)[0][:, -1:]
        logits = jnp.where(logits < kth_largest, -jnp.inf, logits)
    if sampling.top_p is not None and sampling.top_p < 1.0:
        ordered = jnp.sort(logits, axis=-1)[:, ::-1]
        cumulative = jnp.cumsum(jax.nn.softmax(ordered, axis=-1), axis=-1)
        # Keep the smallest prefix whose mass reaches top_p: a token stays if the mass before it is < p.
        mass_before = cumulative - jax.nn.softmax(ordered, axis=-1)
        kept = jnp.sum(mass_before < sampling.top_p, axis=-1, keepdims=True)
        threshold = jnp.take_along_axis(ordered, kept - 1, axis=-1)
        logits = jnp.where(logits < threshold, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
