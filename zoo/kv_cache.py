"""The KV cache: keys and values of every layer, stacked like the layers, and how much is written."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.config import ModelConfig
from zoo.logical_axes import CACHE_BATCH, CACHE_HEAD_DIM, CACHE_KV_HEADS, CACHE_LAYERS, CACHE_SEQ

CACHE_NAMES = (CACHE_LAYERS, CACHE_BATCH, CACHE_SEQ, CACHE_KV_HEADS, CACHE_HEAD_DIM)

# Caches are allocated in whole multiples of this many positions. TPU lays a bf16 cache out in
# tiles of 8 positions by 128 lanes; with the cache's layout fixed at the step's boundary, a length
# off that tile made the compiler copy the whole cache in and out of the step (measured:
# palm-540b-64h decode, batch 128 on 64 v4 chips, a cache of 40001 tokens held 9 GiB per chip more
# than one of 40040). The slots past the length asked for
# lie beyond every position, so attention never sees them.
CACHE_LEN_MULTIPLE = 8


def allocated_len(max_len: int) -> int:
    """The positions a cache for `max_len` tokens is allocated with: `max_len` rounded up to whole tiles."""
    return -(-max_len // CACHE_LEN_MULTIPLE) * CACHE_LEN_MULTIPLE


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


class LayerSlot(eqx.Module):
    """One layer's place in the stacked cache, as the layer loop carries it: the whole [N, B, S, K, Q]
    keys and values and the layer's index. A layer writes its new tokens into the stacked arrays
    (an in-place dynamic-update-slice of the loop's carry) and reads its own slice back, so the
    program holds one cache: a scan that took the cache as input and returned it as output would
    hold two. Batch and heads are where attention runs, which under the explicit partitioner (each
    chip its own shard) need not be where the residual stream splits them: they go unchecked."""

    k: Float[Array, "N _ S _ Q"]
    v: Float[Array, "N _ S _ Q"]
    layer: Int[Array, ""]

    def write(self, k: Float[Array, "_ T _ Q"], v: Float[Array, "_ T _ Q"], index: Int[Array, ""]) -> "LayerSlot":
        """The slot with `k` and `v` written at sequence position `index` of this layer."""
        zero = jnp.zeros((), jnp.int32)
        start = (self.layer.astype(jnp.int32), zero, index.astype(jnp.int32), zero, zero)
        return LayerSlot(
            jax.lax.dynamic_update_slice(self.k, k[None].astype(self.k.dtype), start),
            jax.lax.dynamic_update_slice(self.v, v[None].astype(self.v.dtype), start),
            self.layer,
        )

    def read(self) -> tuple[Float[Array, "_ S _ Q"], Float[Array, "_ S _ Q"]]:
        """This layer's keys and values."""
        return (
            jax.lax.dynamic_index_in_dim(self.k, self.layer, axis=0, keepdims=False),
            jax.lax.dynamic_index_in_dim(self.v, self.layer, axis=0, keepdims=False),
        )


def init_cache(config: ModelConfig, batch: int, max_len: int, dtype: str | None = None) -> KVCache:
    """An empty cache for `batch` sequences of up to `max_len` tokens (bf16 unless told), with room
    for `allocated_len(max_len)`."""
    shape = (config.n_layers, batch, allocated_len(max_len), config.n_kv_heads, config.d_head)
    dtype = jnp.dtype(dtype or config.dtype)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32))


def abstract_cache(config: ModelConfig, batch: int, max_len: int, dtype: str | None = None) -> KVCache:
    """The cache's shapes and dtypes, allocating nothing."""
    return jax.eval_shape(lambda: init_cache(config, batch, max_len, dtype))
