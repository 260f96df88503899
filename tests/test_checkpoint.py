"""Checkpoints: saved under one layout and chip count, restored bit-identically under others; atomic
saves that replace only what this tool wrote; every kind of damage reported by its own error."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from checkpoints import (
    CheckpointExistsError,
    NotACheckpointError,
    ChecksumMismatchError,
    ConfigMismatchError,
    IncompleteCheckpointError,
    ManifestError,
    MissingArrayError,
    TruncatedArrayError,
    convert_dtype,
    read_manifest,
    restore,
    save,
    verify,
)
from checkpoints.array_tree import named_arrays
from checkpoints.checksum import array_checksums
from checkpoints.ownership import leftovers
from checkpoints.save import staging_directory
from layouts import Partitioning, get_attention_layout, get_layout, make_constrain, make_mesh, param_shardings, shard_model
from zoo import Transformer, build_abstract, generate_jit, get_preset, quantize

CONFIG = get_preset("palm-tiny")
PROMPT = jnp.asarray(np.arange(8 * 4, dtype=np.int32).reshape(8, 4) % 251)
NEW_TOKENS = 6


def partitioning(layout: str) -> Partitioning:
    return Partitioning(ffn=get_layout(layout), attention=get_attention_layout("heads"), config=CONFIG)


def greedy_tokens(model, layout: str | None = None, mesh=None) -> np.ndarray:
    """Greedy tokens computed in fp32 from the model's weights: in bf16 a layout's partial sums round
    differently from one device's and near-tied logits may flip a token."""
    constrain = {} if layout is None else {"constrain": make_constrain(partitioning(layout), mesh)}
    exact = convert_dtype(model, "float32")
    return np.asarray(generate_jit(exact, PROMPT, jax.random.key(0), max_new_tokens=NEW_TOKENS, **constrain).tokens)


@pytest.fixture(scope="module")
def model():
    return eqx.filter_jit(Transformer)(CONFIG, key=jax.random.key(7))


@pytest.fixture(scope="module")
def saved(model, devices, tmp_path_factory) -> pathlib.Path:
    """palm-tiny saved from 8 devices under 2D weight-stationary."""
    mesh = make_mesh((2, 2, 2), devices)
    directory = tmp_path_factory.mktemp("checkpoints") / "palm-tiny"
    save(shard_model(model, partitioning("2d-ws"), mesh), directory)
    return directory


def assert_bit_identical(restored, model) -> None:
    expected = named_arrays(model)
    for name, array in named_arrays(restored).items():
        assert array.dtype == expected[name].dtype, name
        np.testing.assert_array_equal(np.asarray(array).view(np.uint16), np.asarray(expected[name]).view(np.uint16), err_msg=name)


@pytest.mark.parametrize("mesh_shape", [(2, 4, 1), (1, 1, 1)], ids=["2x4", "1-device"])
def test_restore_under_another_layout_and_chip_count_is_bit_identical(saved, model, devices, mesh_shape):
    mesh = make_mesh(mesh_shape, devices)
    target = build_abstract(CONFIG)
    shardings = param_shardings(target, partitioning("wg-xyz"), mesh)
    restored = restore(saved, target, shardings)
    for array, sharding in zip(jax.tree.leaves(restored), jax.tree.leaves(shardings)):
        assert array.sharding.is_equivalent_to(sharding, array.ndim)
    assert_bit_identical(restored, model)
    np.testing.assert_array_equal(greedy_tokens(restored, "wg-xyz", mesh), greedy_tokens(model))


def test_checksums_do_not_depend_on_the_sharding(model, devices):
    unsharded = array_checksums(named_arrays(model))
    sharded = array_checksums(named_arrays(shard_model(model, partitioning("wg-xyz"), make_mesh((2, 4, 1), devices))))
    assert sharded == unsharded
    assert len(set(unsharded.values())) == len(unsharded)


def test_manifest_records_config_arrays_and_writer(saved, model):
    manifest = read_manifest(saved)
    assert manifest.config == CONFIG
    assert manifest.weights == "bfloat16"
    assert set(manifest.arrays) == set(named_arrays(model))
    record = manifest.arrays["blocks.attention.w_q.value"]
    assert record.shape == (CONFIG.n_layers, CONFIG.d_model, CONFIG.n_heads, CONFIG.d_head)
    assert record.names == ("layers", "embed", "heads", "head_dim")
    assert {"jax", "jaxlib", "orbax-checkpoint", "layoutzoo"} <= set(manifest.writer)
    assert manifest.total_bytes > 2 * CONFIG.param_count  # bf16 arrays plus the store's metadata


def test_existing_checkpoint_is_never_overwritten_unless_asked(saved, model, tmp_path):
    with pytest.raises(CheckpointExistsError, match="already exists"):
        save(model, saved)
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    other = eqx.filter_jit(Transformer)(CONFIG, key=jax.random.key(8))
    save(other, copy, overwrite=True)
    assert_bit_identical(restore(copy, build_abstract(CONFIG)), other)
    assert not staging_directory(copy).exists()


_KILLED_SAVE = textwrap.dedent(
    """
    import importlib, os, signal, sys
    import equinox as eqx
    import jax
    from zoo import Transformer, get_preset

    def die(*args, **kwargs):  # the arrays are on disk, the manifest is not: killed mid-save
        os.kill(os.getpid(), signal.SIGKILL)

    saving = importlib.import_module("checkpoints.save")  # the module, not the function it exports
    saving.write_manifest = die
    model = eqx.filter_jit(Transformer)(get_preset("palm-tiny"), key=jax.random.key(9))
    saving.save(model, sys.argv[1], overwrite=True)
    """
)


