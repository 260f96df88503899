"""int8 weights: reconstruction error within its bound, half the weight bytes, scales split with their
weights under every layout, and the same greedy tokens under every layout as unsharded."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from checkpoints import manifest_model, convert_dtype, read_manifest, restore, save
from checkpoints.array_tree import named_arrays
from layouts import FFN_LAYOUTS, Partitioning, get_attention_layout, get_layout, make_constrain, make_mesh, param_shardings, shard_model
from zoo import Int8Weight, Transformer, generate_jit, get_preset
from zoo.quantization import INT8_MAX, quantize, quantized_weights, reconstruction_error_bound

CONFIG = get_preset("palm-tiny")
PROMPT = jnp.asarray(np.arange(8 * 4, dtype=np.int32).reshape(8, 4) * 7 % 256)
# Per-channel int8 of Gaussian weights: a step is about max|w|/127 ≈ 3.5σ/127, an error of
# step/√12 ≈ 0.8% of σ; 1.5% leaves room for heavier tails, not for a wrong axis or scale.
RELATIVE_ERROR_LIMIT = 0.015


@pytest.fixture(scope="module")
def model():
    return eqx.filter_jit(Transformer)(CONFIG, key=jax.random.key(3))


@pytest.fixture(scope="module")
def quantized(model):
    return eqx.filter_jit(quantize)(model)


def _original(model, path):
    for attribute in path:
        model = getattr(model, attribute)
    return model


def test_every_matmul_weight_is_int8_with_per_output_channel_scales(quantized):
    weights = quantized_weights(quantized)
    assert {path[-1] for path in weights} == {"embedding", "w_q", "w_kv", "w_o", "w_in", "w_out"}
    w_o = weights[("blocks", "attention", "w_o")]
    assert w_o.quantized.dtype == jnp.int8 and w_o.scale.dtype == jnp.bfloat16
    assert w_o.scale.shape == (CONFIG.n_layers, 1, 1, CONFIG.d_model)
    assert w_o.scale_names == ("layers", None, None, "embed")
    assert quantized.embedding.scale.shape == (CONFIG.vocab, 1)
    assert not isinstance(quantized.final_norm.scale, Int8Weight)


def test_reconstruction_error_is_bounded_per_tensor(model, quantized):
    for path, weight in quantized_weights(quantized).items():
        original = np.asarray(_original(model, path).value, np.float32)
        scale = np.asarray(weight.scale, np.float32)
        exact = np.asarray(weight.quantized, np.float32) * scale
        assert np.all(np.abs(exact - original) <= scale / 2 * (1 + 1e-6)), path
        assert np.all(np.abs(np.asarray(weight.quantized)) <= INT8_MAX), path
        served = np.asarray(weight.materialize(jnp.bfloat16), np.float32)
        assert np.all(np.abs(served - original) <= np.asarray(reconstruction_error_bound(weight))), path
        relative = np.linalg.norm(exact - original) / np.linalg.norm(original)
        assert relative < RELATIVE_ERROR_LIMIT, (path, relative)


def test_int8_halves_the_weight_bytes(model, quantized):
    def matmul_bytes(tree):
        return sum(array.nbytes for name, array in named_arrays(tree).items() if "norm" not in name)

    ratio = matmul_bytes(quantized) / matmul_bytes(model)
    assert 0.5 < ratio < 0.52  # int8 values plus one bf16 scale per output channel


def test_int8_checkpoint_restores_sharded_under_a_layout(quantized, devices, tmp_path):
    save(quantized, tmp_path / "int8")
    manifest = read_manifest(tmp_path / "int8")
    assert manifest.weights == "int8"
    target = manifest_model(manifest)
    mesh = make_mesh((2, 2, 2), devices)
    restored = restore(tmp_path / "int8", target, param_shardings(target, _partitioning("2d-ws"), mesh))
    for name, array in named_arrays(restored).items():
        np.testing.assert_array_equal(np.asarray(array.astype(jnp.float32)), np.asarray(named_arrays(quantized)[name].astype(jnp.float32)), err_msg=name)


def _partitioning(layout: str) -> Partitioning:
    return Partitioning(ffn=get_layout(layout), attention=get_attention_layout("heads"), config=CONFIG)


def _greedy(model, constrain=None):
    extra = {} if constrain is None else {"constrain": constrain}
    return np.asarray(generate_jit(model, PROMPT, jax.random.key(0), max_new_tokens=6, **extra).tokens)


@pytest.fixture(scope="module")
def quantized_float32(model):
    # int8 weights with fp32 arithmetic: in bf16 a layout's partial sums round differently from one
    # device's and near-tied logits may flip a greedy token; in fp32 only a real difference (a scale
    # split unlike its weight) can.
    return eqx.filter_jit(quantize)(convert_dtype(model, "float32"))


@pytest.mark.parametrize("layout", sorted(FFN_LAYOUTS))
def test_int8_decode_under_every_layout_matches_unsharded(quantized_float32, devices, layout):
    mesh = make_mesh((2, 2, 2), devices)
    partitioning = _partitioning(layout)
    sharded = shard_model(quantized_float32, partitioning, mesh)
    w_in = sharded.blocks.mlp.w_in
    # The scale is split over the mesh exactly like its weight's output channels (F here).
    weight_spec, scale_spec = w_in.quantized.sharding.spec, w_in.scale.sharding.spec
    assert tuple(scale_spec)[-1] == tuple(weight_spec)[-1]
    np.testing.assert_array_equal(_greedy(sharded, make_constrain(partitioning, mesh)), _greedy(quantized_float32))


def test_estimator_reports_half_the_weight_bytes_for_int8():
    from layouts.bench.cell import Cell
    from layouts.bench.estimate_rows import estimate_cell

    def weight_bytes(weights: str) -> int:
        return estimate_cell(Cell("palm-8b", chips=8, batch=8, weights=weights))[0].memory_per_chip_bytes["weights"]

    assert 0.5 <= weight_bytes("int8") / weight_bytes("bf16") < 0.501  # the norms stay bf16
