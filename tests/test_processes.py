"""Several processes as one set of devices (`layouts.processes`, `zoo launch`): 2 processes × 4 CPU
devices over loopback give what 1 process × 8 devices gives, checkpoints move between the two,
and a process that dies stops the others with one line, soon.

Each launch starts two Python processes (imports and compiles: about 8 s for a save or a restore,
20 s for the generation, on this 2-core machine)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from checkpoints import load_shipped, read_manifest, restore, save, manifest_model
from checkpoints.array_tree import named_arrays
from checkpoints.ownership import is_staging
from checkpoints.shipped import SHIPPED_CHECKPOINT
from cli.launcher import describe_exit, launch, process_environment
from layouts import get_partitioning, make_mesh, sharded_generate
from layouts.processes import ProcessError, settings_from
from layouts.sharding import param_shardings

ROOT = Path(__file__).resolve().parent.parent
WORKER = [sys.executable, str(ROOT / "tests" / "processes_worker.py")]
sys.path.insert(0, str(ROOT / "tests"))
import processes_worker  # noqa: E402  (its constants: the prompts, the layouts; importing it starts no runtime here)

# A dead process is noticed by the launcher at its next poll (50 ms); the others get SIGINT at once and
# SIGKILL after the grace period (a process blocked in a collective cannot take SIGINT).
STOP_WITHIN_S = 10.0


def _launch(arguments, tmp_path, **options):
    out, err = (tmp_path / "stdout.txt").open("w+"), (tmp_path / "stderr.txt").open("w+")
    started = time.time()
    outcome = launch([str(a) for a in arguments], processes=2, devices_per_process=4, stdout=out, stderr=err, **options)
    ended = time.time()
    out.seek(0), err.seek(0)
    return outcome, out.read(), err.read(), started, ended


def _one_process_tokens():
    manifest = read_manifest(SHIPPED_CHECKPOINT)
    found = {}
    for ffn, attention in processes_worker.GENERATION_LAYOUTS:
        target = manifest_model(manifest)
        mesh = make_mesh(processes_worker.MESH)
        partitioning = get_partitioning(ffn, attention, manifest.config)
        model = restore(SHIPPED_CHECKPOINT, target, param_shardings(target, partitioning, mesh))
        result = sharded_generate(
            model, processes_worker.PROMPTS, jax.random.key(0), prefill_partitioning=partitioning, decode_partitioning=partitioning, mesh=mesh, max_new_tokens=8
        )
        found[f"{ffn}+{attention}"] = np.asarray(result.tokens).tolist()
    return found


def test_two_processes_generate_the_tokens_one_process_does(devices, tmp_path):
    outcome, _, err, started, ended = _launch([*WORKER, "generate", tmp_path / "tokens.json"], tmp_path)
    assert outcome.status == 0, err
    print(f"2-process generation under {len(processes_worker.GENERATION_LAYOUTS)} layouts: {ended - started:.1f} s")
    two = json.loads((tmp_path / "tokens.json").read_text())
    one = _one_process_tokens()
    assert two == one
    # Not a degenerate prompt batch: the sequences differ, so a batch split wrongly would show.
    assert len({tuple(row) for row in one["2d-ws+batch"]}) > 4


def test_a_checkpoint_saved_by_two_processes_restores_in_one_bit_identically(devices, tmp_path):
    outcome, _, err, started, ended = _launch([*WORKER, "save", SHIPPED_CHECKPOINT, tmp_path / "saved"], tmp_path)
    assert outcome.status == 0, err
    print(f"2-process save: {ended - started:.1f} s")
    original, restored = named_arrays(load_shipped()), named_arrays(restore(tmp_path / "saved", manifest_model(read_manifest(tmp_path / "saved"))))
    assert original.keys() == restored.keys()
    for name in original:
        assert np.array_equal(np.asarray(original[name]).view(np.uint16), np.asarray(restored[name]).view(np.uint16)), name
    assert not (tmp_path / "saved.incomplete").exists()


def test_a_checkpoint_saved_by_one_process_restores_in_two_bit_identically(devices, tmp_path):
    save(load_shipped(), tmp_path / "one", overwrite=False)
    outcome, _, err, started, ended = _launch([*WORKER, "restore", tmp_path / "one", tmp_path / "gathered.npz"], tmp_path)
    assert outcome.status == 0, err
    print(f"2-process restore: {ended - started:.1f} s")
    gathered = np.load(tmp_path / "gathered.npz")
    for name, array in named_arrays(load_shipped()).items():
        assert np.array_equal(np.asarray(array).view(np.uint16), gathered[name]), name


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint(devices, tmp_path):
    previous = tmp_path / "checkpoint"
    save(load_shipped(), previous)
    before = read_manifest(previous)
    outcome, out, err, _, ended = _launch([*WORKER, "save-and-die", SHIPPED_CHECKPOINT, previous], tmp_path)
    assert outcome.status != 0 and "process 1 of 2 was killed by SIGKILL" in outcome.failure, (out, err)
    killed_at = float(out.split("killing at ")[1].split()[0])
    assert ended - killed_at < STOP_WITHIN_S
    # The old checkpoint is whole and unchanged. Process 0 removed the new one's staging directory
    # when its collective failed; had it been killed too, the next save would remove it.
    assert read_manifest(previous) == before
    restore(previous, manifest_model(before))
    staging = tmp_path / "checkpoint.incomplete"
    assert not staging.exists() or is_staging(staging)
    save(load_shipped(), previous, overwrite=True)
    assert not (tmp_path / "checkpoint.incomplete").exists()


def test_a_killed_process_stops_the_other_with_one_line_soon(devices, tmp_path):
    outcome, out, err, _, ended = _launch([*WORKER, "steps-and-die", 3], tmp_path, grace_s=2.0)
    killed_at = float(out.split("killing at ")[1].split()[0])
    print(f"the launch ended {ended - killed_at:.2f} s after process 1 was killed")
    assert ended - killed_at < STOP_WITHIN_S
    assert outcome.status == 128 + signal.SIGKILL
    assert outcome.failure == "process 1 of 2 was killed by SIGKILL; stopped the other 1 process(es)"


def test_the_zoo_launch_command_prints_one_error_line(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("import os, sys\nprint('process', os.environ['ZOO_PROCESS_ID'], flush=True)\nsys.exit(3 if os.environ['ZOO_PROCESS_ID'] == '1' else 0)\n")
    done = subprocess.run([sys.executable, "-m", "cli", "launch", "--", sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines()[-1] == "zoo launch: error: process 1 of 2 exited with code 3"
    assert sorted(done.stdout.split("\n")[:2]) == ["[0] process 0", "[1] process 1"]


def test_the_processes_get_their_settings_and_devices():
    environment = process_environment({"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --foo"}, port=1234, processes=3, process_id=2, devices=2, heartbeat_s=None)
    assert environment["XLA_FLAGS"] == "--foo --xla_force_host_platform_device_count=2"
    assert (environment["ZOO_COORDINATOR"], environment["ZOO_NUM_PROCESSES"], environment["ZOO_PROCESS_ID"]) == ("127.0.0.1:1234", "3", "2")
    assert describe_exit(-9) == "was killed by SIGKILL" and describe_exit(2) == "exited with code 2"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"num_processes": 2}, "missing --coordinator, --process-id"),
        ({"coordinator": "host", "num_processes": 2, "process_id": 0}, "is not HOST:PORT"),
        ({"coordinator": "host:70000", "num_processes": 2, "process_id": 0}, "is not HOST:PORT"),
        ({"coordinator": "host:1234", "num_processes": 2, "process_id": 2}, "is not one of 0 to 1"),
    ],
)
def test_bad_settings_are_one_line_errors(monkeypatch, given, message):
    for variable in ("ZOO_COORDINATOR", "ZOO_NUM_PROCESSES", "ZOO_PROCESS_ID"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ProcessError, match=message):
        settings_from(**given)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ZOO_COORDINATOR", "10.0.0.2:8476")
    monkeypatch.setenv("ZOO_NUM_PROCESSES", "16")
    monkeypatch.setenv("ZOO_PROCESS_ID", "3")
    found = settings_from()
    assert (found.coordinator, found.num_processes, found.process_id) == ("10.0.0.2:8476", 16, 3)
    monkeypatch.setenv("ZOO_PROCESS_ID", "three")
    with pytest.raises(ProcessError, match="ZOO_PROCESS_ID='three' is not an integer"):
        settings_from()


def test_no_settings_means_one_process(monkeypatch):
    for variable in ("ZOO_COORDINATOR", "ZOO_NUM_PROCESSES", "ZOO_PROCESS_ID"):
        monkeypatch.delenv(variable, raising=False)
    assert settings_from() is None


def test_settings_missing_on_the_command_line_exit_with_code_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cli", "--num-processes", "2", "run"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "zoo: error: several processes need all three of --coordinator, --num-processes and --process-id; missing --coordinator, "
        "--process-id (or their variables ZOO_COORDINATOR, ZOO_PROCESS_ID)"
    ]


@pytest.mark.slow
def test_zoo_generate_across_two_processes_prints_what_one_process_does(tmp_path):
    command = ["zoo", "generate", "--layout", "2d-ws", "--gen-tokens", "12", "--format", "json"]
    outcome, out, err, _, _ = _launch(command, tmp_path)
    assert outcome.status == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("[0] {"), out  # the leader alone prints
    environment = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    one = subprocess.run([sys.executable, "-m", "cli", *command[1:]], capture_output=True, text=True, cwd=ROOT, env=environment, timeout=300)
    assert json.loads(lines[0][4:]) == json.loads(one.stdout)


def test_launching_nothing_runnable_is_a_one_line_error():
    done = subprocess.run([sys.executable, "-m", "cli", "launch", "--", "no-such-program-here"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["zoo launch: error: no program 'no-such-program-here' to launch: give `zoo ...` or a command on PATH (or its path)"]


@pytest.mark.slow
def test_without_the_launcher_the_runtime_stops_a_survivor_within_the_heartbeat(tmp_path):
    """Two processes started by hand, as on two hosts; the follower is killed from outside."""
    from cli.launcher import free_port

    port = free_port()
    base = dict(os.environ)
    children = [
        subprocess.Popen(
            [*WORKER, "steps-and-die", "1000000"],
            env=process_environment(base, port=port, processes=2, process_id=index, devices=4, heartbeat_s=5),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for index in range(2)
    ]  # fmt: skip
    try:
        time.sleep(15)  # both joined and stepping
        assert all(child.poll() is None for child in children)
        children[1].kill()
        killed = time.time()
        children[0].wait(timeout=60)
        print(f"the survivor stopped {time.time() - killed:.1f} s after the kill, status {children[0].returncode}")
        assert children[0].returncode != 0
        assert time.time() - killed < 5 + 10  # the heartbeat timeout, and time to notice
    finally:
        for child in children:
            child.kill()
            child.wait()


@pytest.mark.slow
def test_zoo_bench_across_two_processes_resumes_from_the_leaders_cache(tmp_path):
    """Process 0 alone writes the folder; its cache decides what both processes run."""
    out = tmp_path / "bench"
    flags = ["--model", "palm-4m", "--source", "compile,run", "--target", "local", "--chips", "8", "--batch", "8", "--input-len", "32",
             "--gen-tokens", "4", "--out", out, "--no-plots", "--format", "json"]  # fmt: skip
    first, out_text, err, _, _ = _launch(["zoo", "bench", "--layout", "2d-ws", *flags], tmp_path)
    assert first.status == 0, err
    rows = [json.loads(line[4:]) for line in out_text.splitlines() if line.startswith("[0] {")]
    assert {row["source"] for row in rows} == {"compile", "run"} and all(row["status"] == "ok" for row in rows), rows
    # Compiled for the devices of both processes: the per-host view sees two hosts.
    assert {row["details"]["per_host"]["hosts"] for row in rows if row["source"] == "compile"} == {2}
    assert not any(line.startswith("[1] {") for line in out_text.splitlines())
    second, out_text, err, _, _ = _launch(["zoo", "bench", "--layout", "2d-ws,1d-ws", *flags], tmp_path)
    assert second.status == 0, err
    # Four prefill/decode layout pairs × two sources; the first run's 2d-ws/2d-ws pair is reused.
    assert "zoo bench: computed 6, reused 2 from" in err
    printed = [line for line in out_text.splitlines() if line.startswith("[0] {")]
    assert len((out / "rows.jsonl").read_text().splitlines()) == len(printed) == 16


@pytest.mark.slow
def test_zoo_checkpoint_save_across_two_processes_keeps_every_checksum(tmp_path):
    outcome, _, err, _, _ = _launch(["zoo", "checkpoint", "save", SHIPPED_CHECKPOINT, tmp_path / "split", "--layout", "2d-ws", "--mesh", "2x2x2"], tmp_path)
    assert outcome.status == 0, err
    saved, original = read_manifest(tmp_path / "split"), read_manifest(SHIPPED_CHECKPOINT)
    assert {name: record.checksum for name, record in saved.arrays.items()} == {name: record.checksum for name, record in original.arrays.items()}
