"""`zoo bench`'s output folder: it replaces only its own files, one bench writes it at a time, its
cache is reused only under the same code and versions, and a damaged entry costs one recompute."""

import dataclasses
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, invoke, json_lines, validate_row

from layouts.bench import cache as bench_cache
from layouts.bench import output_folder
from layouts.bench.output_folder import OutputFolder
from layouts.cost import calibration

CELLS = ["--model", "palm-8b", "--chips", "8,16", "--batch", "64", "--decode-attention", "batch", "--no-plots", "--format", "json"]


def bench(out: Path, *extra: str):
    return invoke("bench", *CELLS, "--out", str(out), *extra)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_folder_of_the_users_files_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "thesis"
    (folder / "chapters").mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "rows.csv").write_text("my own table")
    (folder / "chapters" / "one.tex").write_text("chapter one")
    before = _snapshot(folder)
    assert_usage_error(bench(folder), "holds files zoo bench did not write", "thesis.tex")
    assert _snapshot(folder) == before


def test_the_current_folder_and_an_empty_name_are_refused(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("keep me")
    monkeypatch.chdir(tmp_path)
    assert_usage_error(bench(Path(".")), "holds files zoo bench did not write")
    assert_usage_error(invoke("bench", *CELLS, "--out", ""), "--out is empty")
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


@pytest.mark.parametrize("out,reason", [("/proc/zoo-out", "cannot create"), ("/dev/null/zoo-out", "cannot create")])
def test_an_output_that_cannot_be_created_is_one_line(out, reason):
    assert_usage_error(invoke("bench", *CELLS, "--out", out), reason, out)


def test_a_plain_file_as_output_is_refused(tmp_path):
    path = tmp_path / "results"
    path.write_text("mine")
    assert_usage_error(bench(path), "exists and is not a folder")
    assert path.read_text() == "mine"


def test_a_folder_an_earlier_bench_wrote_is_reused(tmp_path):
    out = tmp_path / "out"
    first = bench(out)
    assert first.exit_code == 0, first.stderr
    (out / "my-notes.txt").write_text("a note beside the results")  # the marker says the folder is the bench's
    second = bench(out)
    assert second.exit_code == 0 and "computed 0, reused 2" in second.stderr
    assert (out / "my-notes.txt").read_text() == "a note beside the results"


def test_a_new_calibration_or_version_recomputes_the_cached_cells(tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = json_lines(bench(out))
    slower = dataclasses.replace(calibration.CALIBRATED, flops_efficiency=0.5, link_efficiency=0.2, hop_latency_s=30e-6)
    monkeypatch.setitem(calibration.MODES, "calibrated", slower)
    recalibrated = bench(out)
    assert "computed 2, reused 0" in recalibrated.stderr and "stale" in recalibrated.stderr
    # The rows now reflect the new factors, not the cached ones.
    assert all(new["step_time_s"] > old["step_time_s"] for new, old in zip(json_lines(recalibrated), first))
    assert "computed 0, reused 2" in bench(out).stderr

    versions = bench_cache.environment()
    monkeypatch.setattr(bench_cache, "environment", lambda: versions | {"layoutzoo": "99.0"})
    upgraded = bench(out)
    assert "computed 2, reused 0" in upgraded.stderr and "stale" in upgraded.stderr


def test_the_source_digest_covers_every_package():
    files = {str(path) for path in bench_cache.source_files()}
    assert {"zoo/transformer.py", "layouts/cost/terms.py", "layouts/bench/cache.py", "cli/main.py"} <= files
    assert not any(part == "__pycache__" for path in bench_cache.source_files() for part in path.parts)


def test_a_corrupt_cell_is_reported_recomputed_and_the_rest_reused(tmp_path):
    out = tmp_path / "out"
    rows = json_lines(bench(out))
    damaged, intact = sorted((out / "cells").glob("*.json"))
    damaged.write_text(damaged.read_text()[:100])  # truncated mid-write by something else
    again = bench(out)
    assert again.exit_code == 0
    reports = [line for line in again.stderr.splitlines() if damaged.name in line]
    assert len(reports) == 1 and "not JSON" in reports[0] and "recomputing" in reports[0]
    assert "computed 1, reused 1" in again.stderr and "Traceback" not in again.stderr
    assert sorted(map(json.dumps, json_lines(again))) == sorted(map(json.dumps, rows))
    assert json.loads(damaged.read_text())["rows"]


def test_a_second_bench_on_a_folder_in_use_is_refused_with_the_holder(tmp_path):
    out = tmp_path / "out"
    with OutputFolder(out):
        refused = bench(out)
    assert_usage_error(refused, "another zoo bench", f"pid {os.getpid()}", str(out))
    assert bench(out).exit_code == 0  # the lock went with the first holder


def test_two_concurrent_benches_lose_and_corrupt_nothing(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from cli.main import main; main()", "bench", *CELLS, "--out", str(out)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    assert all("Traceback" not in stderr for _, _, stderr in results), results
    assert sorted(code for code, _, _ in results) in ([0, 0], [0, 2])
    for code, _, stderr in results:
        if code == 2:
            assert len(stderr.strip().splitlines()) == 1 and "another zoo bench" in stderr
    for path in (out / "cells").glob("*.json"):
        for row in json.loads(path.read_text())["rows"]:
            validate_row(row)
    written = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(written) == 4 and not list(out.glob(".*.partial")) and not list((out / "cells").glob(".*.partial"))


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "out"

    def full(self, text, encoding=None):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    result = bench(out)
    monkeypatch.undo()
    # The bench had started (its progress line is there); the failure is one line after it.
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "cannot write" in errors[0] and "No space left on device" in errors[0]
    assert not [path for path in out.rglob("*") if path.name.endswith(".partial")]


def test_atomic_writes_use_unique_temporary_names(tmp_path):
    names = set()
    for _ in range(2):
        with output_folder.atomic_path(tmp_path / "rows.jsonl") as temporary:
            names.add(temporary.name)
            temporary.write_text("x")
    assert len(names) == 2 and (tmp_path / "rows.jsonl").read_text() == "x"
    assert oct((tmp_path / "rows.jsonl").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
