from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo import PromptError, Sampling, Transformer, ZooError, generate_jit, get_preset, init_cache
from zoo.execution import AS_DECLARED, executed_abstract, execution_for
from zoo.generation import MAX_CACHE_LEN, TokenBudgetError, check_token_budget, generation_bytes
from zoo.sampling import MAX_TEMPERATURE, SamplingError, sample
from zoo.tokenizer import decode, encode, encode_batch


@pytest.fixture(scope="module")
def model():
    return Transformer(get_preset("palm-tiny"), key=jax.random.key(0))


def test_greedy_generation_is_deterministic_and_matches_step_by_step_argmax(model):
    from zoo import decode_step, prefill

    prompt = jnp.asarray(encode_batch(["hello", "world"]))
    first = generate_jit(model, prompt, jax.random.key(0), max_new_tokens=8)
    second = generate_jit(model, prompt, jax.random.key(1), max_new_tokens=8)
    np.testing.assert_array_equal(first.tokens, second.tokens)
    # The same tokens by hand, one Python step at a time.
    cache = init_cache(model.config, 2, 13)
    logits, cache = prefill(model, prompt, cache)
    expected = []
    for _ in range(8):
        token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        expected.append(token)
        logits, cache = decode_step(model, token, cache)
    np.testing.assert_array_equal(first.tokens, np.stack(expected, axis=1))
    assert list(np.asarray(first.lengths)) == [8, 8]


def test_sampling_with_a_fixed_key_is_reproducible_and_the_key_matters(model):
    prompt = jnp.asarray(encode_batch(["abcd"] * 4))
    sampling = Sampling(temperature=1.5, top_k=50, top_p=0.95)
    a = generate_jit(model, prompt, jax.random.key(7), max_new_tokens=16, sampling=sampling)
    b = generate_jit(model, prompt, jax.random.key(7), max_new_tokens=16, sampling=sampling)
    c = generate_jit(model, prompt, jax.random.key(8), max_new_tokens=16, sampling=sampling)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.tokens, c.tokens)


def test_stop_token_ends_a_sequence_and_sets_its_length(model):
    prompt = jnp.asarray(encode_batch(["hello"]))
    free = generate_jit(model, prompt, jax.random.key(0), max_new_tokens=6)
    stop = int(free.tokens[0, 2])
    stopped = generate_jit(model, prompt, jax.random.key(0), max_new_tokens=6, stop_token=stop)
    first_stop = int(np.argmax(np.asarray(free.tokens[0]) == stop))
    assert int(stopped.lengths[0]) == first_stop + 1
    assert np.all(np.asarray(stopped.tokens[0, first_stop:]) == stop)


def test_top_k_one_is_greedy_and_top_p_keeps_the_nucleus():
    logits = jnp.asarray([[0.0, 3.0, 1.0, 2.9]], jnp.float32)
    keys = jax.random.split(jax.random.key(0), 200)
    top1 = {int(sample(logits, k, Sampling(temperature=1.0, top_k=1))[0]) for k in keys}
    assert top1 == {1}
    nucleus = {int(sample(logits, k, Sampling(temperature=1.0, top_p=0.6))[0]) for k in keys}
    assert nucleus == {1, 3}


def test_tokenizer_round_trips_utf8():
    text = "naïve café — 日本"
    assert decode(encode(text)) == text


def test_bad_generation_input_raises_specific_errors(model):
    with pytest.raises(PromptError, match="ragged batch"):
        encode_batch(["a", "abc"])
    prompt = jnp.asarray(encode_batch(["hello"]))
    with pytest.raises(PromptError, match="does not fit a cache"):
        generate_jit(model, prompt, jax.random.key(0), max_new_tokens=10, cache=init_cache(model.config, 1, 8))
    with pytest.raises(ZooError, match="max_new_tokens"):
        generate_jit(model, prompt, jax.random.key(0), max_new_tokens=0)
    with pytest.raises(ZooError, match="temperature"):
        Sampling(temperature=-1.0)
    mtnlg = Transformer(get_preset("mtnlg-tiny"), key=jax.random.key(0))
    with pytest.raises(PromptError, match="learned positions"):
        generate_jit(mtnlg, jnp.zeros((1, 250), jnp.int32), jax.random.key(0), max_new_tokens=10)


@pytest.mark.parametrize(
    "settings",
    [
        dict(temperature=float("nan")),
        dict(temperature=float("inf")),
        dict(temperature=1e30),
        dict(temperature=MAX_TEMPERATURE * 1.01),
        dict(temperature=1e-30),
        dict(temperature=1.0, top_p=float("nan")),
        dict(temperature=1.0, top_k=0),
    ],
)
def test_sampling_refuses_nan_and_out_of_range_settings(settings):
    with pytest.raises(SamplingError):
        Sampling(**settings)


def test_sampling_accepts_its_documented_range():
    assert Sampling(temperature=MAX_TEMPERATURE, top_k=1, top_p=1.0).temperature == MAX_TEMPERATURE
    assert Sampling(temperature=0.0, top_k=256).top_k == 256


def test_text_that_is_not_utf8_is_a_prompt_error():
    with pytest.raises(PromptError, match="not valid UTF-8: character 2 is the lone surrogate U[+]DCFF"):
        encode("ab\udcff")


def test_token_budget_stops_at_int32_positions():
    check_token_budget(10, MAX_CACHE_LEN - 10)
    with pytest.raises(TokenBudgetError, match=f"at most {MAX_CACHE_LEN - 10} new tokens"):
        check_token_budget(10, MAX_CACHE_LEN - 9)
    with pytest.raises(TokenBudgetError, match="positive integer"):
        check_token_budget(10, 0)


# generation_bytes is an estimate for a go/no-go check, not an accounting.
ESTIMATE_TOLERANCE = 0.25


@pytest.mark.parametrize("execution", [AS_DECLARED, execution_for("cpu")], ids=["as-declared", "as-the-cpu-runs-it"])
@pytest.mark.parametrize("name,batch,prompt_len,new_tokens", [("palm-4m", 1, 9, 40), ("palm-4m", 1, 9, 100_000), ("palm-4m", 2, 1000, 100)])
def test_generation_bytes_matches_what_xla_allocates_on_the_cpu(name, batch, prompt_len, new_tokens, execution):
    from zoo import build_abstract, generate

    config = get_preset(name)
    prompt = jax.ShapeDtypeStruct((batch, prompt_len), jnp.int32)
    model = executed_abstract(build_abstract(config), execution)
    compiled = jax.jit(partial(generate, max_new_tokens=new_tokens)).lower(model, prompt, jax.random.key(0)).compile()
    memory = compiled.memory_analysis()
    allocated = memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
    estimate = generation_bytes(config, batch, prompt_len, new_tokens, platform="cpu", execution=execution)
    assert abs(estimate - allocated) <= ESTIMATE_TOLERANCE * allocated, (estimate, allocated)
