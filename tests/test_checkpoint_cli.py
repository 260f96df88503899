"""`zoo checkpoint`: the commands write, inspect, check and convert; bad input exits with 2 in one
line before any work, and nothing on disk that the tool did not write is ever lost."""

import collections
import errno
import json
import math
import os
import pathlib
import shutil

import jax
import orbax.checkpoint as ocp
import pytest
from click.testing import CliRunner

from checkpoints import read_manifest
from checkpoints.ownership import STAGING_MARKER, mark_staging
from cli.main import main
from zoo import build_abstract, get_preset

WRITERS = ("init", "save", "quantize", "convert")


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


# Writing safely: --overwrite replaces only a checkpoint this tool wrote, every refusal comes before
# the work as one line with exit code 2, and a failed write leaves nothing behind.


def snapshot(root: pathlib.Path) -> dict[str, bytes | None]:
    """Every path under `root` with its content (None for a directory)."""
    return {path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None for path in sorted(root.rglob("*"))}


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def writer(command: str, source: pathlib.Path, out: pathlib.Path, *options: str) -> list[str]:
    """The arguments of writer `command` writing to `out` (from `source` unless it is init)."""
    if command == "init":
        return ["init", "--model", "palm-tiny", *options, str(out)]
    dtype = ["--dtype", "float32"] if command == "convert" else []
    return [command, *dtype, *options, str(source), str(out)]


@pytest.fixture
def thesis(tmp_path) -> pathlib.Path:
    """A user's directory: a file and a sub-folder holding a file."""
    directory = tmp_path / "thesis"
    (directory / "figures").mkdir(parents=True)
    (directory / "thesis.tex").write_text("\\chapter{Results}\n")
    (directory / "figures" / "plot.pdf").write_bytes(b"%PDF-1.7 \x00\x01")
    return directory


@pytest.mark.parametrize("command", WRITERS)
def test_overwrite_refuses_a_directory_that_is_not_a_checkpoint(command, initialised, thesis, nothing_allocated):
    before = snapshot(thesis.parent)
    error = one_line_error(zoo(*writer(command, initialised, thesis, "--overwrite")))
    assert f"{thesis} is not a checkpoint" in error and "--overwrite" in error
    assert snapshot(thesis.parent) == before


def test_overwrite_refuses_the_current_directory_and_its_parents(tmp_path, monkeypatch, nothing_allocated):
    working = tmp_path / "work"
    (working / "chapter").mkdir(parents=True)
    (working / "notes.txt").write_text("keep me\n")
    (working / "chapter" / "one.tex").write_text("keep me too\n")
    (working / "manifest.json").write_text("{}")  # even something named like a checkpoint's file
    monkeypatch.chdir(working)
    before = snapshot(tmp_path)
    error = one_line_error(zoo("init", "--model", "palm-tiny", "--overwrite", "."))
    assert error.endswith(f"{working} is the current directory, which overwrite (--overwrite) never replaces; choose another directory\n")
    error = one_line_error(zoo("init", "--model", "palm-tiny", "--overwrite", ".."))
    assert f"{tmp_path} holds the current directory" in error
    assert snapshot(tmp_path) == before


def test_overwrite_refuses_a_plain_file(tmp_path, nothing_allocated):
    target = tmp_path / "thesis.tex"
    target.write_text("\\chapter{Results}\n")
    error = one_line_error(zoo("init", "--model", "palm-tiny", "--overwrite", str(target)))
    assert f"{target} is a file, not a checkpoint" in error
    assert target.read_text() == "\\chapter{Results}\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["thesis.tex"]


def test_overwrite_replaces_a_checkpoint(initialised, tmp_path):
    target = tmp_path / "tiny"
    shutil.copytree(initialised, target)
    before = read_manifest(target)
    result = zoo("init", "--model", "palm-tiny", "--seed", "3", "--overwrite", "--format", "json", str(target))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["path"] == str(target)
    after = read_manifest(target)
    assert after.arrays.keys() == before.arrays.keys()
    assert after.arrays["embedding.value"].checksum != before.arrays["embedding.value"].checksum  # seed 3's weights
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny"]  # no staging, nothing set aside
    assert sorted(path.name for path in target.iterdir()) == ["arrays", "manifest.json"]  # marker gone


