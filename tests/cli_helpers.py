"""Running the `zoo` command in-process (click's CliRunner) and checking what it prints."""

import json

from click.testing import CliRunner

from cli.main import main
from layouts.bench.result_row import COMMUNICATION_KEYS, ENV_KEYS, MEMORY_KEYS, ROW_KEYS

NUMBER = (int, float, type(None))
ROW_TYPES = {
    "model": str, "layout": str, "attention": str, "chips": int, "mesh": str, "target": str, "phase": str, "batch": int,
    "input_len": int, "context_len": int, "gen_tokens": int, "weights": str, "source": str, "status": str,
    "error": (str, type(None)), "step_time_s": NUMBER, "latency_s": NUMBER, "tokens_per_s": NUMBER, "mfu": NUMBER,
    "cost_chip_ms_per_token": NUMBER, "hbm_bytes": NUMBER, "fits": (bool, type(None)), "compile_time_s": NUMBER,
    "memory_per_chip_bytes": dict, "comm_bytes_per_chip": dict, "env": dict, "details": dict,
}  # fmt: skip


def validate_row(row: dict) -> None:
    """A result row (README.md, "Result rows"): every key, the right types, the nested blocks complete."""
    assert set(ROW_KEYS) <= set(row), set(ROW_KEYS) - set(row)
    for key, kind in ROW_TYPES.items():
        assert isinstance(row[key], kind), (key, row[key])
    assert set(row["memory_per_chip_bytes"]) == set(MEMORY_KEYS)
    assert set(row["comm_bytes_per_chip"]) == set(COMMUNICATION_KEYS)
    assert set(row["env"]) == set(ENV_KEYS)
    assert row["phase"] in ("prefill", "decode") and row["source"] in ("estimate", "compile", "run")
    assert row["status"] in ("ok", "error") and (row["status"] == "ok") == (row["error"] is None)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def json_lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_usage_error(result, *parts: str) -> None:
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
