"""`zoo checkpoint`: the commands write, inspect, check and convert, and bad input exits with 2."""

import json
import shutil

import pytest
from click.testing import CliRunner

from cli.main import main
from zoo import get_preset


def zoo(*arguments: str):
    return CliRunner().invoke(main, ["checkpoint", *arguments])


@pytest.fixture(scope="module")
def initialised(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli") / "tiny"
    result = zoo("init", "--model", "palm-tiny", "--layout", "2d-ws", "--mesh", "2x2x2", str(directory))
    assert result.exit_code == 0, result.output
    return directory


def test_info_prints_the_manifest_as_json(initialised):
    result = zoo("info", "--format", "json", str(initialised))
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["config"]["name"] == "palm-tiny"
    assert manifest["config"]["d_model"] == get_preset("palm-tiny").d_model
    assert manifest["weights"] == "bfloat16"
    assert len(manifest["arrays"]) == 8


def test_existing_checkpoint_is_refused_without_overwrite(initialised):
    result = zoo("init", "--model", "palm-tiny", str(initialised))
    assert result.exit_code == 2
    assert "already exists" in result.output and "--overwrite" in result.output


def test_quantize_then_verify(initialised, tmp_path):
    quantized = tmp_path / "int8"
    result = zoo("quantize", str(initialised), str(quantized))
    assert result.exit_code == 0, result.output
    assert json.loads(zoo("info", "--format", "json", str(quantized)).output)["weights"] == "int8"
    verified = zoo("verify", str(quantized))
    assert verified.exit_code == 0 and verified.output.startswith("ok:")
    again = zoo("quantize", str(quantized), str(tmp_path / "twice"))
    assert again.exit_code == 2 and "already holds int8" in again.output


def test_incomplete_and_damaged_checkpoints_exit_with_2(initialised, tmp_path):
    incomplete = tmp_path / "half.incomplete"
    (incomplete / "arrays").mkdir(parents=True)
    result = zoo("info", str(incomplete))
    assert result.exit_code == 2 and "incomplete checkpoint" in result.output
    damaged = tmp_path / "damaged"
    shutil.copytree(initialised, damaged)
    (damaged / "arrays" / "final_norm.scale.value" / "zarr.json").unlink()
    result = zoo("verify", str(damaged))
    assert result.exit_code == 2 and "array final_norm.scale.value is missing" in result.output


def test_convert_changes_the_stored_dtype(initialised, tmp_path):
    converted = tmp_path / "fp32"
    assert zoo("convert", "--dtype", "float32", str(initialised), str(converted)).exit_code == 0
    manifest = json.loads(zoo("info", "--format", "json", str(converted)).output)
    assert manifest["weights"] == "float32" and manifest["config"]["dtype"] == "float32"


def test_generate_uses_the_shipped_checkpoint_by_default():
    result = CliRunner().invoke(main, ["generate", "--prompt", "import o", "--gen-tokens", "4", "--format", "json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["model"] == "palm-4m"
    assert all(32 <= token < 127 or token in (9, 10) for token in record["tokens"])  # text, as trained on
