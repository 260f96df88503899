"""The `zoo` command through click's CliRunner: tables, JSON rows, the matrix, and bad input."""

import json
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, invoke, json_lines, validate_row

def test_models_table_and_json():
    result = invoke("models")
    assert result.exit_code == 0 and "palm-540b" in result.stdout and "mtnlg-530b" in result.stdout
    rows = json_lines(invoke("models", "--format", "json"))
    by_name = {row["name"]: row for row in rows}
    assert by_name["palm-8b"]["params"] == 8_632_012_800 and by_name["mtnlg-530b"]["n_kv_heads"] == 128
    assert set(by_name["palm-tiny"]) == {"name", "params", "n_layers", "d_model", "d_ff", "n_heads", "n_kv_heads", "d_head", "vocab"}


def test_layouts_list_detail_and_placements():
    assert "wg-xyz" in invoke("layouts").stdout
    detail = invoke("layouts", "2d-ws")
    assert "E_x F_yz" in detail.stdout
    placements = json_lines(invoke("layouts", "2d-ws", "--model", "palm-tiny", "--mesh", "2x2x2", "--format", "json"))
    w_in = next(p for p in placements if p["tensor"] == "blocks.mlp.w_in")
    assert w_in["spec"] == "[-, x, -, zy]" and w_in["per_chip_shape"] == [2, 64, 2, 128]


def test_estimate_table_and_json_rows():
    args = ["estimate", "--model", "palm-540b-64h", "--chips", "64", "--batch", "64", "--weights", "int8"]
    table = invoke(*args)
    assert table.exit_code == 0 and "palm-540b-64h" in table.stdout
    rows = json_lines(invoke(*args, "--format", "json"))
    assert [row["phase"] for row in rows] == ["prefill", "decode"]
    for row in rows:
        validate_row(row)
        assert row["source"] == "estimate" and row["status"] == "ok" and row["step_time_s"] > 0


def test_compile_and_run_one_small_cell_as_json():
    cell = ["--model", "palm-tiny", "--chips", "8", "--mesh", "2x2x2", "--batch", "8", "--input-len", "16", "--gen-tokens", "4"]
    compiled = json_lines(invoke("compile", *cell, "--target", "tpu-v4", "--phase", "decode", "--format", "json"))
    assert len(compiled) == 1
    validate_row(compiled[0])
    assert compiled[0]["source"] == "compile" and compiled[0]["memory_per_chip_bytes"]["weights"] > 0
    ran = json_lines(invoke("run", *cell, "--phase", "decode", "--repeats", "2", "--format", "json"))
    validate_row(ran[0])
    assert ran[0]["source"] == "run" and ran[0]["step_time_s"] > 0 and ran[0]["target"].startswith("local")


def test_bench_matrix_keeps_going_past_a_failing_cell_and_resumes(tmp_path):
    out = tmp_path / "bench"
    # mtnlg-530b's vocabulary of 51,200 does not divide 4096 chips: error rows; 2048 chips are fine.
    args = ["bench", "--model", "mtnlg-530b", "--chips", "2048,4096", "--batch", "64", "--out", str(out), "--format", "json", "--no-plots"]
    first = invoke(*args)
    assert first.exit_code == 0, first.stderr
    rows = json_lines(first)
    for row in rows:
        validate_row(row)
    errors = [row for row in rows if row["status"] == "error"]
    assert errors and all(row["chips"] == 4096 and "does not divide" in row["error"] for row in errors)
    assert any(row["status"] == "ok" and row["chips"] == 2048 for row in rows)
    written = (out / "rows.jsonl").read_text().splitlines()
    assert len(written) == len(rows) and (out / "rows.csv").read_text().count("\n") == len(rows) + 1
    assert "computed 2, reused 0" in first.stderr

    # Interrupted: one cell's result lost. The re-run computes only that one.
    cached = sorted((out / "cells").glob("*.json"))
    cached[0].unlink()
    second = invoke(*args)
    assert "computed 1, reused 1" in second.stderr
    assert sorted(map(json.dumps, json_lines(second))) == sorted(map(json.dumps, rows))


