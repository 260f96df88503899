"""The CLI's promises under the inputs and faults a new user met: one line and exit 2 for bad input,
no stale or mislabelled numbers, defaults that give rows, tables that fit the terminal."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, invoke, json_lines, validate_row

from layouts.bench.result_row import ResultRow
from zoo.presets import PRESETS

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("model", sorted(PRESETS))
def test_the_bare_default_estimate_gives_rows_for_every_model(model):
    result = invoke("estimate", "--model", model, "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json_lines(result)
    assert [row["phase"] for row in rows] == ["prefill", "decode"]
    for row in rows:
        validate_row(row)
        assert row["status"] == "ok" and row["step_time_s"] > 0


def test_the_bare_default_compile_and_run_give_rows():
    compiled = invoke("compile", "--model", "palm-8b", "--format", "json")
    assert compiled.exit_code == 0, compiled.stderr
    assert [row["status"] for row in json_lines(compiled)] == ["ok", "ok"]
    ran = invoke("run", "--model", "palm-tiny", "--input-len", "64", "--gen-tokens", "4", "--repeats", "1", "--format", "json")
    assert ran.exit_code == 0, ran.stderr
    assert [row["status"] for row in json_lines(ran)] == ["ok", "ok"]


def test_the_bare_default_run_uses_the_devices_present():
    """As a user runs it: no forced devices, one CPU. The default chip count is what is present."""
    environment = {key: value for key, value in os.environ.items() if key not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    command = [sys.executable, "-c", "from cli.main import main; main()", "run", "--model", "palm-tiny", "--format", "json"]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["phase"], row["status"], row["chips"]) for row in rows] == [("prefill", "ok", 1), ("decode", "ok", 1)]
    too_many = subprocess.run([*command, "--chips", "4"], capture_output=True, text=True, env=environment, timeout=300)
    assert too_many.returncode == 2 and too_many.stderr.count("\n") == 1 and "pass --chips 1" in too_many.stderr


def test_a_phase_that_cannot_split_fails_before_any_compiling():
    # A 256000-token vocabulary over 6 chips: refused at once, nothing is compiled first.
    result = invoke("compile", "--model", "palm-8b", "--chips", "6")
    assert_usage_error(result, "'vocab' of size 256000", "does not divide")


def test_a_run_whose_rows_all_fail_exits_non_zero(monkeypatch):
    from layouts.compiled import local_memory

    monkeypatch.setattr(local_memory, "_host_available_bytes", lambda: 1024)
    result = invoke("run", "--model", "palm-tiny", "--input-len", "16", "--gen-tokens", "2", "--repeats", "1", "--format", "json")
    rows = json_lines(result)
    assert result.exit_code == 1 and all(row["status"] == "error" and "does not fit" in row["error"] for row in rows)
    assert result.stderr.strip().splitlines()[-1] == "zoo run: 2 of 2 rows failed"


def test_run_measures_only_locally():
    assert_usage_error(invoke("run", "--model", "palm-tiny", "--target", "tpu-v4"), "target is local", "zoo compile --target tpu-v4")


def test_estimate_takes_every_target_the_other_commands_take():
    shaped = json_lines(invoke("estimate", "--model", "palm-8b", "--target", "tpu-v4:2x2x2", "--format", "json"))
    plain = json_lines(invoke("estimate", "--model", "palm-8b", "--target", "tpu-v4", "--format", "json"))
    assert [row["step_time_s"] for row in shaped] == [row["step_time_s"] for row in plain]
    assert_usage_error(invoke("estimate", "--model", "palm-8b", "--target", "tpu-v4:2x2x4"), "has 16 chips but the cell has chips=8")
    # The local CPU has no hardware preset: said in one line, with the targets that would do.
    assert_usage_error(invoke("estimate", "--model", "palm-tiny", "--target", "local"), "no hardware preset", "tpu-v4")


def test_a_layout_file_using_one_mesh_axis_twice_in_a_tensor_is_refused_by_every_command(tmp_path):
    text = (EXAMPLES / "my-2d-ws.toml").read_text()
    path = tmp_path / "twice.toml"
    path.write_text(text.replace("head_dim = []", 'head_dim = ["x"]', 1))
    message = ["blocks.attention.w_q", "mesh axis 'x' assigned to both 'embed' and 'head_dim'"]
    assert_usage_error(invoke("estimate", "--model", "palm-8b", "--layout", str(path)), *message)
    assert_usage_error(invoke("layouts", str(path), "--model", "palm-8b", "--chips", "8"), *message)
    assert_usage_error(invoke("compile", "--model", "palm-8b", "--layout", str(path)), *message)


def test_a_layout_file_cannot_take_a_built_in_name(tmp_path):
    path = tmp_path / "copy.toml"
    path.write_text((EXAMPLES / "my-2d-ws.toml").read_text().replace('name = "my-2d"', 'name = "2d-ws"'))
    assert_usage_error(invoke("estimate", "--model", "palm-8b", "--layout", str(path)), "'2d-ws' is a built-in layout's")


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01binary", "kind = \"ffn\"\nname = \"caf\xe9\"\n".encode("latin-1")])
def test_binary_and_non_utf8_files_are_one_line(tmp_path, content):
    path = tmp_path / "file.toml"
    path.write_bytes(content)
    assert_usage_error(invoke("estimate", "--model", "palm-8b", "--layout", str(path)), str(path), "not UTF-8")
    assert_usage_error(invoke("bench", "--config", str(path), "--out", str(tmp_path / "out")), str(path), "not UTF-8")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text,reason", [("chips = 8\n", "missing key 'model'"), ("matrix = [1, 2]\n", "must be an array of tables")])
def test_an_experiment_of_the_wrong_shape_is_one_line(tmp_path, text, reason):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    assert_usage_error(invoke("bench", "--config", str(path), "--out", str(tmp_path / "out")), str(path), reason)


def test_zoo_layouts_sizes_the_cache_as_decoding_allocates_it():
    args = ["layouts", "2d-ws", "--model", "palm-8b", "--chips", "8", "--batch", "8", "--context-len", "1000", "--gen-tokens", "24", "--format", "json"]
    cache = next(placement for placement in json_lines(invoke(*args)) if placement["tensor"] == "cache.k")
    assert cache["shape"][2] == 1024
    estimate = json_lines(invoke("estimate", "--model", "palm-8b", "--chips", "8", "--batch", "8", "--context-len", "1000", "--gen-tokens", "24",
                                 "--phase", "decode", "--format", "json"))  # fmt: skip
    assert 2 * cache["per_chip_bytes"] == estimate[0]["memory_per_chip_bytes"]["kv_cache"]


def test_a_compile_that_does_not_fit_is_an_error_row_and_the_table_keeps_both_verdicts():
    compiled = ResultRow("m", "2d-ws", "heads", 8, "2x2x2", "tpu-v4", "decode", 1, 8, 8, 1, "bf16", "compile", hbm_bytes=32 * 2**30)
    compiled.memory_per_chip_bytes = {"weights": 40 * 2**30, "kv_cache": 0, "other": 0, "total": 40 * 2**30}
    compiled = compiled.does_not_fit()
    estimated = ResultRow("m", "2d-ws", "heads", 8, "2x2x2", "tpu-v4", "decode", 1, 8, 8, 1, "bf16", "estimate", hbm_bytes=32 * 2**30, step_time_s=0.01, fits=True)
    estimated.memory_per_chip_bytes = {"weights": 20 * 2**30, "kv_cache": 0, "other": 0, "total": 20 * 2**30}
    assert compiled.status == "error" and compiled.error == "does not fit: needs 40.0 GiB per chip, a program may use 32.00 GiB"
    from cli.report import side_by_side
    from rich.console import Console

    console = Console(width=400, record=True)
    console.print(side_by_side([estimated, compiled], width=400))
    header, line = [text for text in console.export_text().splitlines() if "est. fits" in text or "│ m " in text]
    cells = [cell.strip() for cell in line.split("│")]
    columns = [cell.strip() for cell in header.split("┃")]
    assert cells[columns.index("est. fits")] == "yes" and cells[columns.index("compiled fits")] == "NO"
    assert cells[columns.index("compiled mem/chip")] == "40 GiB"


def _rendered(rows, width):
    from cli.report import side_by_side
    from rich.console import Console

    console = Console(width=width, record=True)
    console.print(side_by_side(rows, width=width))
    return console.export_text()


def test_tables_fit_the_terminal_by_leaving_out_the_least_important_columns():
    rows = [ResultRow(**row) for row in json_lines(invoke("estimate", "--model", "palm-540b-64h", "--chips", "64", "--format", "json"))]
    narrow = _rendered(rows, 100)
    assert max(len(line) for line in narrow.splitlines()) <= 100
    assert "palm-540b-64h" in narrow and "est. step" in narrow and "not shown for width" in narrow
    wide = _rendered(rows, 400)
    assert "not shown for width" not in wide and "est. MFU" in wide and "mesh" in wide


def test_tables_in_a_pipe_keep_every_column_and_honour_columns(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    piped = invoke("estimate", "--model", "palm-540b-64h", "--chips", "64").stdout
    assert "est. MFU" in piped and "not shown" not in piped
    monkeypatch.setenv("COLUMNS", "90")
    narrow = invoke("estimate", "--model", "palm-540b-64h", "--chips", "64").stdout
    assert max(len(line) for line in narrow.splitlines()) <= 90


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("zoo: layoutzoo ") and "jax " in result.stdout


def test_importing_the_library_is_quiet_on_a_machine_without_tpus():
    environment = {key: value for key, value in os.environ.items() if key != "JAX_PLATFORMS"}
    code = "import layouts, checkpoints, jax; print(jax.devices()[0].platform)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "cpu"
    assert result.stderr == "", result.stderr


def test_json_rows_of_a_cached_bench_equal_a_fresh_estimate(tmp_path):
    args = ["--model", "palm-8b", "--chips", "8", "--batch", "64", "--format", "json"]
    fresh = json_lines(invoke("estimate", *args))
    invoke("bench", *args, "--out", str(tmp_path / "out"), "--no-plots")
    cached = json_lines(invoke("bench", *args, "--out", str(tmp_path / "out"), "--no-plots"))
    assert [row["step_time_s"] for row in cached] == [row["step_time_s"] for row in fresh]
    assert json.loads((tmp_path / "out" / "rows.jsonl").read_text().splitlines()[0])["model"] == "palm-8b"
