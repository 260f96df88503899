"""Ahead-of-time compilation of one phase: the zoo's real prefill or decode step for a partitioning
and workload, lowered with abstract sharded arguments (nothing allocated) and compiled for devices —
a TPU slice described by libtpu with no TPU present, or the local devices.

A prefill compiles `prefill` of `batch × input_len` tokens into a cache of exactly `input_len`; a
decode compiles one `decode_step` against a cache of `Workload.cache_len("decode")` = context_len
+ gen_tokens: the cache a generation allocates, as the estimator counts it. The compiler's failure
(RESOURCE_EXHAUSTED when a TPU program does not fit, or any other) is returned, not raised; input
errors (ZooError) are raised. `CompiledPhase` reads back what the program needs: its argument
shards, the compiler's memory figures (one total for every reader), its cost analysis and the
collectives of the optimized program."""

import dataclasses
import re
import time
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from layouts.compiled import compile_cache
from layouts.compiled.compile_cache import ProgramFacts
from layouts.compiled.hlo_analysis import HloCollective, collectives_from_text
from layouts.workload import Workload
from layouts.layout import Partitioning
from layouts.mesh import MeshShape, make_mesh
from layouts.partitioners import DEFAULT_PARTITIONER
from layouts.steps import build_steps
from zoo.errors import ZooError
from zoo.execution import AS_DECLARED, Execution, executed_abstract, execution_for
from zoo.kv_cache import abstract_cache
from zoo.quantization import abstract_model

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def shard_bytes(tree) -> int:
    """Per-chip bytes of a tree of sharded ShapeDtypeStructs (the largest shard: shards are equal
    when dimensions divide, which the resolver enforces)."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shard = leaf.sharding.shard_shape(leaf.shape)
        total += int(np.prod(shard, dtype=np.int64)) * leaf.dtype.itemsize
    return total


def _padded_bytes(shape, layout, itemsize) -> int:
    """Bytes of an array of `shape` in a device layout: the minor dimensions are padded up to the
    layout's first tile (on TPU, (8, 128) for 2D minor tiles; scalars and vectors pad too)."""
    dims = [shape[axis] for axis in layout.major_to_minor]
    tile = tuple(layout.tiling[0]) if layout.tiling else ()
    if not tile:
        return int(np.prod(dims, dtype=np.int64)) * itemsize
    minor = ([1] * max(0, len(tile) - len(dims)) + dims)[-len(tile) :]
    major = dims[: max(0, len(dims) - len(tile))]
    padded = [-(-size // step) * step for size, step in zip(minor, tile)]
    return int(np.prod(major, dtype=np.int64)) * int(np.prod(padded, dtype=np.int64)) * itemsize


def argument_bytes(compiled, arguments) -> tuple[int, int | None]:
    """Per-chip bytes of the program's arguments: (logical shards, shards in the compiled device
    layouts, or None where the backend does not say). Their difference is the layout padding."""
    leaves = jax.tree.leaves(arguments)
    logical = sum(int(np.prod(leaf.sharding.shard_shape(leaf.shape), dtype=np.int64)) * leaf.dtype.itemsize for leaf in leaves)
    try:
        formats = jax.tree.leaves(compiled.input_formats[0])
    except Exception:  # a backend or jax version without input formats
        return logical, None
    layouts = [getattr(item, "layout", item) for item in formats]
    if len(layouts) != len(leaves) or any(getattr(layout, "major_to_minor", None) is None for layout in layouts):
        return logical, None
    padded = sum(_padded_bytes(leaf.sharding.shard_shape(leaf.shape), layout, leaf.dtype.itemsize) for leaf, layout in zip(leaves, layouts))
    return logical, padded


def _one_line(error: BaseException) -> str:
    text = str(error)
    # XLA's messages may carry a source trace after the reason; the first lines are the reason.
    text = text.split("=== Source Location Trace")[0]
    return " ".join(text.split())[:1000] or type(error).__name__


def _reported_requirement(message: str) -> int | None:
    """The bytes a RESOURCE_EXHAUSTED message says the program needs, e.g. '(132.49G)'."""
    match = re.search(r"required for [^(]*\((\d+(?:\.\d+)?)([KMGT]?)\)", message) or re.search(r"Used (\d+(?:\.\d+)?)([KMGT]?) of", message)
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


@dataclasses.dataclass(frozen=True)
class CompiledPhase:
    """One phase's step compiled for a mesh, with the abstract arguments it was compiled for:
    what the tool reads from the program (`facts`: its figures, or the compiler's failure, and the
    seconds compiling took where it was compiled), the program itself where it was compiled in
    this process (None when it failed, or when the facts came from the compile cache), and where
    the facts came from (`cache`: "hit" or "miss" in the compile cache, `layouts.compiled.
    compile_cache`, whose local programs JAX's own cache serves; "off" when it is off)."""

    program: Any
    facts: ProgramFacts
    mesh: Mesh
    arguments: tuple  # (model, tokens, cache) as sharded ShapeDtypeStructs
    cache: str
    here_s: float  # seconds this process spent lowering and compiling it, or finding it in the cache
    # How the program runs the model: as declared for a TPU topology, as the backend runs it
    # fastest for the local devices (`zoo.execution`).
    execution: Execution = AS_DECLARED

    @property
    def seconds(self) -> float:
        return self.facts.seconds

    @property
    def failure(self) -> str | None:
        """The compiler's failure in one line, or None."""
        return self.facts.failure

    @property
    def failure_reason(self) -> str | None:
        return self.facts.failure

    @property
    def weight_bytes(self) -> int:
        """Per-chip bytes of the weights the program takes."""
        return shard_bytes(self.arguments[0])

    @property
    def kv_bytes(self) -> int:
        """Per-chip bytes of the KV cache the program takes."""
        cache = self.arguments[2]
        return shard_bytes((cache.k, cache.v))

    @property
    def out_of_memory(self) -> bool:
        return _out_of_memory(self.failure)

    @property
    def required_bytes(self) -> int | None:
        """What a compiler that ran out of memory says the program needs per chip."""
        return _reported_requirement(self.failure) if self.out_of_memory else None

    def compiler_memory(self) -> dict[str, int] | None:
        """The compiler's per-chip memory figures, and their `total`: arguments + outputs − aliased
        (the donated cache) + temporaries + generated code. None where the backend has none."""
        figures = self.facts.memory
        if figures is None:
            return None
        total = figures["arguments"] + figures["outputs"] - figures["aliased"] + figures["temporaries"] + figures["generated_code"]
        return dict(figures) | {"total": total}

    def compiler_cost(self) -> dict | None:
        """XLA's cost analysis. XLA counts a while loop's body once, so its FLOPs and bytes cover one
        layer of the scan, not all of them; its time is kept only where the backend gives one."""
        cost = self.facts.cost
        if not cost:
            return None
        seconds = cost.get("optimal_seconds")
        return {
            "source": "XLA cost analysis (while-loop bodies counted once)",
            "flops": cost.get("flops"),
            "bytes_accessed": cost.get("bytes accessed"),
            "optimal_seconds": seconds if seconds is not None and seconds > 0 else None,
        }

    def argument_bytes(self) -> tuple[int, int | None]:
        """Per-chip bytes of the arguments: (logical shards, shards in the compiled device layouts,
        or None where the backend does not say)."""
        return shard_bytes(self.arguments), self.facts.argument_layout_bytes

    def collectives(self) -> list[HloCollective]:
        """The collectives of the optimized program, loop trips counted (`hlo_analysis`)."""
        return collectives_from_text(self.facts.hlo or "", self.mesh)


def _out_of_memory(reason: str | None) -> bool:
    return "RESOURCE_EXHAUSTED" in (reason or "") or "Ran out of memory" in (reason or "")


def _facts(compiled, seconds: float, arguments) -> ProgramFacts:
    """What the tool reads from a compiled program, read once."""
    memory = compiled.memory_analysis()
    figures = None
    if memory is not None:
        figures = {
            "arguments": int(memory.argument_size_in_bytes),
            "outputs": int(memory.output_size_in_bytes),
            "aliased": int(memory.alias_size_in_bytes),
            "temporaries": int(memory.temp_size_in_bytes),
            "generated_code": int(memory.generated_code_size_in_bytes),
        }
    try:
        cost = compiled.cost_analysis()
    except Exception:  # some backends have none
        cost = None
    if isinstance(cost, list):
        cost = cost[0] if cost else None
    kept = {key: cost.get(key) for key in ("flops", "bytes accessed", "optimal_seconds")} if cost else None
    return ProgramFacts(seconds, None, figures, kept, compiled.as_text(), argument_bytes(compiled, arguments)[1])


def compile_phase(
    partitioning: Partitioning,
    mesh_shape: MeshShape,
    workload: Workload,
    phase: str,
    devices,
    partitioner: str = DEFAULT_PARTITIONER,
    collective_matmul: str = "none",
    execution: Execution | None = None,
) -> CompiledPhase:
    """Lowers and compiles `phase` of `workload` under `partitioning` on `devices` laid out as
    `mesh_shape`, its collectives written by `partitioner`, the model run as `execution` says (None:
    as the local devices' backend runs it fastest, as declared for a TPU topology; `zoo.execution`). A program for devices this process
    cannot run (a TPU topology) is looked up in the compile cache first (`compile_cache`). Input
    errors (ZooError, which includes a layout the explicit partitioner cannot run) propagate; the
    compiler's failure is in the result."""
    config = partitioning.config
    mesh = make_mesh(mesh_shape, devices)
    here = _runs_here(mesh)
    if execution is None:
        # The local devices run the program their backend runs fastest, which is the one compiled.
        execution = execution_for(mesh.devices.flat[0].platform, workload.weights, mesh.size) if here else AS_DECLARED
    model = executed_abstract(abstract_model(config, workload.weights), execution)
    max_len = workload.cache_len(phase)
    input_len = workload.input_len if phase == "prefill" else 1
    steps = build_steps(
        model, partitioning, partitioning, mesh, batch=workload.batch, input_len=input_len, max_len=max_len, cache_dtype=workload.kv_dtype,
        partitioner=partitioner, collective_matmul=collective_matmul, prefill_chunk=workload.prefill_chunk if phase == "prefill" else None,
    )
    program = getattr(steps, phase)
    arguments = program.abstract_arguments(model, abstract_cache(config, workload.batch, max_len, workload.kv_dtype))
    if here:
        return _compile_here(program, arguments, mesh, execution)
    cache = "miss" if compile_cache.enabled() else "off"
    started = time.perf_counter()
    key = None
    try:
        lowered = program.ahead_of_time.lower(*arguments)
        key = compile_cache.program_key(lowered, mesh.devices.flatten().tolist()) if cache == "miss" else None
        found = compile_cache.load(key) if key else None
        if found is not None:
            return CompiledPhase(None, found, mesh, arguments, "hit", time.perf_counter() - started, execution)
        compiled = lowered.compile()
    except ZooError:
        raise
    except Exception as error:  # the compiler's own failure: reported, not raised
        facts = ProgramFacts(time.perf_counter() - started, failure=_one_line(error))
        if key and _out_of_memory(facts.failure):  # deterministic, unlike a crash: worth keeping
            compile_cache.store(key, facts)
        return CompiledPhase(None, facts, mesh, arguments, cache, facts.seconds, execution)
    facts = _facts(compiled, time.perf_counter() - started, arguments)
    if key:
        compile_cache.store(key, facts)
    return CompiledPhase(compiled, facts, mesh, arguments, cache, facts.seconds, execution)


def _compile_here(program, arguments, mesh: Mesh, execution: Execution) -> CompiledPhase:
    """A program for the local devices, which must run: JAX's own persistent cache serves it
    ("hit" when it served the program; the seconds are then this process's, lowering and loading:
    JAX's record of the original compile time is not reliable, 0 for some entries)."""
    cache = "miss" if compile_cache.enable_jax_cache() else "off"
    started = time.perf_counter()
    with compile_cache.jax_cache_savings() as saved:
        try:
            compiled = program.ahead_of_time.lower(*arguments).compile()
        except ZooError:
            raise
        except Exception as error:  # the compiler's own failure: reported, not raised
            facts = ProgramFacts(time.perf_counter() - started, failure=_one_line(error))
            return CompiledPhase(None, facts, mesh, arguments, cache, facts.seconds, execution)
    facts = _facts(compiled, time.perf_counter() - started, arguments)
    return CompiledPhase(compiled, facts, mesh, arguments, "hit" if saved else cache, facts.seconds, execution)


def _runs_here(mesh: Mesh) -> bool:
    """Whether the runtime can run a program on the mesh's devices: they are its devices (this
    process's, or with several processes every process's), not a TPU topology's abstract chips."""
    runtime = set(jax.devices())
    return all(device in runtime for device in mesh.devices.flat)
