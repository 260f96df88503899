"""Cached decoding equals the teacher-forcing forward pass, for both families (multiquery and
multihead), in fp32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FP32_ATOL, FP32_RTOL

from zoo import Transformer, decode_step, forward, get_preset, init_cache, prefill


def fp32_model(name: str, seed: int = 0) -> Transformer:
    return Transformer(get_preset(name).replace(dtype="float32"), key=jax.random.key(seed))


@pytest.mark.parametrize("name", ["palm-tiny", "mtnlg-tiny", "palm-tiny-multihead"])
def test_prefill_then_decode_equals_full_forward(name):
    if name == "palm-tiny-multihead":
        config = get_preset("palm-tiny").replace(dtype="float32", n_kv_heads=8)
        model = Transformer(config, key=jax.random.key(0))
    else:
        model = fp32_model(name)
    tokens = jax.random.randint(jax.random.key(1), (3, 14), 0, 256, dtype=jnp.int32)
    expected = np.asarray(forward(model, tokens))

    cache = init_cache(model.config, batch=3, max_len=20)
    logits, cache = prefill(model, tokens[:, :8], cache)
    got = [np.asarray(logits)]
    for t in range(8, 14):
        logits, cache = decode_step(model, tokens[:, t], cache)
        got.append(np.asarray(logits))
    assert int(cache.length) == 14
    np.testing.assert_allclose(np.stack(got, axis=1), expected[:, 7:], atol=FP32_ATOL, rtol=FP32_RTOL)


def test_logits_depend_on_the_prompt():
    model = fp32_model("palm-tiny")
    a = forward(model, jnp.zeros((1, 4), jnp.int32))
    b = forward(model, jnp.ones((1, 4), jnp.int32))
    assert float(jnp.max(jnp.abs(a - b))) > 1e-3


def test_causality_future_tokens_do_not_change_past_logits():
    model = fp32_model("mtnlg-tiny")
    tokens = jax.random.randint(jax.random.key(3), (2, 10), 0, 256, dtype=jnp.int32)
    changed = tokens.at[:, 6:].set(7)
    np.testing.assert_allclose(forward(model, tokens)[:, :6], forward(model, changed)[:, :6], atol=FP32_ATOL, rtol=FP32_RTOL)


def test_bf16_model_runs_in_bf16_and_stays_close_to_fp32():
    # Both draw the same fp32 values from the same key; the bf16 one rounds them.
    low_model = Transformer(get_preset("palm-tiny"), key=jax.random.key(0))
    high_model = fp32_model("palm-tiny")
    assert low_model.blocks.mlp.w_in.value.dtype == jnp.bfloat16
    tokens = jnp.arange(12, dtype=jnp.int32).reshape(2, 6)
    low, high = forward(low_model, tokens), forward(high_model, tokens)
    assert low.dtype == jnp.float32
    assert 0 < float(jnp.max(jnp.abs(low - high))) < 0.1
