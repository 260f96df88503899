"""Ahead-of-time compilation of a cell: the zoo's real prefill and decode steps, lowered with abstract
sharded arguments (nothing allocated) and compiled for a target — a TPU slice described by libtpu,
with no TPU present, or the local devices — and read back as result rows.

Per chip, a compile row reports:
- memory: `weights` and `kv_cache` are the per-chip shards of the program's arguments (exactly what
  the compiled program takes), `total` is the compiler's own figure (arguments + outputs − aliased
  (the donated cache) + temporaries + generated code), `other` the rest; the raw compiler figures
  are in `details["compiler_memory"]`. `fits` compares `total` with the chip's HBM.
- communication: the collectives of the optimized program (`layouts.compiled.hlo_analysis`), bytes per
  chip per step by kind, loop bodies counted once per trip (per layer); collective-permute is
  `other`. `details["collectives"]` breaks them down by kind, mesh axes and whether they sit in the
  layer loop.
- the compiler's cost analysis, labelled as such in `details["compiler_cost"]` (XLA counts a while
  loop's body once, so its FLOPs and bytes cover one layer of the scan, not all of them; its time
  estimate is reported only where the backend gives a positive one).

A prefill row compiles `prefill` of `batch × input_len` tokens into a cache of exactly `input_len`
(its context_len is input_len: the prompt fills the cache, so the KV bytes are the prompt's). A
decode row compiles one `decode_step` against a cache of `Cell.cache_len("decode")` = context_len +
gen_tokens: the cache a generation allocates, as the estimator counts it.

A program that does not fit the chip's HBM (TPU compiles fail with RESOURCE_EXHAUSTED rather than
produce it; other backends report a total above the chip's memory) is an error row, "does not
fit", that keeps `fits: false`, the argument shards and the compiler's requirement, so it says by
how much it misses; any other compiler failure is an error row with its reason.

Known differences between compile rows and the estimator's (found with palm-8b on v4 2x2x2 and
palm-540b-64h on v4 4x4x4; `cross_check` gives the ratios):
- XLA's TPU pipeline often keeps an all-reduce where the formulas have a reduce-scatter followed by
  an all-gather (1D weight-stationary decode compiles to all-reduces only), and its collective
  matmul (windowed einsum) may split a reduce-scatter or all-gather into collective-permutes,
  reported under `other`. Compare totals, not kinds, for those layouts.
- XLA merges a reduce-scatter with the all-gather that follows it into one all-reduce where the
  op between them is elementwise (2D weight-stationary's FFN hidden over x): the same traffic on
  the links, reported as all-reduce rather than as the formulas' reduce-scatter + all-gather.
- The output head's partial sums stay fp32 (logits are sampled in fp32): twice the bf16 bytes.
"""

import re
import time

import equinox as eqx
import jax
import numpy as np

from layouts.bench.cell import Cell, ResolvedCell
from layouts.cost.terms import check_phase
from layouts.compiled.hlo_analysis import collectives, row_bytes, summarize
from layouts.mesh import make_mesh
from layouts.bench.result_row import COMMUNICATION_KEYS, ResultRow
from layouts.steps import build_steps
from layouts.compiled.targets import get_target
from zoo.errors import ZooError
from zoo.kv_cache import abstract_cache
from zoo.transformer import build_abstract

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def abstract_model(config, weights: str):
    """The model's shapes and dtypes (int8 weights quantized abstractly), allocating nothing."""
    model = build_abstract(config)
    if weights == "int8":
        from zoo.quantization import quantize

        model = eqx.filter_eval_shape(quantize, model)
    return model


def _shard_bytes(tree) -> int:
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


def compile_phase(resolved: ResolvedCell, phase: str, devices) -> tuple:
    """Lowers and compiles one phase's step; returns (compiled or the compiler's exception, mesh,
    abstract arguments, seconds spent compiling). Input errors (ZooError) propagate."""
    cell, config = resolved.cell, resolved.config
    partitioning = resolved.partitionings[phase]
    mesh = make_mesh(resolved.mesh_shapes[phase], devices)
    model = abstract_model(config, cell.weights)
    if phase == "prefill":
        input_len, max_len = cell.input_len, cell.input_len
    else:
        input_len, max_len = 1, cell.cache_len(phase)
    steps = build_steps(model, partitioning, partitioning, mesh, batch=cell.batch, input_len=input_len, max_len=max_len, cache_dtype=cell.kv_dtype)
    program = getattr(steps, phase)
    arguments = program.abstract_arguments(model, abstract_cache(config, cell.batch, max_len, cell.kv_dtype))
    started = time.perf_counter()
    try:
        compiled = program.step.lower(*arguments).compile()
    except ZooError:
        raise
    except Exception as error:  # the compiler's own failure: reported in the row, not raised
        return error, mesh, arguments, time.perf_counter() - started
    return compiled, mesh, arguments, time.perf_counter() - started


