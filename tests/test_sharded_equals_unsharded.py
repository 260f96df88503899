"""On 8 forced CPU devices (mesh 2×2×2): every built-in layout, with the prefill/decode attention
pairs the paper uses, gives the unsharded model's logits (fp32) and greedy tokens, under the
explicit partitioner (the layout's own collectives) and under the compiler's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FP32_ATOL, FP32_RTOL, slow_but

from layouts import ATTENTION_LAYOUTS, FFN_LAYOUTS, PARTITIONERS, ExplicitProgramError, Partitioning, build_steps, make_mesh, sharded_generate
from zoo import Transformer, decode_step, generate_jit, get_preset, init_cache, prefill

BATCH, PROMPT, DECODE_STEPS = 8, 6, 3


@pytest.fixture(scope="module", params=["palm-tiny", "mtnlg-tiny"])
def reference(request):
    config = get_preset(request.param).replace(dtype="float32")
    model = Transformer(config, key=jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (BATCH, PROMPT + DECODE_STEPS), 0, 256, dtype=jnp.int32)
    logits, cache = jax.jit(prefill)(model, tokens[:, :PROMPT], init_cache(config, BATCH, PROMPT + DECODE_STEPS))
    expected = [logits]
    step = jax.jit(decode_step)
    for t in range(PROMPT, PROMPT + DECODE_STEPS):
        logits, cache = step(model, tokens[:, t], cache)
        expected.append(logits)
    return model, tokens, np.stack(expected, axis=1)


# (prefill FFN layout, prefill attention, decode attention): the paper prefills over heads and
# decodes with batch-sharded attention; the partial batch variants are covered on 2d-ws.
CASES = [(ffn, "heads", "batch") for ffn in FFN_LAYOUTS] + [("2d-ws", "heads", "batch-z"), ("2d-ws", "heads", "batch-yz"), ("1d-ws", "heads", "heads")]


@pytest.mark.parametrize("partitioner", PARTITIONERS)
@pytest.mark.parametrize("ffn,prefill_attention,decode_attention", CASES)
def test_sharded_prefill_and_decode_equal_unsharded(reference, devices, ffn, prefill_attention, decode_attention, partitioner):
    model, tokens, expected = reference
    config = model.config
    # Decode with 2D weight-stationary after any prefill layout, as the paper does.
    prefill_p = Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS[prefill_attention], config)
    decode_p = Partitioning(FFN_LAYOUTS["2d-ws"], ATTENTION_LAYOUTS[decode_attention], config)
    steps = build_steps(
        model, prefill_p, decode_p, make_mesh((2, 2, 2)), batch=BATCH, input_len=PROMPT, max_len=PROMPT + DECODE_STEPS, partitioner=partitioner
    )
    cache = jax.device_put(init_cache(config, BATCH, PROMPT + DECODE_STEPS), steps.prefill.cache_shardings)
    logits, cache = steps.prefill.step(steps.place_model(model, "prefill"), tokens[:, :PROMPT], cache)
    if partitioner == "explicit" and config.n_kv_heads > 1 and decode_attention in ("batch-z", "batch-yz"):
        # Attention over part of the batch relabels which chip holds which heads; with several
        # KV heads the cache would hold them relabelled, so the explicit partitioner refuses.
        with pytest.raises(ExplicitProgramError, match="relabel the 8 KV heads"):
            steps.decode.step(steps.place_model(model, "decode"), tokens[:, PROMPT], steps.to_decode(cache))
        return
    got = [logits]
    cache = steps.to_decode(cache)
    decode_model = steps.place_model(model, "decode")
    for t in range(PROMPT, PROMPT + DECODE_STEPS):
        logits, cache = steps.decode.step(decode_model, tokens[:, t], cache)
        got.append(logits)
    assert cache.k.sharding.spec == steps.decode.cache_shardings.k.spec
    np.testing.assert_allclose(np.stack(got, axis=1), expected, atol=FP32_ATOL, rtol=FP32_RTOL)


@pytest.mark.parametrize("partitioner,collective_matmul", [(partitioner, "none") for partitioner in PARTITIONERS] + [("explicit", "bidirectional")])
@pytest.mark.parametrize("ffn", ["1d-ws", "2d-ws", "wg-xyz"])
def test_sharded_greedy_generation_gives_the_same_tokens(reference, devices, ffn, partitioner, collective_matmul):
    model, tokens, _ = reference
    config = model.config
    expected = generate_jit(model, tokens[:, :PROMPT], jax.random.key(0), max_new_tokens=5)
    got = sharded_generate(
        model,
        tokens[:, :PROMPT],
        jax.random.key(0),
        prefill_partitioning=Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS["heads"], config),
        decode_partitioning=Partitioning(FFN_LAYOUTS["2d-ws"], ATTENTION_LAYOUTS["batch"], config),
        mesh=make_mesh((2, 2, 2)),
        max_new_tokens=5,
        partitioner=partitioner,
        collective_matmul=collective_matmul,
    )
    np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(expected.tokens))


@pytest.mark.parametrize("partitioner", PARTITIONERS)
@pytest.mark.parametrize("ffn", list(FFN_LAYOUTS))
def test_chunked_prefill_equals_the_whole_prompt(reference, devices, ffn, partitioner):
    """Chunks of 4 tokens (one whole chunk and a remainder of 2) attend over the cache written so
    far: the last position's logits and every cached key and value equal the unchunked prefill's."""
    model, tokens, expected = reference
    config = model.config
    partitioning = Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS["heads"], config)
    steps = build_steps(
        model, partitioning, partitioning, make_mesh((2, 2, 2)), batch=BATCH, input_len=PROMPT, max_len=PROMPT + DECODE_STEPS,
        partitioner=partitioner, prefill_chunk=4,
    )  # fmt: skip
    cache = jax.device_put(init_cache(config, BATCH, PROMPT + DECODE_STEPS), steps.prefill.cache_shardings)
    logits, cache = steps.prefill.step(steps.place_model(model, "prefill"), tokens[:, :PROMPT], cache)
    _, whole = jax.jit(prefill)(model, tokens[:, :PROMPT], init_cache(config, BATCH, PROMPT + DECODE_STEPS))
    np.testing.assert_allclose(np.asarray(logits), expected[:, 0], atol=FP32_ATOL, rtol=FP32_RTOL)
    np.testing.assert_allclose(np.asarray(cache.k), np.asarray(whole.k), atol=FP32_ATOL, rtol=FP32_RTOL)
    np.testing.assert_allclose(np.asarray(cache.v), np.asarray(whole.v), atol=FP32_ATOL, rtol=FP32_RTOL)
    assert int(cache.length) == PROMPT


_ONE_PROMPT = [(ffn, attention) for ffn in FFN_LAYOUTS for attention in ATTENTION_LAYOUTS]


@pytest.mark.parametrize("ffn,attention", slow_but(_ONE_PROMPT, [case for case in _ONE_PROMPT if case[1] in ("heads", "batch")]))
def test_one_prompt_generates_the_unsharded_tokens_under_every_layout(devices, ffn, attention):
    # A batch of one on 8 devices: the layouts that split the batch (wg-x, wg-xy, wg-xyz, and
    # attention over the batch) split it over no axes (`layouts.fit`) and repeat its work.
    config = get_preset("palm-tiny").replace(dtype="float32")
    model = Transformer(config, key=jax.random.key(0))
    prompt = jax.random.randint(jax.random.key(1), (1, PROMPT), 0, 256, dtype=jnp.int32)
    expected = generate_jit(model, prompt, jax.random.key(0), max_new_tokens=3)
    partitioning = Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS[attention], config)
    got = sharded_generate(
        model, prompt, jax.random.key(0), prefill_partitioning=partitioning, decode_partitioning=partitioning, mesh=make_mesh((2, 2, 2)), max_new_tokens=3
    )
    np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(expected.tokens))


@pytest.mark.parametrize("partitioner", PARTITIONERS)
@pytest.mark.parametrize("ffn", ["1d-ws", "2d-ws"])
@pytest.mark.parametrize("preset", ["palm-tiny", "mtnlg-tiny"])
def test_more_chips_than_heads_generates_the_unsharded_tokens(devices, preset, ffn, partitioner):
    # 4 query heads (and under mtnlg-tiny 4 K/V heads) on 8 devices: the heads split over the
    # leading axes that divide them, the head dimension over the rest (`layouts.fit`).
    config = get_preset(preset).replace(dtype="float32", n_heads=4, n_kv_heads=1 if preset == "palm-tiny" else 4, d_head=32)
    model = Transformer(config, key=jax.random.key(0))
    prompt = jax.random.randint(jax.random.key(1), (BATCH, PROMPT), 0, 256, dtype=jnp.int32)
    expected = generate_jit(model, prompt, jax.random.key(0), max_new_tokens=3)
    got = sharded_generate(
        model, prompt, jax.random.key(0), mesh=make_mesh((2, 2, 2)), max_new_tokens=3, partitioner=partitioner,
        prefill_partitioning=Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS["heads"], config),
        decode_partitioning=Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS["batch" if preset == "palm-tiny" else "heads"], config),
    )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(expected.tokens))
