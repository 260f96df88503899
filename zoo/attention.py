"""Attention with any number of KV heads (K = 1 multiquery, K = H multihead) and a KV cache.

K and V are one fused projection W_kv [E, 2, K, Q] (docs/paper-model.md §4, paper §3.4). Queries are grouped
over their KV head (H = K·G) so one code path serves multiquery, grouped and multihead attention.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from zoo.config import ModelConfig
from zoo.constraints import Constrain, Contracted, MatmulInput, Placed, placed
from zoo.kv_cache import CACHE_NAMES, LayerSlot
from zoo.logical_axes import (
    ACTIVATION_HEAD_DIM,
    ATTENTION_BATCH,
    ATTENTION_HEAD_DIM,
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
    MATMUL_HEAD_DIM,
    MATMUL_HEADS,
    SEQ,
    Role,
)
from zoo.matmul_form import DECLARED, MatmulForm, project
from zoo.rope import apply_rope
from zoo.weights import AbstractWeight, init_weight, use_bias, use_weight, used

LAYER_CACHE_NAMES = (CACHE_BATCH, CACHE_SEQ, CACHE_KV_HEADS, CACHE_HEAD_DIM)
_QUERY_NAMES = (BATCH, SEQ, HIDDEN_HEADS, ACTIVATION_HEAD_DIM)  # queries as projected
_FUSED_KV_NAMES = (BATCH, SEQ, None, HIDDEN_KV_HEADS, ACTIVATION_HEAD_DIM)  # [B, T, 2, K, Q] as projected
_FUSED_CACHE_NAMES = (CACHE_BATCH, CACHE_SEQ, None, CACHE_KV_HEADS, CACHE_HEAD_DIM)  # as the cache holds them
_FUSED_ATTENTION_KV_NAMES = (ATTENTION_BATCH, SEQ, None, ATTENTION_KV_HEADS, ATTENTION_HEAD_DIM)
_ATTENTION_QUERY_NAMES = (ATTENTION_BATCH, SEQ, ATTENTION_HEADS, ATTENTION_HEAD_DIM)  # where attention runs
_ATTENTION_KV_NAMES = (ATTENTION_BATCH, None, ATTENTION_KV_HEADS, ATTENTION_HEAD_DIM)
_MATMUL_HEAD_NAMES = (BATCH, SEQ, MATMUL_HEADS, MATMUL_HEAD_DIM)  # as W_o consumes the heads


class Attention(eqx.Module):
    w_q: AbstractWeight  # [E, H, Q]
    w_kv: AbstractWeight  # [E, 2, K, Q]
    w_o: AbstractWeight  # [H, Q, E]
    b_q: AbstractWeight | None  # [H, Q]
    b_kv: AbstractWeight | None  # [2, K, Q]
    b_o: AbstractWeight | None  # [E]
    config: ModelConfig = eqx.field(static=True)
    # How a backend runs the projections and orders the attention scores' rows (`zoo.execution`).
    matmuls: MatmulForm = eqx.field(static=True)
    query_major_scores: bool = eqx.field(static=True)

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
        self.matmuls, self.query_major_scores = DECLARED, False

    def __call__(
        self,
        x: MatmulInput,
        x_placed: Placed,
        positions: Int[Array, "1 T"],
        cache: LayerSlot | None,
        write_index: Int[Array, ""] | None,
        constrain: Constrain,
    ) -> tuple[tuple[Contracted, Placed], LayerSlot | None]:
        """Returns the output projection (before any reduction over split heads; the block adds
        `b_o` once it is reduced) with where it is, and the cache with this call's keys and values
        written at `write_index` into the stacked cache, in place. Without a cache the call attends causally over its own tokens
        (the teacher-forcing forward pass)."""
        config, dtype = self.config, x.dtype
        # Projections leave their partial sums in the compute dtype (bf16 reductions, as the paper's
        # volumes assume), unless one CPU device runs them in its own form (`zoo.matmul_form`).
        q, q_placed = project(constrain, "BTE,EHQ->BTHQ", x, x_placed, use_weight(self.w_q, dtype, constrain), used(self.w_q), self.matmuls)
        q = constrain(q, Role.ACTIVATION, _QUERY_NAMES, source=q_placed)
        q = q + use_bias(self.b_q, dtype, constrain, Role.ACTIVATION, _QUERY_NAMES[2:])
        # The fused K/V axis stays where the weight has it (see the MLP's input projection).
        kv, kv_placed = project(constrain, "BTE,EGKQ->BTGKQ", x, x_placed, use_weight(self.w_kv, dtype, constrain), used(self.w_kv), self.matmuls)
        kv = constrain(kv, Role.ACTIVATION, _FUSED_KV_NAMES, source=kv_placed)
        kv = kv + use_bias(self.b_kv, dtype, constrain, Role.ACTIVATION, _FUSED_KV_NAMES[2:])
        # Keys and values go where attention runs, together (one collective), and into the cache,
        # which is kept there; the queries likewise.
        at_kv = placed(Role.ACTIVATION, _FUSED_KV_NAMES)
        if cache is not None:
            kv = constrain(kv, Role.CACHE, _FUSED_CACHE_NAMES, source=at_kv)
        else:
            kv = constrain(kv, Role.ACTIVATION, _FUSED_ATTENTION_KV_NAMES, source=at_kv)
        q = constrain(q, Role.ACTIVATION, _ATTENTION_QUERY_NAMES, source=placed(Role.ACTIVATION, _QUERY_NAMES))
        k, v = kv[:, :, 0], kv[:, :, 1]
        if config.positions == "rope":
            q = apply_rope(q, positions, config.rope_base)
            k = apply_rope(k, positions, config.rope_base)
        if cache is not None:
            cache = cache.write(k, v, write_index)
            at_stacked = placed(Role.CACHE, CACHE_NAMES)
            cache = LayerSlot(
                constrain(cache.k, Role.CACHE, CACHE_NAMES, source=at_stacked), constrain(cache.v, Role.CACHE, CACHE_NAMES, source=at_stacked), cache.layer
            )
            # The cache is where attention runs: these only tell the compiler so.
            at_cache = placed(Role.CACHE, LAYER_CACHE_NAMES)
            k, v = (constrain(each.astype(dtype), Role.ACTIVATION, _ATTENTION_KV_NAMES, source=at_cache) for each in cache.read())

        out = attend(q, k, v, positions, config, self.query_major_scores)
        # Back to the heads' placement, then where W_o keeps its heads.
        out = constrain(out, Role.ACTIVATION, _QUERY_NAMES, source=placed(Role.ACTIVATION, _ATTENTION_QUERY_NAMES))
        out = constrain(out, Role.ACTIVATION, _MATMUL_HEAD_NAMES, source=placed(Role.ACTIVATION, _QUERY_NAMES), into_contraction=True)
        at_heads = placed(Role.ACTIVATION, _MATMUL_HEAD_NAMES)
        projected = project(constrain, "BTHQ,HQE->BTE", out, at_heads, use_weight(self.w_o, dtype, constrain), used(self.w_o), self.matmuls)
        return projected, cache


def attend(
    q: Float[Array, "B T H Q"],
    k: Float[Array, "B S K Q"],
    v: Float[Array, "B S K Q"],
    positions: Int[Array, "1 T"],
    config: ModelConfig,
    query_major: bool = False,
) -> Float[Array, "B T H Q"]:
    """Causal softmax attention in fp32, its scores heads-major or `query_major` (see below). Key s
    is visible to the query at absolute position p when s <= p; cache slots not yet written lie
    beyond every query, so one mask serves both paths.
    Everything here is per sequence and per KV head, so it runs as well on one chip's shard of the
    batch or of the heads as on the whole."""
    B, T, H, Q = q.shape
    K = k.shape[2]
    grouped = q.reshape(B, T, K, H // K, Q)
    # Heads-major scores [B, K, G, T, S] put [T, S] minor, which a TPU tiles without padding.
    # Query-major scores [B, K, T, G, S] keep the queries' own order: with one KV head a sequence's
    # queries are one [T·G, Q] matrix as projected, so on XLA:CPU neither matmul needs a transposed
    # copy of the queries, the scores or the output (batch 8 × 512: 178 -> 108 ms,
    # `benchmarks/cpu_forms.py`); on a TPU the same order pads G up to a tile (palm-8b's prefill
    # under wg-xyz compiled to 1.35× its estimate in `tests/test_compiled_memory.py`).
    order = "BKTGS" if query_major else "BKGTS"
    scores = jnp.einsum(f"BTKGQ,BSKQ->{order}", grouped, k, preferred_element_type=jnp.float32)
    scores = scores * jnp.float32(1.0 / Q**0.5)
    visible = jnp.arange(k.shape[1])[None, None, :] <= positions[:, :, None]  # [1, T, S]
    visible = visible[:, None, :, None, :] if query_major else visible[:, None, None]
    scores = jnp.where(visible, scores, jnp.float32(-1e30))
    probabilities = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
    out = jnp.einsum(f"{order},BSKQ->BTKGQ", probabilities, v, preferred_element_type=jnp.float32)
    return out.astype(q.dtype).reshape(B, T, H, Q)
