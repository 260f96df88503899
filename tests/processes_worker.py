"""What each process runs in the multi-process tests (tests/test_processes.py), started by `zoo
launch`, which gives it its share of CPU devices and the distributed settings in its environment.

    python tests/processes_worker.py generate OUT.json        greedy tokens of a batch under each layout
    python tests/processes_worker.py save SOURCE DIR          SOURCE re-saved to DIR, split under 2d-ws
    python tests/processes_worker.py restore SOURCE OUT.npz   SOURCE read in under 2d-ws, gathered
    python tests/processes_worker.py save-and-die SOURCE DIR  as save, but process 1 is killed mid-save
    python tests/processes_worker.py steps-and-die STEPS      decode steps; process 1 is killed after STEPS

Process 0 alone writes OUT files. Killed processes print `killing at <unix time>` first.
"""

import json
import os
import signal
import sys
import time

import zoo.platforms  # noqa: F401  (before jax)

import jax
import numpy as np

from checkpoints import manifest_model, read_manifest, restore, save
from checkpoints.array_tree import named_arrays
from layouts import get_partitioning, make_mesh, processes, sharded_generate
from layouts.sharding import param_shardings

MESH = (2, 2, 2)
# (FFN layout, attention) pairs the generation test compares with one process.
GENERATION_LAYOUTS = (("2d-ws", "batch"), ("wg-xyz", "heads"))
PROMPTS = np.array([[(7 * row + 3 * column) % 200 + 32 for column in range(6)] for row in range(8)], dtype=np.int32)


def _die(what: str) -> None:
    print(f"killing at {time.time():.3f} {what}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _split_model(source: str, ffn: str = "2d-ws", attention: str = "batch"):
    manifest = read_manifest(source)
    target = manifest_model(manifest)
    mesh = make_mesh(MESH)
    partitioning = get_partitioning(ffn, attention, manifest.config)
    return restore(source, target, param_shardings(target, partitioning, mesh)), mesh, partitioning


def generate_tokens(source: str) -> dict:
    """{layout: greedy tokens of PROMPTS} under each of GENERATION_LAYOUTS."""
    found = {}
    for ffn, attention in GENERATION_LAYOUTS:
        model, mesh, partitioning = _split_model(source, ffn, attention)
        result = sharded_generate(
            model, PROMPTS, jax.random.key(0), prefill_partitioning=partitioning, decode_partitioning=partitioning, mesh=mesh, max_new_tokens=8
        )
        found[f"{ffn}+{attention}"] = processes.gathered(result.tokens).tolist()
    return found


def main(command: str, *arguments: str) -> None:
    from checkpoints.shipped import SHIPPED_CHECKPOINT

    if command == "generate":
        tokens = generate_tokens(str(SHIPPED_CHECKPOINT))
        if processes.is_leader():
            with open(arguments[0], "w") as out:
                json.dump(tokens, out)
    elif command in ("save", "save-and-die"):
        model, _, _ = _split_model(arguments[0])
        if command == "save-and-die" and jax.process_index() == 1:
            import orbax.checkpoint as ocp

            original = ocp.Checkpointer.save

            def save_then_die(self, *args, **kwargs):
                original(self, *args, **kwargs)  # its shards are on disk; process 0 waits for the manifest
                _die("after writing its shards")

            ocp.Checkpointer.save = save_then_die
        save(model, arguments[1], overwrite=True)
    elif command == "restore":
        model, _, _ = _split_model(arguments[0])
        arrays = {name: processes.gathered(array) for name, array in named_arrays(model).items()}
        if processes.is_leader():
            np.savez(arguments[1], **{name: array.view(np.uint16) if array.dtype.itemsize == 2 else array for name, array in arrays.items()})
    elif command == "steps-and-die":
        model, mesh, partitioning = _split_model(str(SHIPPED_CHECKPOINT))
        from zoo.inference import forward

        step = jax.jit(forward)
        tokens = processes.global_array(PROMPTS, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
        for index in range(10_000):
            jax.block_until_ready(step(model, tokens))
            if index == int(arguments[0]) and jax.process_index() == 1:
                _die(f"after {index + 1} steps")
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    processes.start(processes.settings_from())  # before any computation
    main(*sys.argv[1:])