def test_bench_writes_plots(tmp_path):
    out = tmp_path / "plots"
    result = invoke("bench", "--model", "palm-8b", "--chips", "8,16", "--batch", "1,64", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert (out / "pareto.png").stat().st_size > 1000 and (out / "memory.png").stat().st_size > 1000


def test_experiment_file(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('model = "palm-8b"\nchips = [8, 16]\nbatch = 64\nlayout = "2d-ws"\nsource = ["estimate"]\n')
    result = invoke("bench", "--config", str(path), "--out", str(tmp_path / "out"), "--format", "json", "--no-plots")
    rows = json_lines(result)
    assert result.exit_code == 0 and {row["chips"] for row in rows} == {8, 16} and len(rows) == 4


@pytest.mark.parametrize(
    "args,parts",
    [
        (["estimate", "--model", "palm-8c"], ["unknown model 'palm-8c'", "did you mean 'palm-8b'"]),
        (["estimate", "--model", "palm-8b", "--layout", "2d-wz"], ["unknown layout '2d-wz'", "did you mean '2d-ws'"]),
        (["compile", "--model", "palm-tiny", "--target", "tpu-v9"], ["unknown target 'tpu-v9'", "tpu-v4"]),
        (["estimate", "--model", "palm-8b", "--mesh", "4x4y4", "--chips", "64"], ["malformed mesh"]),
        (["estimate", "--model", "palm-8b", "--batch", "0"], ["--batch takes positive integers"]),
        (["estimate", "--model", "palm-8b", "--chips", "-8"], ["--chips takes positive integers"]),
        (["estimate", "--model", "palm-8b", "--chips", "8", "--mesh", "2x2x4"], ["has 16 chips but chips=8"]),
        (["bench", "--model", "palm-8b", "--source", "guess"], ["unknown source 'guess'"]),
    ],
)
def test_bad_input_exits_2_with_one_line(args, parts):
    assert_usage_error(invoke(*args), *parts)


@pytest.mark.parametrize(
    "text,parts",
    [
        ('model = "palm-8b"\ncolour = "red"\n', ["unknown key 'colour'"]),
        ('model = "palm-8b"\nchips = "eight"\n', ["key 'chips' takes integers"]),
        ('model = "palm-8b"\nchips = [8, true]\n', ["key 'chips' takes integers"]),
        ('model = "palm-8b\n', ["not valid TOML"]),
    ],
)
def test_bad_experiment_files_name_file_and_key_and_touch_no_output(tmp_path, text, parts):
    out = tmp_path / "out"
    out.mkdir()
    previous = out / "rows.jsonl"
    previous.write_text("precious\n")
    path = tmp_path / "exp.toml"
    path.write_text(text)
    assert_usage_error(invoke("bench", "--config", str(path), "--out", str(out)), str(path), *parts)
    assert previous.read_text() == "precious\n" and not (out / "cells").exists()


def test_reproduce_paper_json():
    rows = json_lines(invoke("reproduce-paper", "--format", "json"))
    appendix_d = [row for row in rows if row["quantity"].startswith("App. D")]
    assert len(rows) - len(appendix_d) >= 20 and all(abs(row["relative_error"]) < 0.1 for row in rows if row not in appendix_d)
    # Appendix D's rows carry the estimate of the fit that did not see them.
    assert len(appendix_d) == 81 and all(abs(row["held_out_error"]) < 0.25 and abs(row["relative_error"]) < 0.2 for row in appendix_d)


def test_generate_json_with_a_random_tiny_model():
    result = invoke("generate", "--model", "palm-tiny", "--prompt", "hi", "--gen-tokens", "4", "--format", "json")
    record = json.loads(result.stdout)
    assert set(record) == {"model", "layout", "prompt", "text", "tokens"} and len(record["tokens"]) == 4


def test_json_output_is_only_rows_on_stdout(tmp_path):
    result = invoke("bench", "--model", "palm-8b", "--chips", "8", "--out", str(tmp_path / "o"), "--format", "json", "--no-plots")
    assert all(line.startswith("{") for line in result.stdout.splitlines())
    assert Path(tmp_path / "o" / "rows.jsonl").exists()


def test_shipped_examples_load():
    from layouts.bench.matrix import load_experiment
    from layouts import get_layout

    examples = Path(__file__).parent.parent / "examples"
    experiments = [path for path in examples.glob("*.toml") if 'kind = "ffn"' not in path.read_text()]
    assert len(experiments) >= 3
    for path in experiments:
        assert all(matrix.cells() for matrix in load_experiment(path)), path
    assert get_layout(str(examples / "my-2d-ws.toml")).name == "my-2d"


def test_layout_auto_picks_the_fastest_estimated_layout_per_phase():
    cell = ["--model", "palm-540b-64h", "--chips", "64", "--batch", "512", "--format", "json"]
    chosen = json_lines(invoke("estimate", *cell, "--layout", "auto"))
    assert [row["phase"] for row in chosen] == ["prefill", "decode"]
    for row in chosen:
        assert row["status"] == "ok" and row["layout"] in {"1d-ws", "2d-ws", "wg-x", "wg-xy", "wg-xyz"}
    for layout in ("2d-ws", "1d-ws"):
        fixed = json_lines(invoke("estimate", *cell, "--layout", layout, "--attention", chosen[0]["attention"], "--phase", "prefill"))
        assert chosen[0]["latency_s"] <= fixed[0]["latency_s"]
