"""The compile cache (layouts/compiled/compile_cache.py): a TPU program compiled once is served from
the cache with the same row and the compile time it took where it was compiled; a corrupt entry is
a miss; `--no-compile-cache` and `zoo cache clear` do what they say."""

import dataclasses

import pytest

from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell
from layouts.compiled import compile_cache
from tests.cli_helpers import invoke, json_lines

CELL = Cell("palm-tiny", chips=8, phase="decode", batch=8, decode_attention="batch")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    compile_cache.set_enabled(True)
    yield tmp_path / "cache"
    compile_cache.set_enabled(False)


def _without_cache_note(row) -> dict:
    found = dataclasses.asdict(row)
    found["details"] = {key: value for key, value in found["details"].items() if key not in ("compile_cache", "compile_step_s")}
    return found


def test_a_second_compile_is_served_from_the_cache_with_the_same_row(cache):
    (first,) = compile_cell(CELL)
    (second,) = compile_cell(CELL)
    assert (first.details["compile_cache"], second.details["compile_cache"]) == ("miss", "hit")
    assert _without_cache_note(second) == _without_cache_note(first)  # the compile time too: where it was compiled
    assert second.details["compile_step_s"] < first.compile_time_s
    assert len(list((cache / "compile").glob("*.json.gz"))) == 1
    # Another program (another batch) is another entry.
    (other,) = compile_cell(dataclasses.replace(CELL, batch=16))
    assert other.details["compile_cache"] == "miss"


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(cache):
    compile_cell(CELL)
    (entry,) = (cache / "compile").glob("*.json.gz")
    entry.write_bytes(b"not gzip")
    (again,) = compile_cell(CELL)
    assert again.details["compile_cache"] == "miss" and again.status == "ok"
    assert compile_cell(CELL)[0].details["compile_cache"] == "hit"


def test_the_flag_turns_the_cache_off_and_clear_empties_it(cache):
    compile_cell(CELL)
    flags = ["--model", "palm-tiny", "--chips", "8", "--phase", "decode", "--batch", "8", "--decode-attention", "batch", "--format", "json"]
    (row,) = json_lines(invoke("compile", *flags, "--no-compile-cache"))
    assert row["details"]["compile_cache"] == "off"
    compile_cache.set_enabled(True)
    (row,) = json_lines(invoke("compile", *flags))
    assert row["details"]["compile_cache"] == "hit"
    assert "1 entries" in invoke("cache", "info").stdout
    assert "removed 1 entries" in invoke("cache", "clear").stdout
    assert not list((cache / "compile").glob("*.json.gz")) and "0 entries" in invoke("cache", "info").stdout


def test_without_the_cache_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    (row,) = compile_cell(CELL)
    assert row.details["compile_cache"] == "off" and not (tmp_path / "cache").exists()