def test_staging_directory_without_the_marker_is_not_deleted(tmp_path, nothing_allocated):
    target = tmp_path / "tiny"
    staging = tmp_path / "tiny.incomplete"
    staging.mkdir()
    (staging / "draft.txt").write_text("mine\n")
    error = one_line_error(zoo("init", "--model", "palm-tiny", str(target)))
    assert f"{staging} is in the way" in error and STAGING_MARKER in error
    assert (staging / "draft.txt").read_text() == "mine\n"
    assert not target.exists()


def test_set_aside_directory_that_is_not_a_checkpoint_is_not_deleted(initialised, tmp_path, nothing_allocated):
    target = tmp_path / "tiny"
    shutil.copytree(initialised, target)
    replaced = tmp_path / "tiny.replaced"
    replaced.mkdir()
    (replaced / "draft.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    error = one_line_error(zoo("init", "--model", "palm-tiny", "--overwrite", str(target)))
    assert f"{replaced} is in the way" in error
    assert snapshot(tmp_path) == before


def test_own_stale_staging_is_removed_and_said_so(tmp_path, caplog):
    target = tmp_path / "tiny"
    staging = tmp_path / "tiny.incomplete"
    mark_staging(staging)
    (staging / "arrays").mkdir()
    (staging / "arrays" / "chunk").write_bytes(bytes(1000))
    result = zoo("init", "--model", "palm-tiny", "--format", "json", str(target))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["arrays"] == 8
    assert not staging.exists()
    removal = [record.getMessage() for record in caplog.records if record.name == "checkpoints.save"]
    assert len(removal) == 1 and removal[0].startswith(f"removed {staging} (") and "did not finish" in removal[0]


@pytest.mark.parametrize(
    "failure",
    [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), ValueError("RESOURCE_EXHAUSTED: Error writing local file [os_error_code='28']")],
    ids=["OSError", "tensorstore"],
)
def test_full_disk_mid_save_leaves_the_previous_checkpoint_and_no_staging(failure, initialised, tmp_path, monkeypatch):
    target = tmp_path / "tiny"
    shutil.copytree(initialised, target)
    before = snapshot(tmp_path)

    def fill_the_disk(self, directory, *arguments, **keywords):
        pathlib.Path(directory).mkdir(parents=True)
        (pathlib.Path(directory) / "half-written").write_bytes(bytes(4096))
        raise failure

    monkeypatch.setattr(ocp.Checkpointer, "save", fill_the_disk)
    result = zoo("init", "--model", "palm-tiny", "--seed", "3", "--overwrite", str(target))
    assert one_line_error(result).endswith(f"cannot write checkpoint {target}: No space left on device\n")
    assert snapshot(tmp_path) == before


def test_disk_space_is_checked_before_the_work(tmp_path, monkeypatch, nothing_allocated):
    free = 4096
    monkeypatch.setattr(shutil, "disk_usage", lambda path: collections.namedtuple("usage", "total used free")(10**9, 10**9 - free, free))
    needed = sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(build_abstract(get_preset("palm-tiny"))))
    error = one_line_error(zoo("init", "--model", "palm-tiny", str(tmp_path / "tiny")))
    assert f"it needs {needed:,} bytes and {tmp_path} has {free:,} free" in error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", ["/dev/null/x", "/proc/x"])
def test_unwritable_parent_is_refused_before_the_work(out, nothing_allocated):
    error = one_line_error(zoo("init", "--model", "palm-tiny", out))
    assert f"cannot write checkpoint {out}: " in error


