"""Models described in TOML files (`zoo.model_file`): the shipped grouped-query examples have
their published parameter counts, estimate and compile for a TPU topology, and a tiny one runs
sharded as it runs whole; bad files are refused in one line."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import assert_usage_error, invoke, json_lines, validate_row
from conftest import slow_but

from layouts import ATTENTION_LAYOUTS, FFN_LAYOUTS, Partitioning, make_mesh, sharded_generate
from zoo import Transformer, generate_jit, get_preset
from zoo.errors import ConfigError

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


@pytest.mark.parametrize("name,params,heads,kv_heads", [("llama-3-8b", 8_030_261_248, 32, 8), ("llama-2-70b", 68_976_648_192, 64, 8)])
def test_shipped_models_have_their_published_sizes(name, params, heads, kv_heads):
    config = get_preset(str(MODELS / f"{name}.toml"))
    assert (config.name, config.param_count, config.n_heads, config.n_kv_heads) == (name, params, heads, kv_heads)
    (row,) = json_lines(invoke("models", str(MODELS / f"{name}.toml"), "--format", "json"))
    assert row["params"] == params


def test_a_grouped_query_model_from_a_file_estimates_and_compiles_for_a_tpu_topology():
    model = str(MODELS / "llama-3-8b.toml")
    cell = ["--model", model, "--chips", "8", "--mesh", "2x2x2", "--batch", "8", "--phase", "decode", "--format", "json"]
    (estimated,) = json_lines(invoke("estimate", *cell))
    (compiled,) = json_lines(invoke("compile", *cell, "--target", "tpu-v4"))
    for row in (estimated, compiled):
        validate_row(row)
        assert row["status"] == "ok" and row["model"] == model, row["error"]
    # 8 KV heads, one per chip: the cache splits 8 ways, as estimated.
    assert compiled["memory_per_chip_bytes"]["kv_cache"] == pytest.approx(estimated["memory_per_chip_bytes"]["kv_cache"], rel=0.02)


@pytest.mark.parametrize("ffn,attention", slow_but([(ffn, attention) for ffn in ("1d-ws", "2d-ws") for attention in ("heads", "batch")], [("1d-ws", "heads"), ("2d-ws", "batch")]))
def test_a_tiny_grouped_query_model_generates_sharded_as_it_does_whole(devices, ffn, attention):
    config = get_preset(str(MODELS / "gqa-tiny.toml")).replace(dtype="float32")
    model = Transformer(config, key=jax.random.key(0))
    prompt = jax.random.randint(jax.random.key(1), (8, 6), 0, 256, dtype=jnp.int32)
    expected = generate_jit(model, prompt, jax.random.key(0), max_new_tokens=3)
    got = sharded_generate(
        model, prompt, jax.random.key(0), mesh=make_mesh((2, 2, 2)), max_new_tokens=3,
        prefill_partitioning=Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS["heads"], config),
        decode_partitioning=Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS[attention], config),
    )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(expected.tokens))


@pytest.mark.parametrize(
    "text,message",
    [
        ("n_layers = 2\\nd_model = 8\\n", "missing d_ff"),
        ("n_layerz = 2\\n", "unknown key 'n_layerz'"),
        ("n_layers = 2\\nd_model = 8\\nd_ff = 8\\nn_heads = 2\\nn_kv_heads = 1\\nd_head = 4\\nvocab = 8\\ntie_embeddings = 1\\n", "tie_embeddings must be a bool"),
        ("n_layers = 2\\nd_model = 8\\nd_ff = 8\\nn_heads = 2\\nn_kv_heads = 3\\nd_head = 4\\nvocab = 8\\n", "must divide n_heads"),
        ("n_layers = [\\n", "not valid TOML"),
    ],
)
def test_a_bad_model_file_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("\\n", "\n"))
    with pytest.raises(ConfigError, match=message):
        get_preset(str(path))
    assert_usage_error(invoke("estimate", "--model", str(path)), message)


def test_a_missing_model_file_is_refused_in_one_line(tmp_path):
    assert_usage_error(invoke("models", str(tmp_path / "none.toml")), "does not exist")


@pytest.mark.parametrize("ffn", ["1d-ws", "2d-ws"])
def test_fewer_kv_heads_than_head_splits_generate_the_unsharded_tokens(devices, ffn):
    # 8 query heads over 2 KV heads on 8 devices: the KV heads split over the query heads' leading
    # axis, one per chip there, and are replicated over the rest (`layouts.fit`).
    config = get_preset(str(MODELS / "gqa-tiny.toml")).replace(dtype="float32", n_heads=8, n_kv_heads=2)
    model = Transformer(config, key=jax.random.key(0))
    prompt = jax.random.randint(jax.random.key(1), (8, 6), 0, 256, dtype=jnp.int32)
    expected = generate_jit(model, prompt, jax.random.key(0), max_new_tokens=3)
    partitioning = Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS["heads"], config)
    got = sharded_generate(model, prompt, jax.random.key(0), mesh=make_mesh((2, 2, 2)), max_new_tokens=3, prefill_partitioning=partitioning, decode_partitioning=partitioning)
    np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(expected.tokens))


def test_kv_heads_that_cannot_serve_the_query_heads_are_refused_with_the_way_out():
    from layouts.errors import LayoutError
    from layouts.fit import fit

    config = get_preset(str(MODELS / "llama-2-70b.toml"))
    with pytest.raises(LayoutError, match="8 KV heads split over z cannot serve .*--attention batch"):
        fit(Partitioning(FFN_LAYOUTS["2d-ws"], ATTENTION_LAYOUTS["heads"], config), (4, 4, 4), 64)
    fitted = fit(Partitioning(FFN_LAYOUTS["2d-ws"], ATTENTION_LAYOUTS["batch"], config), (4, 4, 4), 64)
    assert fitted.kv_unsplit == ("x", "y")


def test_an_experiment_file_takes_a_model_file(tmp_path):
    experiment = tmp_path / "gqa.toml"
    experiment.write_text(f'model = "{MODELS / "llama-3-8b.toml"}"\nchips = [8, 16]\nbatch = [1, 64]\nphase = "decode"\nsource = ["estimate"]\n')
    rows = json_lines(invoke("bench", "--config", str(experiment), "--out", str(tmp_path / "out"), "--format", "json", "--no-plots"))
    assert len(rows) == 4 and all(row["status"] == "ok" and row["model"].endswith("llama-3-8b.toml") for row in rows), rows
