"""Attention with any number of KV heads (K = 1 multiquery, K = H multihead) and a KV cache.

K and V are one fused projection W_kv [E, 2, K, Q] (docs/paper-model.md §4, paper §3.4). Queries are grouped
over their KV head (H = K·G) so one code path serves multiquery, grouped and multihead attention.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.config import ModelConfig
from zoo.constraints import Constrain
from zoo.logical_axes import (
    ACTIVATION_HEAD_DIM,
    ATTENTION_BATCH,
    ATTENTION_HEADS,
    ATTENTION_KV_HEADS,
    BATCH,
    CACHE_BATCH,
    CACHE_HEAD_DIM,
    CACHE_KV_HEADS,
    CACHE_SEQ,
    EMBED,
    FUSED,
    HEAD_DIM,
    HEADS,
    HIDDEN_HEADS,
    HIDDEN_KV_HEADS,
    KV_HEADS,
    MATMUL_HEADS,
    SEQ,
    Role,
)
from zoo.rope import apply_rope
from zoo.weights import AbstractWeight, init_weight, use_bias, use_weight

LAYER_CACHE_NAMES = (CACHE_BATCH, CACHE_SEQ, CACHE_KV_HEADS, CACHE_HEAD_DIM)
_QUERY_NAMES = (BATCH, SEQ, HIDDEN_HEADS, ACTIVATION_HEAD_DIM)
_KV_NAMES = (BATCH, SEQ, HIDDEN_KV_HEADS, ACTIVATION_HEAD_DIM)


class Attention(eqx.Module):
    w_q: AbstractWeight  # [E, H, Q]
    w_kv: AbstractWeight  # [E, 2, K, Q]
    w_o: AbstractWeight  # [H, Q, E]
    b_q: AbstractWeight | None  # [H, Q]
    b_kv: AbstractWeight | None  # [2, K, Q]
    b_o: AbstractWeight | None  # [E]
    config: ModelConfig = eqx.field(static=True)

    def __init__(self, config: ModelConfig, *, key):
        E, H, K, Q, dtype = config.d_model, config.n_heads, config.n_kv_heads, config.d_head, config.dtype
        key_q, key_kv, key_o = jax.random.split(key, 3)
        self.w_q = init_weight(key_q, (E, H, Q), (EMBED, HEADS, HEAD_DIM), dtype, fan_in=E)
        self.w_kv = init_weight(key_kv, (E, 2, K, Q), (EMBED, FUSED, KV_HEADS, HEAD_DIM), dtype, fan_in=E)
        self.w_o = init_weight(key_o, (H, Q, E), (HEADS, HEAD_DIM, EMBED), dtype, fan_in=H * Q)
        if config.use_bias:
            self.b_q = init_weight(None, (H, Q), (HEADS, HEAD_DIM), dtype, fan_in=None, zero=True)
            self.b_kv = init_weight(None, (2, K, Q), (FUSED, KV_HEADS, HEAD_DIM), dtype, fan_in=None, zero=True)
            self.b_o = init_weight(None, (E,), (EMBED,), dtype, fan_in=None, zero=True)
        else:
            self.b_q = self.b_kv = self.b_o = None
        self.config = config

    def __call__(
        self,
        x: Float[Array, "B T E"],
        positions: Int[Array, "B T"],
        cache: tuple[Float[Array, "B S K Q"], Float[Array, "B S K Q"]] | None,
        write_index: Int[Array, ""] | None,
        constrain: Constrain,
    ) -> tuple[Float[Array, "B T E"], tuple[Float[Array, "B S K Q"], Float[Array, "B S K Q"]] | None]:
        """Returns the output projection (before any reduction over a split E) and the cache with
        this call's keys and values written at `write_index`. Without a cache the call attends
        causally over its own tokens (the teacher-forcing forward pass)."""
        config, dtype = self.config, x.dtype
        # Projections leave their partial sums in the compute dtype (bf16 reductions, as the paper's
        # volumes assume).
        q = jnp.einsum("BTE,EHQ->BTHQ", x, use_weight(self.w_q, dtype, constrain))
        q = constrain(q + use_bias(self.b_q, dtype), Role.ACTIVATION, _QUERY_NAMES)
        # The fused K/V axis stays where the weight has it (see the MLP's input projection).
        kv = jnp.einsum("BTE,EGKQ->BTGKQ", x, use_weight(self.w_kv, dtype, constrain))
        if self.b_kv is not None:
            kv = kv + self.b_kv.materialize(dtype)
        k = constrain(kv[:, :, 0], Role.ACTIVATION, _KV_NAMES)
        v = constrain(kv[:, :, 1], Role.ACTIVATION, _KV_NAMES)
        if config.positions == "rope":
            q = apply_rope(q, positions, config.rope_base)
            k = apply_rope(k, positions, config.rope_base)

        if cache is not None:
            cache_k, cache_v = cache
            cache_k = jax.lax.dynamic_update_slice_in_dim(cache_k, k.astype(cache_k.dtype), write_index, axis=1)
            cache_v = jax.lax.dynamic_update_slice_in_dim(cache_v, v.astype(cache_v.dtype), write_index, axis=1)
            cache = (
                constrain(cache_k, Role.CACHE, LAYER_CACHE_NAMES),
                constrain(cache_v, Role.CACHE, LAYER_CACHE_NAMES),
            )
            k, v = cache

        out = attend(q, k.astype(dtype), v.astype(dtype), positions, config, constrain)
        out = constrain(out, Role.ACTIVATION, _QUERY_NAMES)
        out = constrain(out, Role.ACTIVATION, (BATCH, SEQ, MATMUL_HEADS, ACTIVATION_HEAD_DIM))
        projected = jnp.einsum("BTHQ,HQE->BTE", out, use_weight(self.w_o, dtype, constrain))
        return projected + use_bias(self.b_o, dtype), cache


def attend(
    q: Float[Array, "B T H Q"],
    k: Float[Array, "B S K Q"],
    v: Float[Array, "B S K Q"],
    positions: Int[Array, "B T"],
    config: ModelConfig,
    constrain: Constrain,
) -> Float[Array, "B T H Q"]:
    """Causal softmax attention in fp32. Key s is visible to the query at absolute position p when
    s <= p; cache slots not yet written lie beyond every query, so one mask serves both paths."""
    B, T, H, Q = q.shape
    K = k.shape[2]
    q = constrain(q, Role.ACTIVATION, (ATTENTION_BATCH, SEQ, ATTENTION_HEADS, ACTIVATION_HEAD_DIM))
    k = constrain(k, Role.ACTIVATION, (ATTENTION_BATCH, None, ATTENTION_KV_HEADS, ACTIVATION_HEAD_DIM))
    v = constrain(v, Role.ACTIVATION, (ATTENTION_BATCH, None, ATTENTION_KV_HEADS, ACTIVATION_HEAD_DIM))
    grouped = q.reshape(B, T, K, H // K, Q)
    scores = jnp.einsum("BTKGQ,BSKQ->BKGTS", grouped, k, preferred_element_type=jnp.float32)
    scores = scores * jnp.float32(1.0 / Q**0.5)
    visible = jnp.arange(k.shape[1])[None, None, :] <= positions[:, :, None]  # [B, T, S]
    scores = jnp.where(visible[:, None, None], scores, jnp.float32(-1e30))
    probabilities = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
    out = jnp.einsum("BKGTS,BSKQ->BTKGQ", probabilities, v, preferred_element_type=jnp.float32)
    out = out.astype(q.dtype).reshape(B, T, H, Q)
    return constrain(out, Role.ACTIVATION, (ATTENTION_BATCH, SEQ, ATTENTION_HEADS, ACTIVATION_HEAD_DIM))