@pytest.mark.parametrize(
    ("content", "complaint"),
    [(b"\x89PNG\r\n\x1a\n\xff\xfe", "manifest is not UTF-8 text"), (b"[1, 2]", "manifest is a JSON array")],
    ids=["binary", "list"],
)
def test_unreadable_manifest_is_one_line_naming_the_file(content, complaint, initialised, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(initialised, damaged)
    (damaged / "manifest.json").write_bytes(content)
    for command in ("info", "verify"):
        error = one_line_error(zoo(command, str(damaged)))
        assert f"{damaged / 'manifest.json'}: {complaint}" in error


def test_every_writer_and_verify_print_one_json_object(initialised, tmp_path):
    expected = {
        "init": ("bfloat16", 8), "save": ("bfloat16", 8), "quantize": ("int8", 14), "convert": ("float32", 8),
    }  # fmt: skip
    for command, (weights, arrays) in expected.items():
        out = tmp_path / command
        result = zoo(*writer(command, initialised, out, "--format", "json"))
        assert result.exit_code == 0, result.output
        record = json.loads(result.stdout)
        assert record == {"path": str(out), "model": "palm-tiny", "weights": weights, "arrays": arrays, "bytes": read_manifest(out).total_bytes}
    result = zoo("verify", "--format", "json", str(tmp_path / "quantize"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"path": str(tmp_path / "quantize"), "ok": True, "arrays": 14, "bytes": read_manifest(tmp_path / "quantize").total_bytes}


def test_info_and_verify_report_leftovers_with_their_size(initialised, tmp_path):
    directory = tmp_path / "tiny"
    shutil.copytree(initialised, directory)
    staging = tmp_path / "tiny.incomplete"
    mark_staging(staging)
    (staging / "chunk").write_bytes(bytes(5000))
    shutil.copytree(initialised, tmp_path / "tiny.replaced")
    sizes = {name: sum(path.stat().st_size for path in (tmp_path / name).rglob("*") if path.is_file()) for name in ("tiny.incomplete", "tiny.replaced")}
    for arguments in (["info", "--format", "json"], ["verify"]):
        result = zoo(*arguments, str(directory))
        assert result.exit_code == 0, result.output
        notes = result.stderr.splitlines()
        assert len(notes) == 2, result.stderr
        assert notes[0].startswith(f"note: {staging} ({sizes['tiny.incomplete']:,} bytes) is the staging directory of an interrupted save")
        assert f"rm -r {staging}" in notes[0]
        assert notes[1].startswith(f"note: {tmp_path / 'tiny.replaced'} ({sizes['tiny.replaced']:,} bytes) is the previous checkpoint")
    assert json.loads(zoo("info", "--format", "json", str(directory)).stdout)["weights"] == "bfloat16"


@pytest.mark.parametrize("columns", ["80", "100"])
def test_info_never_cuts_array_names(columns, initialised, tmp_path):
    quantized = tmp_path / "int8"
    assert zoo("quantize", str(initialised), str(quantized)).exit_code == 0
    result = CliRunner(env={"COLUMNS": columns}).invoke(main, ["checkpoint", "info", str(quantized)])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= int(columns)
    for name in read_manifest(quantized).arrays:
        assert f"│ {name} " in result.stdout, name


def test_a_mesh_larger_than_the_devices_is_one_line_before_the_work(tmp_path):
    out = tmp_path / "tiny"
    error = one_line_error(zoo("init", "--model", "palm-tiny", "--layout", "2d-ws", "--mesh", "4x4x1", str(out)))
    assert "mesh 4x4x1 needs 16 devices; 8 available" in error
    assert list(tmp_path.iterdir()) == []


def test_a_random_init_larger_than_the_free_memory_is_refused_before_the_work(tmp_path, monkeypatch, nothing_allocated):
    from layouts.compiled import local_memory

    monkeypatch.setattr(local_memory, "_host_available_bytes", lambda: 2**28)
    error = one_line_error(zoo("init", "--model", "palm-150m", str(tmp_path / "big")))
    assert "initialising palm-150m needs about" in error and "available memory is 0.25 GiB" in error
    assert list(tmp_path.iterdir()) == []
