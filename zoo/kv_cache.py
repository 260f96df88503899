"""The KV cache: keys and values of every layer, stacked like the layers, and how much is written."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.config import ModelConfig
from zoo.logical_axes import CACHE_BATCH, CACHE_HEAD_DIM, CACHE_KV_HEADS, CACHE_LAYERS, CACHE_SEQ

CACHE_NAMES = (CACHE_LAYERS, CACHE_BATCH, CACHE_SEQ, CACHE_KV_HEADS, CACHE_HEAD_DIM)


class KVCache(eqx.Module):
    k: Float[Array, "N B S K Q"]
    v: Float[Array, "N B S K Q"]
    length: Int[Array, ""]  # tokens written so far, the same for every sequence of the batch

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    @property
    def batch(self) -> int:
        return self.k.shape[1]


def init_cache(config: ModelConfig, batch: int, max_len: int, dtype: str | None = None) -> KVCache:
    """An empty cache for `batch` sequences of up to `max_len` tokens (bf16 unless told)."""
    shape = (config.n_layers, batch, max_len, config.n_kv_heads, config.d_head)
    dtype = jnp.dtype(dtype or config.dtype)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32))


def abstract_cache(config: ModelConfig, batch: int, max_len: int, dtype: str | None = None) -> KVCache:
    """The cache's shapes and dtypes, allocating nothing."""
    return jax.eval_shape(lambda: init_cache(config, batch, max_len, dtype))
