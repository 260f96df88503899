"""Compile rows: a Cell's phases compiled ahead of time for its target (`layouts.compiled.aot`),
one result row (README.md, "Result rows") per phase (source `compile`).

Per chip, a compile row reports:
- memory: `weights` and `kv_cache` are the per-chip shards of the program's arguments (exactly what
  the compiled program takes), `total` is the compiler's own figure (arguments + outputs − aliased
  (the donated cache) + temporaries + generated code), `other` the rest; the raw compiler figures
  are in `details["compiler_memory"]`. `fits` compares `total` with the chip's HBM.
- communication: the collectives of the optimized program (`layouts.compiled.hlo_analysis`),
  classified by what they do, bytes per chip per step by kind in the paper's convention (an
  all-reduce counts twice its buffer, as the estimate counts it), loop bodies counted once per trip
  (per layer); collective-permute is `other`. `details["collectives"]` breaks them down by kind,
  mesh axes, whether they sit in the layer loop and whether the layout prescribes them;
  `details["unprescribed_comm_bytes_per_chip"]` holds the part of the totals that comes from work
  the formulas leave out (the embedding lookup, norm statistics), and
  `details["comm_buffer_bytes_per_chip"]` the raw buffer sizes.
- the compiler's cost analysis, labelled as such in `details["compiler_cost"]`.
- the per-host view (`layouts.compiled.host_view`) in `details["per_host"]`: how many hosts the
  slice has, which mesh axes span hosts, and each host's share of the weights, tokens and cache
  (with `single_host` true where one host drives every chip, so it is the single-process view).

A prefill row's context_len is input_len: the prompt fills the cache, so the KV bytes are the
prompt's. A program that does not fit the chip's HBM (TPU compiles fail with RESOURCE_EXHAUSTED
rather than produce it; other backends report a total above the chip's memory) is an error row,
"does not fit", that keeps `fits: false`, the argument shards and the compiler's requirement, so
it says by how much it misses; any other compiler failure is an error row with its reason.

`cross_check` compares a compile row with the estimate row of the same cell per kind and in total,
the prescribed collectives only on the compiled side, which is what the estimate counts. Under the
explicit partitioner the program runs the estimate's own steps (`layouts.transitions`); under the
compiler partitioner XLA chooses, and the ratios show how far it strays (benchmarks/cross_check.py).
"""

from layouts.bench.cell import Cell
from layouts.bench.result_row import COMMUNICATION_KEYS, ResultRow
from layouts.compiled.aot import CompiledPhase, compile_phase
from layouts.compiled.hlo_analysis import row_buffer_bytes, row_bytes, summarize
from layouts.compiled.host_view import host_view
from layouts.compiled.targets import get_target
from layouts.cost.terms import check_phase
from zoo.errors import ZooError


def compile_cell(cell: Cell) -> list[ResultRow]:
    """One `compile` row per phase of the cell. Unknown names, indivisible dimensions and bad
    targets raise (ZooError subclasses); a compiler failure is an error row."""
    resolved = cell.resolve()
    for phase in cell.phases:  # every phase's input errors before any phase's minutes of compiling
        check_phase(resolved.partitionings[phase], resolved.mesh_shapes[phase], cell.batch, phase)
    target = get_target(cell.target, cell.chips)
    devices = target.devices()
    rows = []
    for phase in cell.phases:
        row = resolved.row(phase, "compile", hbm_bytes=target.hbm_bytes())
        compiled = compile_phase(resolved.partitionings[phase], resolved.mesh_shapes[phase], resolved.workload(phase), phase, devices, cell.partitioner, cell.collective_matmul)
        row.compile_time_s = compiled.seconds  # where it was compiled, also when the cache served it
        row = _failed(row, compiled) if compiled.failure is not None else _fill(row, compiled)
        row = _cache_note(row, compiled)
        row.details["per_host"] = host_view(compiled.mesh, compiled.arguments).as_dict()
        row.details["execution"] = compiled.execution.describe()
        rows.append(row.does_not_fit() if row.status == "ok" and row.fits is False else row)
    return rows


def _failed(row: ResultRow, compiled: CompiledPhase) -> ResultRow:
    if not compiled.out_of_memory or row.hbm_bytes is None:
        return row.failed(compiled.failure_reason)
    weights, kv_cache = compiled.weight_bytes, compiled.kv_bytes
    total = max(weights + kv_cache, compiled.required_bytes or 0)
    row.memory_per_chip_bytes = {"weights": weights, "kv_cache": kv_cache, "other": total - weights - kv_cache, "total": total}
    row.details = {"compiler_error": compiled.failure_reason, "compiler_required_bytes": compiled.required_bytes}
    return row.does_not_fit()


def _fill(row: ResultRow, compiled: CompiledPhase) -> ResultRow:
    weights, kv_cache = compiled.weight_bytes, compiled.kv_bytes
    compiler_memory = compiled.compiler_memory()
    if compiler_memory is not None:
        total = compiler_memory["total"]
        row.memory_per_chip_bytes = {"weights": weights, "kv_cache": kv_cache, "other": total - weights - kv_cache, "total": total}
        row.fits = None if row.hbm_bytes is None else total <= row.hbm_bytes
        logical, padded = compiled.argument_bytes()
        compiler_memory |= {"arguments_logical": logical, "arguments_layout_padding": None if padded is None else padded - logical}
    else:
        row.memory_per_chip_bytes = {"weights": weights, "kv_cache": kv_cache, "other": None, "total": None}
    found = compiled.collectives()
    communication = row_bytes(found)
    row.comm_bytes_per_chip = {key: communication.get(key, 0.0) for key in COMMUNICATION_KEYS}
    row.details = {
        "compiler_memory": compiler_memory,
        "compiler_cost": compiled.compiler_cost(),
        "collectives": summarize(found),
        "unprescribed_comm_bytes_per_chip": row_bytes(found, prescribed=False),
        "comm_buffer_bytes_per_chip": row_buffer_bytes(found),
    }
    return row


def _cache_note(row: ResultRow, compiled: CompiledPhase) -> ResultRow:
    """Say where the program's figures came from (the compile cache: "hit"; a compile here: "miss"
    or "off") and the seconds this process spent on it (the compile time is where it was compiled)."""
    row.details = dict(row.details or {}) | {"compile_cache": compiled.cache, "compile_step_s": compiled.here_s}
    return row


def prescribed_comm_bytes(compile_row: ResultRow) -> dict[str, float | None]:
    """A compile row's link bytes per chip by kind, less those of work the formulas leave out."""
    unprescribed = compile_row.details.get("unprescribed_comm_bytes_per_chip", {})
    return {key: None if value is None else value - unprescribed.get(key, 0.0) for key, value in compile_row.comm_bytes_per_chip.items()}


def cross_check(compile_row: ResultRow, estimate_row: ResultRow) -> dict[str, float | None]:
    """Compiled ÷ estimated, per chip: weight and KV bytes, and collective link bytes per step by
    kind and in total (the compiled side's prescribed collectives: `prescribed_comm_bytes`). None
    where either side has no figure; 1.0 where both are zero."""
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
    compiled = prescribed_comm_bytes(compile_row)
    for key in COMMUNICATION_KEYS:
        ratios[key] = ratio(compiled.get(key), estimate_row.comm_bytes_per_chip.get(key))
    known = [key for key in COMMUNICATION_KEYS if compiled.get(key) is not None and estimate_row.comm_bytes_per_chip.get(key) is not None]
    ratios["total"] = ratio(sum(compiled[key] for key in known), sum(estimate_row.comm_bytes_per_chip[key] for key in known)) if known else None
    return ratios