def test_killed_save_leaves_previous_checkpoint_and_an_incomplete_one(saved, model, tmp_path):
    directory = tmp_path / "palm-tiny"
    shutil.copytree(saved, directory)
    environment = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    completed = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(directory)], env=environment, capture_output=True, timeout=120)
    assert completed.returncode == -signal.SIGKILL, completed.stderr.decode()[-2000:]

    assert_bit_identical(restore(directory, build_abstract(CONFIG)), model)
    partial = staging_directory(directory)
    assert (partial / "arrays").is_dir()
    with pytest.raises(IncompleteCheckpointError, match="incomplete"):
        restore(partial, build_abstract(CONFIG))
    assert [leftover.path for leftover in leftovers(directory) if leftover.owned] == [partial]

    other = eqx.filter_jit(Transformer)(CONFIG, key=jax.random.key(8))
    save(other, directory, overwrite=True)  # the killed save's staging is the tool's own: removed
    assert not partial.exists() and leftovers(directory) == []
    assert_bit_identical(restore(directory, build_abstract(CONFIG)), other)


def test_overwrite_never_replaces_what_is_not_a_checkpoint(model, tmp_path):
    directory = tmp_path / "results"
    (directory / "plots").mkdir(parents=True)
    (directory / "plots" / "loss.csv").write_text("step,loss\n1,2.5\n")
    (directory / "manifest.json").write_bytes(b"\xff\xd8 not a manifest")
    with pytest.raises(NotACheckpointError, match=r"results is not a checkpoint \(no readable manifest\.json\)"):
        save(model, directory, overwrite=True)
    assert (directory / "plots" / "loss.csv").read_text() == "step,loss\n1,2.5\n"
    assert (directory / "manifest.json").read_bytes() == b"\xff\xd8 not a manifest"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results"]


@pytest.fixture
def damaged(saved, tmp_path) -> pathlib.Path:
    copy = tmp_path / "damaged"
    shutil.copytree(saved, copy)
    return copy


def _chunk_files(directory: pathlib.Path, array: str) -> list[pathlib.Path]:
    return sorted(path for path in (directory / "arrays" / array).rglob("*") if path.is_file() and path.name != "zarr.json")


def test_truncated_array_file_is_reported_with_its_array(damaged):
    chunk = _chunk_files(damaged, "blocks.mlp.w_in.value")[0]
    chunk.write_bytes(chunk.read_bytes()[:-100])
    with pytest.raises(TruncatedArrayError, match=r"array blocks\.mlp\.w_in\.value has \d+ bytes, \d+ were written"):
        restore(damaged, build_abstract(CONFIG))


def test_flipped_bytes_are_a_checksum_mismatch_naming_the_array(damaged):
    chunk = _chunk_files(damaged, "blocks.attention.w_o.value")[-1]
    content = bytearray(chunk.read_bytes())
    content[len(content) // 2] ^= 0xFF
    chunk.write_bytes(bytes(content))
    with pytest.raises(ChecksumMismatchError, match=r"array blocks\.attention\.w_o\.value does not match its checksum"):
        verify(damaged)


def test_missing_array_is_reported(damaged):
    shutil.rmtree(damaged / "arrays" / "embedding.value")
    with pytest.raises(MissingArrayError, match=r"array embedding\.value is missing"):
        restore(damaged, build_abstract(CONFIG))


def test_checkpoint_for_another_config_is_refused(saved):
    with pytest.raises(ConfigMismatchError, match=r"d_model=128 \(target 256\)"):
        restore(saved, build_abstract(get_preset("palm-4m")))


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b'{"format_version": 1, "config": ', "unreadable manifest"),
        (b"\x00\x9f\x92\x96 binary", "manifest is not UTF-8 text"),
        (b'"a string"', "manifest is a JSON string"),
        (b'{"format_version": 1, "weights": "int4"}', "weights 'int4' in the manifest; valid: bfloat16, float32, int8"),
        (b'{"format_version": 1, "weights": "int8"}', "field 'arrays' is missing"),
    ],
    ids=["truncated", "binary", "string", "unknown-weights", "missing-field"],
)
def test_unreadable_manifest_is_one_line_naming_the_file(damaged, content, complaint):
    (damaged / "manifest.json").write_bytes(content)
    with pytest.raises(ManifestError) as raised:
        read_manifest(damaged)
    message = str(raised.value)
    assert message.startswith(f"{damaged / 'manifest.json'}: ") and complaint in message
    assert "\n" not in message


def test_manifest_with_a_malformed_array_shape_is_refused(damaged):
    document = json.loads((damaged / "manifest.json").read_text())
    document["arrays"]["embedding.value"]["shape"] = "256x128"
    (damaged / "manifest.json").write_text(json.dumps(document))
    with pytest.raises(ManifestError, match=r"array embedding\.value has shape '256x128'; valid: a list of non-negative integers"):
        read_manifest(damaged)


def test_checkpoint_in_another_weight_format_is_refused(saved):
    int8_target = jax.eval_shape(quantize, build_abstract(CONFIG))
    with pytest.raises(ConfigMismatchError, match="holds bfloat16 weights, the target int8"):
        restore(saved, int8_target)
