"""benchmarks/run_speed.py runs: without the peer (the bench extra is not installed here), one
round of each case at a short context, every zoo contestant timed and its ratios to the roofline
worked out."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_run_speed_benchmark_runs_without_the_peer(tmp_path):
    out = tmp_path / "speed.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "run_speed.py"), "--no-peer", "--rounds", "1", "--context", "16", "--decode-batches", "1",
               "--prefill-batches", "2", "--budgets", "2,18", "--json", str(out)]  # fmt: skip
    environment = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}  # one CPU device, as a user's machine
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [case["case"] for case in report["cases"]] == ["decode b1", "prefill b2"]
    decode, prefill = report["cases"]
    assert {row["contestant"] for row in decode["rows"]} == {
        "zoo run (fp32)", "zoo run (bf16)", "zoo run (int8)", "zoo run (bf16, as declared)", "zoo generate (float32)", "zoo generate (bfloat16)",
    }  # fmt: skip
    for row in decode["rows"]:
        assert row["seconds"] > 0 and 0 < row["of_roofline"] and row["roofline_s"] > 0
    assert all("roofline_s" not in row for row in prefill["rows"])
    assert "zoo run (bf16)" in result.stdout and "read bandwidth" in result.stdout