def compile_cell(cell: Cell) -> list[ResultRow]:
    """One `compile` row per phase of the cell. Unknown names, indivisible dimensions and bad
    targets raise (ZooError subclasses); a compiler failure is an error row."""
    resolved = cell.resolve()
    for phase in cell.phases:  # every phase's input errors before any phase's minutes of compiling
        check_phase(resolved, phase)
    target = get_target(cell.target, cell.chips)
    devices = target.devices()
    rows = []
    for phase in cell.phases:
        row = resolved.row(phase, "compile", hbm_bytes=target.hbm_bytes())
        compiled, mesh, arguments, seconds = compile_phase(resolved, phase, devices)
        row.compile_time_s = seconds
        model_arguments, _, cache_arguments = arguments
        weights_bytes, kv_bytes = _shard_bytes(model_arguments), _shard_bytes((cache_arguments.k, cache_arguments.v))
        if isinstance(compiled, Exception):
            message = _one_line(compiled)
            if "RESOURCE_EXHAUSTED" in message or "Ran out of memory" in message:
                required = _reported_requirement(message)
                total = max(weights_bytes + kv_bytes, required or 0)
                row.memory_per_chip_bytes = {"weights": weights_bytes, "kv_cache": kv_bytes, "other": total - weights_bytes - kv_bytes, "total": total}
                row.details = {"compiler_error": message, "compiler_required_bytes": required}
                row = row.does_not_fit() if row.hbm_bytes is not None else row.failed(message)
            else:
                row = row.failed(message)
            rows.append(row)
            continue
        row = _fill(row, compiled, mesh, arguments, weights_bytes, kv_bytes)
        rows.append(row.does_not_fit() if row.fits is False else row)
    return rows


def _fill(row: ResultRow, compiled, mesh, arguments, weights_bytes: int, kv_bytes: int) -> ResultRow:
    memory = compiled.memory_analysis()
    compiler_memory = None
    if memory is not None:
        compiler_memory = {
            "arguments": int(memory.argument_size_in_bytes),
            "outputs": int(memory.output_size_in_bytes),
            "aliased": int(memory.alias_size_in_bytes),
            "temporaries": int(memory.temp_size_in_bytes),
            "generated_code": int(memory.generated_code_size_in_bytes),
        }
        total = (
            compiler_memory["arguments"] + compiler_memory["outputs"] - compiler_memory["aliased"]
            + compiler_memory["temporaries"] + compiler_memory["generated_code"]
        )  # fmt: skip
        row.memory_per_chip_bytes = {"weights": weights_bytes, "kv_cache": kv_bytes, "other": total - weights_bytes - kv_bytes, "total": total}
        row.fits = None if row.hbm_bytes is None else total <= row.hbm_bytes
    else:
        row.memory_per_chip_bytes = {"weights": weights_bytes, "kv_cache": kv_bytes, "other": None, "total": None}
    logical, padded = argument_bytes(compiled, arguments)
    if compiler_memory is not None:
        compiler_memory["arguments_logical"] = logical
        compiler_memory["arguments_layout_padding"] = None if padded is None else padded - logical
    found = collectives(compiled, mesh)
    communication = row_bytes(found)
    row.comm_bytes_per_chip = {key: communication.get(key, 0.0) for key in COMMUNICATION_KEYS}
    row.details = {
        "compiler_memory": compiler_memory,
        "compiler_cost": _compiler_cost(compiled),
        "collectives": summarize(found),
    }
    return row


def _compiler_cost(compiled) -> dict | None:
    """XLA's cost analysis (loop bodies counted once; see the module docstring)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # some backends have none
        return None
    if isinstance(cost, list):
        cost = cost[0] if cost else None
    if not cost:
        return None
    seconds = cost.get("optimal_seconds")
    return {
        "source": "XLA cost analysis (while-loop bodies counted once)",
        "flops": cost.get("flops"),
        "bytes_accessed": cost.get("bytes accessed"),
        "optimal_seconds": seconds if seconds is not None and seconds > 0 else None,
    }


def cross_check(compile_row: ResultRow, estimate_row: ResultRow) -> dict[str, float | None]:
    """Compiled ÷ estimated, per chip: weight and KV bytes, and collective bytes per step by kind.
    None where either side has no figure; 1.0 where both are zero."""
    if (compile_row.model, compile_row.phase, compile_row.layout, compile_row.mesh) != (
        estimate_row.model, estimate_row.phase, estimate_row.layout, estimate_row.mesh
    ):  # fmt: skip
        raise ZooError(
            f"cross_check needs rows of the same cell, got {compile_row.model}/{compile_row.phase}/{compile_row.layout}/{compile_row.mesh} "
            f"and {estimate_row.model}/{estimate_row.phase}/{estimate_row.layout}/{estimate_row.mesh}"
        )

    def ratio(compiled, estimated):
        if compiled is None or estimated is None:
            return None
        if estimated == 0:
            return 1.0 if compiled == 0 else float("inf")
        return compiled / estimated

    ratios = {key: ratio(compile_row.memory_per_chip_bytes.get(key), estimate_row.memory_per_chip_bytes.get(key)) for key in ("weights", "kv_cache")}
    for key in COMMUNICATION_KEYS:
        ratios[key] = ratio(compile_row.comm_bytes_per_chip.get(key), estimate_row.comm_bytes_per_chip.get(key))
    return ratios
