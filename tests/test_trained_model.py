"""The shipped model: trained, not random. Its bits per byte on standard-library files it never saw
are far below a uniform model's 8; int8 costs it under 2%; its greedy output is the same under every
built-in layout on 8 devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from checkpoints import convert_dtype, read_manifest
from checkpoints.shipped.corpus import held_out_windows, source_files
from checkpoints.shipped.evaluate import bits_per_byte
from checkpoints.shipped import SHIPPED_CHECKPOINT, load_shipped
from layouts import FFN_LAYOUTS, Partitioning, get_attention_layout, get_layout, make_constrain, make_mesh, shard_model
from checkpoints.shipped.training import TrainingRecipe, train
from zoo import Transformer, generate_jit, get_preset
from zoo.quantization import quantize
from zoo.tokenizer import decode

# Measured on the shipped checkpoint: 1.97 bits per byte (checkpoints/palm-4m/training.json). The limit leaves a
# margin for another Python's standard library (its held-out files differ), not for a broken model.
HELD_OUT_BITS_PER_BYTE_LIMIT = 2.3
INT8_RELATIVE_LOSS_LIMIT = 0.02
SHIPPED_BYTES_LIMIT = 16_000_000


@pytest.fixture(scope="module")
def shipped():
    return load_shipped()


@pytest.fixture(scope="module")
def held_out():
    return held_out_windows()


def test_shipped_checkpoint_is_the_palm_4m_preset_in_bf16():
    manifest = read_manifest(SHIPPED_CHECKPOINT)
    assert manifest.config == get_preset("palm-4m")
    assert manifest.weights == "bfloat16"
    assert manifest.total_bytes < SHIPPED_BYTES_LIMIT


def test_held_out_files_were_not_trained_on():
    held_out, train = set(source_files("held-out")), set(source_files("train"))
    assert held_out and train and not held_out & train


def test_held_out_bits_per_byte_is_far_below_uniform(shipped, held_out):
    assert bits_per_byte(shipped, held_out) < HELD_OUT_BITS_PER_BYTE_LIMIT


def test_int8_held_out_loss_is_within_two_percent_of_bf16(shipped, held_out):
    bf16 = bits_per_byte(shipped, held_out)
    int8 = bits_per_byte(jax.jit(quantize)(shipped), held_out)
    assert abs(int8 - bf16) / bf16 < INT8_RELATIVE_LOSS_LIMIT, (bf16, int8)


@pytest.fixture(scope="module")
def prompts(held_out):
    return jnp.asarray(held_out[:8, :24])


@pytest.fixture(scope="module")
def shipped_float32(shipped):
    # Greedy decoding compares logits: in bf16, a layout's partial sums round differently from one
    # device's, and near-ties flip (3 of 96 tokens under wg-xyz). In fp32, computed from exactly the
    # shipped weights, only a real difference between layouts can change a token.
    return convert_dtype(shipped, "float32")


@pytest.fixture(scope="module")
def unsharded_greedy(shipped_float32, prompts):
    return np.asarray(generate_jit(shipped_float32, prompts, jax.random.key(0), max_new_tokens=12).tokens)


def test_greedy_output_is_plain_text_like_its_training_data(unsharded_greedy):
    # The standard library's source is almost all printable ASCII; a random model's bytes are not.
    printable = (unsharded_greedy >= 32) & (unsharded_greedy < 127) | np.isin(unsharded_greedy, (9, 10))
    assert printable.all(), decode(unsharded_greedy[0])


@pytest.mark.parametrize(("layout", "attention"), [*((name, "heads") for name in sorted(FFN_LAYOUTS)), ("2d-ws", "batch")])
def test_greedy_output_is_identical_under_every_layout(shipped_float32, prompts, unsharded_greedy, devices, layout, attention):
    mesh = make_mesh((2, 2, 2), devices)
    partitioning = Partitioning(ffn=get_layout(layout), attention=get_attention_layout(attention), config=shipped_float32.config)
    sharded = shard_model(shipped_float32, partitioning, mesh)
    tokens = generate_jit(sharded, prompts, jax.random.key(0), max_new_tokens=12, constrain=make_constrain(partitioning, mesh)).tokens
    np.testing.assert_array_equal(np.asarray(tokens), unsharded_greedy)


@pytest.mark.slow  # about 17 s of compiling and stepping; the shipped model's own held-out test runs by default
def test_training_recipe_learns_on_a_tiny_model(held_out):
    recipe = TrainingRecipe(preset="palm-tiny", steps=20, batch=4, sequence_length=64, warmup_steps=5)
    untrained = Transformer(get_preset("palm-tiny").replace(dtype="float32"), key=jax.random.key(recipe.seed))
    with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix Python floats with int32 step counts
        trained = train(recipe, log=lambda line: None)
    assert bits_per_byte(trained, held_out) < bits_per_byte(untrained, held_out) - 2.0
