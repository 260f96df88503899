"""A cell of the benchmark matrix: one model × layouts × chips × workload, checked and resolved.

Estimate, compile and run all start from a Cell, so a name or size that is wrong fails here, once,
with one line, before any expensive work.
"""

import dataclasses
from typing import Literal

from layouts.compiled.targets import LOCAL, local_chip, slice_shape, target_chip
from layouts.fit import batch_axes, fit
from layouts.interconnect import place
from layouts.cost.chunking import choose_prefill_chunk
from layouts.errors import MeshError
from layouts.layout import Partitioning
from layouts.mesh import MeshShape, choose_mesh_shape, format_mesh, parse_mesh
from layouts.partitioners import DEFAULT_PARTITIONER, check_collective_matmul, check_partitioner
from layouts.registry import get_partitioning
from layouts.bench.result_row import ResultRow, Source
from layouts.workload import WeightsDType, Workload
from zoo.config import ModelConfig
from zoo.errors import ZooError
from zoo.presets import get_preset

PhaseChoice = Literal["prefill", "decode", "both"]
PHASES = ("prefill", "decode", "both")


@dataclasses.dataclass(frozen=True)
class Cell:
    model: str
    prefill_layout: str = "2d-ws"
    decode_layout: str = "2d-ws"
    prefill_attention: str = "heads"
    # Heads, not batch: a batch-sharded cache needs a batch the mesh divides, and the default batch is 1.
    decode_attention: str = "heads"
    chips: int = 8
    mesh: str | None = None  # "XxYxZ" for both phases; None: each phase's layout chooses
    target: str = "tpu-v4"
    phase: PhaseChoice = "both"
    batch: int = 1
    input_len: int = 2048
    context_len: int | None = None  # tokens in the cache when decoding starts; default input_len
    gen_tokens: int = 64
    weights: WeightsDType = "bf16"
    kv_dtype: str = "bfloat16"
    partitioner: str = DEFAULT_PARTITIONER  # who writes the collectives of compile and run
    collective_matmul: str = "none"  # the explicit partitioner's looped collective einsum
    # Prefill's tokens per sequence a layer takes at a time; None: the largest that fits the target
    # by the estimate (`layouts.cost.chunking`), the whole prompt when it fits.
    prefill_chunk: int | None = None

    def __post_init__(self) -> None:
        check_collective_matmul(self.collective_matmul, check_partitioner(self.partitioner))
        if not isinstance(self.chips, int) or isinstance(self.chips, bool) or self.chips <= 0:
            raise ZooError(f"chips must be a positive integer, got {self.chips!r}")
        self.workload  # checks the sizes, the weight format and the prefill chunk
        if self.phase not in PHASES:
            raise ZooError(f"phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        if self.mesh is not None:
            shape = parse_mesh(self.mesh)
            if shape[0] * shape[1] * shape[2] != self.chips:
                raise MeshError(f"mesh {self.mesh} has {shape[0] * shape[1] * shape[2]} chips but chips={self.chips}")

    @property
    def decode_context(self) -> int:
        return self.context_len if self.context_len is not None else self.input_len

    @property
    def workload(self) -> Workload:
        """The sizes the cost model and the compiled steps are built for."""
        return Workload(self.batch, self.input_len, self.decode_context, self.gen_tokens, self.weights, self.kv_dtype, self.prefill_chunk)

    def cache_len(self, phase: str) -> int:
        """Tokens the KV cache holds in `phase` (see `Workload.cache_len`)."""
        return self.workload.cache_len(phase)

    @property
    def phases(self) -> tuple[str, ...]:
        return ("prefill", "decode") if self.phase == "both" else (self.phase,)

    def resolve(self) -> "ResolvedCell":
        config = get_preset(self.model)
        prefill = get_partitioning(self.prefill_layout, self.prefill_attention, config)
        decode = get_partitioning(self.decode_layout, self.decode_attention, config)
        if self.mesh is not None:
            prefill_mesh = decode_mesh = parse_mesh(self.mesh)
        else:
            prefill_mesh = choose_mesh_shape(self.chips, prefill.ffn, config, tokens=self.workload.pass_tokens("prefill"), batch=self.batch)
            decode_mesh = choose_mesh_shape(self.chips, decode.ffn, config, tokens=self.workload.pass_tokens("decode"), batch=self.batch)
        # The heads and the batch split as far as they divide on the mesh (`layouts.fit`).
        partitionings = {"prefill": fit(prefill, prefill_mesh, self.batch), "decode": fit(decode, decode_mesh, self.batch)}
        return ResolvedCell(self, config, partitionings, {"prefill": prefill_mesh, "decode": decode_mesh})


@dataclasses.dataclass(frozen=True)
class ResolvedCell:
    cell: Cell
    config: ModelConfig
    partitionings: dict[str, Partitioning]
    mesh_shapes: dict[str, MeshShape]

    def workload(self, phase: str) -> Workload:
        """The sizes `phase` is estimated, compiled and run for: the cell's, with prefill's chunk
        chosen for the target when the cell leaves it open (a local target without a chip preset:
        the whole prompt)."""
        workload = self.cell.workload
        if phase != "prefill" or workload.prefill_chunk is not None:
            return workload
        chip = local_chip() if self.cell.target == LOCAL else target_chip(self.cell.target, self.cell.chips)
        if chip is None:
            return dataclasses.replace(workload, prefill_chunk=workload.input_len)
        chunk = choose_prefill_chunk(self.partitionings["prefill"], chip, self.mesh_shapes["prefill"], workload)
        return dataclasses.replace(workload, prefill_chunk=chunk)

    def mesh_name(self, phase: str) -> str:
        return format_mesh(self.mesh_shapes[phase])

    def layout_name(self, phase: str) -> str:
        return self.partitionings[phase].ffn.name

    def attention_name(self, phase: str) -> str:
        return self.partitionings[phase].attention.name

    def row(self, phase: str, source: Source, *, target: str | None = None, hbm_bytes: int | None = None) -> ResultRow:
        """This cell's result row for `phase`, with the keys every source shares filled in."""
        row = base_row(
            self.cell, phase, source, layout=self.layout_name(phase), attention=self.attention_name(phase),
            mesh=self.mesh_name(phase), target=target, hbm_bytes=hbm_bytes,
        )  # fmt: skip
        if phase == "prefill":
            row.prefill_chunk = self.workload(phase).chunk_len
        row.batch_axes = batch_axes(self.partitionings[phase])
        row.physical_axes = self.physical_axes(phase)
        return row

    def physical_axes(self, phase: str) -> str | None:
        """Where the mesh of `phase` lies on the target's slice (None for local devices)."""
        if self.cell.target == LOCAL:
            return None
        chip = target_chip(self.cell.target, self.cell.chips)
        return place(chip, self.mesh_shapes[phase], slice_shape(self.cell.target, self.cell.chips)).describe()


def base_row(cell: Cell, phase: str, source: Source, *, layout: str, attention: str, mesh: str, target: str | None = None, hbm_bytes: int | None = None) -> ResultRow:
    return ResultRow(
        model=cell.model,
        layout=layout,
        attention=attention,
        chips=cell.chips,
        mesh=mesh,
        target=cell.target if target is None else target,
        phase=phase,  # type: ignore[arg-type]
        batch=cell.batch,
        input_len=cell.input_len,
        context_len=cell.input_len if phase == "prefill" else cell.decode_context,
        gen_tokens=cell.gen_tokens,
        weights=cell.weights,
        source=source,
        # The estimate is the explicit partitioner's program by construction: one derivation.
        partitioner=None if source == "estimate" else cell.partitioner,
        collective_matmul=cell.collective_matmul,
        hbm_bytes=hbm_bytes,
        prefill_chunk=cell.prefill_chunk if phase == "prefill" else None,
    )


def error_rows(cell: Cell, source: Source, reason: str) -> list[ResultRow]:
    """The cell's rows for a failure that happened before or instead of its work: the keys stay,
    with the names as given and a one-line reason."""
    return [
        base_row(
            cell, phase, source, layout=getattr(cell, f"{phase}_layout"), attention=getattr(cell, f"{phase}_attention"), mesh=cell.mesh or ""
        ).failed(reason)
        for phase in cell.phases
    ]
