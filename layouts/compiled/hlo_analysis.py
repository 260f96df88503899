"""The collectives of an optimized XLA program: what a compiled step really communicates.

`collectives(compiled, mesh)` reads the optimized HLO (`compiled.as_text()`) and returns one
`HloCollective` per collective: its kind, its bytes per chip for one execution, the mesh axes its
replica groups span, how many times it runs per step (the product of the trip counts of the while
loops around it: the layer scan is a while loop, so a collective in its body runs once per layer),
and the named scope it comes from. Asynchronous pairs (`all-gather-start` / `-done`) count once.

The kind is what the instruction does, not its opcode:
- an all-reduce in the body of a TPU "all-reduce-scatter" fusion (the fusion runs a reduce-scatter
  algorithm and returns the chip's slice) is a reduce-scatter of that all-reduce's buffer;
- an all-reduce whose result is only ever dynamically sliced is a reduce-scatter that the compiler
  runs as an all-reduce (XLA on TPU does this for some groups, such as all of a 2×2×2 torus): it
  moves what an all-reduce moves, so its link bytes are an all-reduce's;
- a collective-permute inside the explicit partitioner's collective matmul
  (`layouts.collective_matmul`) is a pass of the reduce-scatter or all-gather that loop runs: it
  counts its share of that collective's bytes;
- an all-reduce of a buffer that is zeros except for one dynamic-update-slice (the compiler's way
  of writing some all-gathers) is an all-gather of that buffer; it still moves what an all-reduce
  moves, so its link bytes are an all-reduce's (`implemented_as` says so).

Bytes per chip come two ways, both logical (elements × dtype bytes; a TPU layout's tiling padding
is not counted):
- `buffer_bytes`: the per-chip output of an all-gather, the input of a reduce-scatter, the buffer of
  the others (input and output are the same size);
- `link_bytes`: the paper's convention (docs/paper-model.md §4), which the estimator and the result
  rows' comm_bytes_per_chip use: the buffer, except that an all-reduce counts twice its buffer (a
  reduce-scatter and an all-gather), and that an all-gather of an earlier all-gather's result (a
  gather run one dimension at a time) counts only what it adds, so the stages count what one gather
  of the whole counts. The (k−1)/k factor is taken as 1 on both sides.

A collective is `prescribed` unless it comes from work the paper's formulas leave out, which the
zoo runs in named scopes of its own (`zoo.constraints.UNPRESCRIBED_SCOPES`): the embedding lookup
(outside the layer loop: inside it, the compiler partitioner's reshardings of the residual stream
can carry the scope where that stream was first placed) and the norm statistics (their
all-reduces). The scope is the instruction's `op_name` metadata, or, where the compiler left none,
that of the fusion around it or of the nearest operand that has one.

Replica groups hold device ids that index the program's device assignment, which for a program
jitted over a `Mesh` is the mesh's devices in row-major order; so id i sits at mesh coordinate
`unravel_index(i, mesh shape)`, and a group spans the mesh axes along which its members differ.
"""

import dataclasses
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from layouts.collective_matmul import GATHER_SCOPE, SCOPE
from layouts.layout import COLLECTIVE_KINDS
from zoo.constraints import EMBEDDING_LOOKUP_SCOPE, NORM_STATISTICS_SCOPE

# HLO spells the cost model's collective kinds with hyphens (its opcodes); collective-permute, which
# the formulas do not have, goes to the result row's "other".
ROW_KEY = {kind.replace("_", "-"): kind for kind in COLLECTIVE_KINDS} | {"collective-permute": "other"}
KINDS = tuple(ROW_KEY)

_DTYPE_BYTES = {
    "pred": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "f8e4m3b11fnuz": 1, "f8e4m3fnuz": 1, "f8e5m2fnuz": 1,
    "s4": 0.5, "u4": 0.5, "bf16": 2, "f16": 2, "s16": 2, "u16": 2,
    "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8, "c64": 8, "c128": 16, "token": 0,
}  # fmt: skip
_ARRAY = re.compile(r"\b([a-z][a-z0-9]*)\[([0-9,]*)\]")
_COMPUTATION_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*\(.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(ROOT\s+)?%?([\w.\-]+)\s*=\s*")
_CALLED = re.compile(r"\b(calls|to_apply|body|condition|true_computation|false_computation|branch_computations)=(\{[^}]*\}|%?[\w.\-]+)")


# The collective matmul's named scopes, and the collective each loop's permutes run.
_LOOPS = {SCOPE: "reduce-scatter", GATHER_SCOPE: "all-gather"}


class HloParseError(ValueError):
    """Optimized HLO this parser does not understand (a new replica-group syntax, say)."""


@dataclasses.dataclass(frozen=True)
class HloCollective:
    kind: str  # one of KINDS: what it does
    buffer_bytes: float  # one execution, per chip (see the module docstring)
    link_bytes: float  # one execution, per chip, in the paper's convention
    mesh_axes: tuple[str, ...]  # the mesh axes its groups span, in mesh order
    count: int  # executions per step (trip counts of the loops around it multiplied)
    in_loop: bool  # inside a while loop (the layer scan): the per-layer hot path
    shape: str  # result shape(s) without layout, e.g. "bf16[8,1,512]"
    name: str  # the instruction's name in the HLO
    group_size: int  # chips per replica group
    implemented_as: str = ""  # the opcode (or fusion) that carries it out
    scope: str = ""  # the op_name it comes from

    @property
    def link_bytes_per_step(self) -> float:
        return self.link_bytes * self.count

    @property
    def prescribed(self) -> bool:
        """Whether the layout's formulas count it (see the module docstring)."""
        scope = f"/{self.scope}/"
        if f"/{EMBEDDING_LOOKUP_SCOPE}/" in scope:
            # The lookup runs once, before the layers; the compiler's partitioner may label a
            # layer's resharding with it (where the residual stream was first placed).
            return self.in_loop
        if f"/{NORM_STATISTICS_SCOPE}/" in scope:
            return self.kind != "all-reduce"  # the statistics are sums; a gather there is the input's
        return True


@dataclasses.dataclass
class _Instruction:
    name: str
    shape: str
    opcode: str
    operands: list[str]
    attributes: str
    arguments: str  # the text between the opcode's parentheses (a constant's value)

    @property
    def op_name(self) -> str:
        match = re.search(r'op_name="([^"]*)"', self.attributes)
        return match.group(1) if match else ""


@dataclasses.dataclass
class _Computation:
    name: str
    is_entry: bool
    instructions: dict[str, _Instruction]
    root: str = ""  # the name of its ROOT instruction


def _matching(text: str, start: int, open_char: str, close_char: str) -> int:
    """Index just past the bracket that closes the one at `start`."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == open_char:
            depth += 1
        elif text[index] == close_char:
            depth -= 1
            if depth == 0:
                return index + 1
    raise HloParseError(f"unbalanced {open_char}{close_char} in: {text[:200]}")


def _parse_instruction(line: str) -> _Instruction | None:
    match = _INSTRUCTION.match(line)
    if not match:
        return None
    name, position = match.group(2), match.end()
    if line[position] == "(":
        end = _matching(line, position, "(", ")")
    else:
        end = line.index(" ", position)
    shape = line[position:end]
    rest = line[end:].lstrip()
    paren = rest.find("(")
    if paren < 0:
        return None
    opcode = rest[:paren]
    close = _matching(rest, paren, "(", ")")
    operands = re.findall(r"%([\w.\-]+)", rest[paren:close])
    return _Instruction(name, shape, opcode, operands, rest[close:], rest[paren + 1 : close - 1])


def parse_module(text: str) -> dict[str, _Computation]:
    computations: dict[str, _Computation] = {}
    current: _Computation | None = None
    for line in text.splitlines():
        if current is None:
            header = _COMPUTATION_HEADER.match(line)
            if header and not line.startswith(" "):
                current = _Computation(header.group(2), bool(header.group(1)), {})
            continue
        if line.startswith("}"):
            computations[current.name] = current
            current = None
            continue
        instruction = _parse_instruction(line)
        if instruction is not None:
            current.instructions[instruction.name] = instruction
            if line.lstrip().startswith("ROOT "):
                current.root = instruction.name
    if not any(computation.is_entry for computation in computations.values()):
        raise HloParseError("no ENTRY computation in the HLO text")
    return computations


def _array_bytes(shape: str) -> float:
    total = 0.0
    for dtype, dims in _ARRAY.findall(shape):
        if dtype not in _DTYPE_BYTES:
            raise HloParseError(f"unknown element type {dtype!r} in shape {shape}")
        total += math.prod(int(size) for size in dims.split(",") if size) * _DTYPE_BYTES[dtype]
    return total


def _logical_shape(shape: str) -> str:
    return ", ".join(f"{dtype}[{dims}]" for dtype, dims in _ARRAY.findall(shape))


def _trip_count(loop: _Instruction, computations: Mapping[str, _Computation]) -> int:
    """The loop's trip count: the compiler's `known_trip_count`, else the bound its condition
    compares the counter with (a scan counts from 0 while counter < bound)."""
    known = re.search(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"', loop.attributes)
    if known:
        return int(known.group(1))
    condition = re.search(r"\bcondition=%?([\w.\-]+)", loop.attributes)
    if not condition or condition.group(1) not in computations:
        raise HloParseError(f"while loop {loop.name} has no condition computation")
    instructions = computations[condition.group(1)].instructions
    for instruction in instructions.values():
        if instruction.opcode != "compare":
            continue
        direction = re.search(r"direction=(\w+)", instruction.attributes)
        for operand in instruction.operands:
            constant = instructions.get(operand)
            if constant is None or constant.opcode != "constant":
                continue
            value = re.fullmatch(r"\s*(-?\d+)\s*", constant.arguments)
            if value and direction and direction.group(1) in ("LT", "GT", "NE"):
                return int(value.group(1))
            if value and direction and direction.group(1) in ("LE", "GE"):
                return int(value.group(1)) + 1
    raise HloParseError(f"cannot find the trip count of while loop {loop.name}")


def _multipliers(computations: Mapping[str, _Computation]) -> tuple[dict[str, int], dict[str, bool]]:
    """Executions per step of every computation reachable from ENTRY, and whether it runs inside a loop."""
    calls: dict[str, list[tuple[str, int, bool]]] = defaultdict(list)  # caller -> (callee, factor, is_loop_body)
    for computation in computations.values():
        for instruction in computation.instructions.values():
            for attribute, value in _CALLED.findall(instruction.attributes):
                names = re.findall(r"%?([\w.\-]+)", value.strip("{}"))
                if attribute == "body":
                    factor, loop = _trip_count(instruction, computations), True
                elif attribute == "condition":
                    continue  # conditions compute no collectives
                else:
                    factor, loop = 1, False
                for name in names:
                    if name in computations:
                        calls[computation.name].append((name, factor, loop))
    entry = next(name for name, computation in computations.items() if computation.is_entry)
    multiplier: dict[str, int] = defaultdict(int)
    in_loop: dict[str, bool] = defaultdict(bool)

    def visit(name: str, times: int, looped: bool) -> None:
        multiplier[name] += times
        in_loop[name] = in_loop[name] or looped
        for callee, factor, loop in calls.get(name, ()):
            visit(callee, times * factor, looped or loop)

    visit(entry, 1, False)
    return dict(multiplier), dict(in_loop)


def _iota_groups(text: str) -> np.ndarray:
    """`[G,S]<=[d0,d1,...]T(p...)`: iota over d, transposed by p, reshaped to G groups of S."""
    match = re.fullmatch(r"\[([\d,]+)\]<=\[([\d,]+)\](?:T\(([\d,]+)\))?", text)
    if not match:
        raise HloParseError(f"unrecognised iota replica groups {text!r}")
    group_shape = [int(size) for size in match.group(1).split(",")]
    dims = [int(size) for size in match.group(2).split(",")]
    ids = np.arange(math.prod(dims)).reshape(dims)
    if match.group(3):
        ids = ids.transpose([int(axis) for axis in match.group(3).split(",")])
    return ids.reshape(group_shape[0], -1)


def _mesh_groups(attributes: str) -> np.ndarray:
    """`mesh['axis_0'=A,'axis_1'=B], device_ids=([..]T(..)) {'axis_1'}`: devices laid on a mesh
    (iota, or the given transposed iota), grouped along the listed axes."""
    match = re.search(r"replica_groups=mesh\[([^\]]*)\](?:,\s*device_ids=\(([^)]*\)?)\))?(?:\s*\{([^}]*)\})?", attributes)
    if not match:
        raise HloParseError(f"unrecognised mesh replica groups in {attributes[:200]!r}")
    axes = re.findall(r"'([^']+)'\s*=\s*(\d+)", match.group(1))
    if not axes or len(axes) != match.group(1).count("="):
        raise HloParseError(f"unrecognised mesh replica groups {match.group(0)!r}")
    names = [name for name, _ in axes]
    sizes = [int(size) for _, size in axes]
    count = math.prod(sizes)
    if match.group(2):
        device_ids = re.fullmatch(r"\[([\d,]+)\](?:T\(([\d,]+)\))?", match.group(2).strip())
        if not device_ids:
            raise HloParseError(f"unrecognised device_ids {match.group(2)!r}")
        ids = np.arange(count).reshape([int(size) for size in device_ids.group(1).split(",")])
        if device_ids.group(2):
            ids = ids.transpose([int(axis) for axis in device_ids.group(2).split(",")])
        ids = ids.reshape(sizes)
    else:
        ids = np.arange(count).reshape(sizes)
    grouped = re.findall(r"'([^']+)'", match.group(3) or "") if match.group(3) is not None else names
    unknown = [name for name in grouped if name not in names]
    if unknown:
        raise HloParseError(f"replica groups name axis {unknown[0]!r} not in {names}")
    order = [axis for axis, name in enumerate(names) if name not in grouped] + [names.index(name) for name in grouped]
    group_size = math.prod(sizes[names.index(name)] for name in grouped)
    return ids.transpose(order).reshape(-1, group_size)


def replica_groups(instruction_attributes: str, device_count: int) -> np.ndarray:
    """The replica groups of a collective as a [groups, size] array of device ids."""
    pairs = re.search(r"source_target_pairs=\{(.*?)\}\}", instruction_attributes)
    if pairs:
        return np.array([[int(a), int(b)] for a, b in re.findall(r"\{(\d+),(\d+)\}", pairs.group(0))])
    if "replica_groups=mesh[" in instruction_attributes:
        return _mesh_groups(instruction_attributes)
    iota = re.search(r"replica_groups=(\[[\d,]+\]<=\[[\d,]+\](?:T\([\d,]+\))?)", instruction_attributes)
    if iota:
        return _iota_groups(iota.group(1))
    explicit = re.search(r"replica_groups=\{((?:\{[\d,]*\},?)*)\}", instruction_attributes)
    if explicit:
        groups = [[int(i) for i in group.split(",") if i] for group in re.findall(r"\{([\d,]*)\}", explicit.group(1))]
        groups = [group for group in groups if group]
        if not groups:
            return np.arange(device_count).reshape(1, -1)
        if len({len(group) for group in groups}) != 1:
            raise HloParseError(f"replica groups of unequal sizes: {groups}")
        return np.array(groups)
    return np.arange(device_count).reshape(1, -1)


def spanned_axes(groups: np.ndarray, mesh_shape: Mapping[str, int]) -> tuple[str, ...]:
    """The mesh axes along which the members of any group differ."""
    names, sizes = list(mesh_shape), [mesh_shape[name] for name in mesh_shape]
    if groups.size == 0 or groups.max() >= math.prod(sizes):
        return ()
    coordinates = np.stack(np.unravel_index(groups, sizes), axis=-1)  # [groups, members, axes]
    varies = (coordinates != coordinates[:, :1]).any(axis=(0, 1))
    return tuple(name for name, differs in zip(names, varies) if differs)


def _kind(opcode: str) -> str | None:
    base = opcode.removesuffix("-start")
    return base if base in KINDS and not opcode.endswith("-done") else None


def _mesh_shape(mesh) -> dict[str, int]:
    if mesh is None:
        return {}
    if isinstance(mesh, Mapping):
        return dict(mesh)
    return dict(zip(mesh.axis_names, mesh.devices.shape))


def _callers(computations: Mapping[str, _Computation]) -> dict[str, tuple[_Instruction, _Computation]]:
    """The instruction (and its computation) that calls each computation through `calls=`."""
    callers = {}
    for computation in computations.values():
        for instruction in computation.instructions.values():
            for attribute, value in _CALLED.findall(instruction.attributes):
                if attribute == "calls":
                    for name in re.findall(r"%?([\w.\-]+)", value.strip("{}")):
                        callers[name] = (instruction, computation)
    return callers


def _nearest_op_name(instruction: _Instruction, computation: _Computation) -> str:
    """The op_name of the instruction or of its nearest operand that has one (a few steps back)."""
    frontier, seen = [instruction], set()
    for _ in range(5):
        named = next((item.op_name for item in frontier if item.op_name), "")
        if named:
            return named
        seen |= {item.name for item in frontier}
        frontier = [computation.instructions[name] for item in frontier for name in item.operands if name in computation.instructions and name not in seen]
    return ""


def _scope(instruction: _Instruction, computation: _Computation, callers) -> str:
    """The op_name an instruction comes from: its own or its nearest operand's, else (in a
    fusion's body) its fusion's, or that of the fusion's nearest operand."""
    named = _nearest_op_name(instruction, computation)
    if not named and computation.name in callers:
        named = _nearest_op_name(*callers[computation.name])
    return named


_PASS_THROUGH = ("bitcast", "copy", "reshape", "transpose")  # the same values, laid out again


def _gathered_operand(instruction: _Instruction, computation: _Computation, computations: Mapping[str, _Computation]) -> _Instruction | None:
    """The all-gather (or its `-done`) whose result `instruction` gathers further, if any, looking
    through relayouts (alone, or fused as a fusion of nothing else)."""
    name = instruction.operands[0] if instruction.operands else None
    while name in computation.instructions:
        found = computation.instructions[name]
        if found.opcode in ("all-gather", "all-gather-done"):
            return found
        body = _fused_body(found, computations) if found.opcode == "fusion" else None
        relayout = found.opcode in _PASS_THROUGH or (
            body is not None and all(each.opcode in (*_PASS_THROUGH, "parameter") for each in body.instructions.values())
        )
        if not relayout or not found.operands:
            return None
        name = found.operands[0]
    return None


def _fused_body(instruction: _Instruction, computations: Mapping[str, _Computation]) -> _Computation | None:
    """The computation a fusion instruction calls, or None for anything else."""
    called = re.search(r"\bcalls=%?([\w.\-]+)", instruction.attributes) if instruction.opcode == "fusion" else None
    return computations.get(called.group(1)) if called else None


def _only_sliced(instruction: _Instruction, computation: _Computation, computations: Mapping[str, _Computation], group_size: int) -> bool:
    """Whether every use of the all-reduce's result is a dynamic-slice of it (possibly inside a
    fusion) that keeps one part in `group_size`, the chip's share: a reduce-scatter the compiler
    runs as an all-reduce. (A finer slice is an all-reduce followed by some other split.)"""
    users = [item for item in computation.instructions.values() if instruction.name in item.operands]
    if not users or group_size < 2:
        return False
    whole = _array_bytes(instruction.shape)
    for user in users:
        if user.opcode == "dynamic-slice" and user.operands[0] == instruction.name:
            if _array_bytes(user.shape) * group_size != whole:
                return False
            continue
        body = _fused_body(user, computations)
        if body is None:
            return False
        indices = [index for index, name in enumerate(user.operands) if name == instruction.name]
        parameters = [item.name for item in body.instructions.values() if item.opcode == "parameter" and item.arguments.strip() in {str(i) for i in indices}]
        inner = [item for item in body.instructions.values() if any(name in item.operands for name in parameters)]
        if not inner or any(item.opcode != "dynamic-slice" or item.operands[0] not in parameters for item in inner):
            return False
        if any(_array_bytes(item.shape) * group_size != whole for item in inner):
            return False
    return True


def _zero_padded(instruction: _Instruction, computation: _Computation, computations: Mapping[str, _Computation]) -> bool:
    """Whether the all-reduce's operand is zeros but for one dynamic-update-slice (possibly fused)."""
    if len(instruction.operands) != 1 or instruction.operands[0] not in computation.instructions:
        return False
    operand = computation.instructions[instruction.operands[0]]
    if operand.opcode == "fusion":
        body = _fused_body(operand, computations)
        if body is None:
            return False
        root = body.instructions.get(body.root)
        return root is not None and _is_zero_update(root, body)
    return _is_zero_update(operand, computation)


def _is_zero_update(instruction: _Instruction, computation: _Computation) -> bool:
    if instruction.opcode != "dynamic-update-slice" or not instruction.operands:
        return False
    base = computation.instructions.get(instruction.operands[0])
    while base is not None and base.opcode in ("broadcast", "bitcast", "copy") and base.operands:
        base = computation.instructions.get(base.operands[0])
    return base is not None and base.opcode == "constant" and re.fullmatch(r"\s*-?0(\.0*)?\s*", base.arguments or "") is not None


def collectives_from_text(text: str, mesh=None) -> list[HloCollective]:
    """The collectives of optimized HLO text; `mesh` (a Mesh or {axis: size} in mesh order) maps
    replica groups to mesh axes (without one, `mesh_axes` is empty)."""
    computations = parse_module(text)
    multiplier, looped = _multipliers(computations)
    callers = _callers(computations)
    mesh_shape = _mesh_shape(mesh)
    device_count = math.prod(mesh_shape.values()) if mesh_shape else 1
    found = []
    for computation in computations.values():
        times = multiplier.get(computation.name, 0)
        if times == 0:
            continue
        done_shapes = {
            instruction.operands[0]: instruction.shape
            for instruction in computation.instructions.values()
            if instruction.opcode.endswith("-done") and instruction.operands
        }
        for instruction in computation.instructions.values():
            kind = _kind(instruction.opcode)
            if kind is None:
                continue
            implemented_as = instruction.opcode.removesuffix("-start")
            shape = done_shapes.get(instruction.name, instruction.shape) if instruction.opcode.endswith("-start") else instruction.shape
            groups = replica_groups(instruction.attributes, device_count)
            if kind == "collective-permute":
                group_size = 2
                pairs = [(a, b) for a, b in groups if a != b]
                axes = spanned_axes(np.array(pairs), mesh_shape) if pairs and mesh_shape else ()
            else:
                group_size = groups.shape[1]
                axes = spanned_axes(groups, mesh_shape) if mesh_shape else ()
            if kind == "reduce-scatter":
                operand_shapes = [computation.instructions[name].shape for name in instruction.operands if name in computation.instructions]
                size = sum(_array_bytes(s) for s in operand_shapes) if operand_shapes else _array_bytes(shape) * group_size
            else:
                size = _array_bytes(shape)
            link = 2 * size if kind == "all-reduce" else size
            if kind == "all-gather" and (earlier := _gathered_operand(instruction, computation, computations)) is not None:
                # A later stage of one gather run a dimension at a time (`layouts.collective_moves`):
                # it brings in what it adds to the earlier stage's result, so the stages together
                # count what one gather of the whole would.
                link = size - _array_bytes(earlier.shape)
            if kind == "all-reduce" and computation.name.startswith("all-reduce-scatter"):
                kind, link, implemented_as = "reduce-scatter", size, "all-reduce-scatter fusion"
            elif kind == "all-reduce" and _only_sliced(instruction, computation, computations, group_size):
                kind, implemented_as = "reduce-scatter", "all-reduce then dynamic-slice"
            elif kind == "all-reduce" and _zero_padded(instruction, computation, computations):
                kind, implemented_as = "all-gather", "all-reduce of a zero-padded buffer"
            scope = _scope(instruction, computation, callers)
            loop_runs = next((ran for loop, ran in _LOOPS.items() if f"/{loop}/" in f"/{scope}/"), None)
            if kind == "collective-permute" and loop_runs is not None and axes:
                # One pass of a collective matmul's ring: its share of the reduce-scatter or
                # all-gather it runs (n − 1 passes of one block each make one of n blocks).
                members = math.prod(mesh_shape[axis] for axis in axes)
                kind, implemented_as = loop_runs, "collective matmul permutes"
                size = link = size * members / (members - 1)
            found.append(
                HloCollective(
                    kind, size, link, axes, times, looped.get(computation.name, False), _logical_shape(shape), instruction.name, group_size,
                    implemented_as, scope,
                )  # fmt: skip
            )
    return found


def collectives(compiled, mesh=None) -> list[HloCollective]:
    """The collectives of a compiled program (`jax.stages.Compiled`) over `mesh`."""
    return collectives_from_text(compiled.as_text(), mesh)


def bytes_by_kind(found: Iterable[HloCollective], in_loop: bool | None = None, prescribed: bool | None = None) -> dict[str, float]:
    """Link bytes per chip per step by kind (every kind present, zero where none); `in_loop` True
    keeps only the layer loop's (the hot path), False only the rest; `prescribed` likewise."""
    totals = dict.fromkeys(KINDS, 0.0)
    for collective in found:
        if (in_loop is None or collective.in_loop == in_loop) and (prescribed is None or collective.prescribed == prescribed):
            totals[collective.kind] += collective.link_bytes_per_step
    return totals


def row_bytes(found: Iterable[HloCollective], prescribed: bool | None = None) -> dict[str, float]:
    """bytes_by_kind under the result row's comm_bytes_per_chip keys."""
    return {ROW_KEY[kind]: value for kind, value in bytes_by_kind(found, prescribed=prescribed).items()}


def row_buffer_bytes(found: Iterable[HloCollective]) -> dict[str, float]:
    """Buffer bytes per chip per step by the result row's keys (each collective's own size)."""
    totals = dict.fromkeys(ROW_KEY.values(), 0.0)
    for collective in found:
        totals[ROW_KEY[collective.kind]] += collective.buffer_bytes * collective.count
    return totals


def summarize(found: Iterable[HloCollective]) -> list[dict]:
    """One entry per (kind, mesh axes, in loop, prescribed, implemented as): executions, link and
    buffer bytes per step, and the scopes they come from; for result rows."""
    groups: dict[tuple, dict] = {}
    for collective in found:
        key = (collective.kind, collective.mesh_axes, collective.in_loop, collective.prescribed, collective.implemented_as)
        entry = groups.setdefault(
            key,
            {
                "kind": collective.kind,
                "mesh_axes": "".join(collective.mesh_axes),
                "in_loop": collective.in_loop,
                "prescribed": collective.prescribed,
                "implemented_as": collective.implemented_as,
                "per_step": 0,
                "link_bytes_per_step": 0.0,
                "buffer_bytes_per_step": 0.0,
                "scopes": [],
            },
        )
        entry["per_step"] += collective.count
        entry["link_bytes_per_step"] += collective.link_bytes_per_step
        entry["buffer_bytes_per_step"] += collective.buffer_bytes * collective.count
        scope = _short_scope(collective.scope)
        if scope and scope not in entry["scopes"]:
            entry["scopes"].append(scope)
    return sorted(groups.values(), key=lambda entry: (entry["kind"], not entry["in_loop"], entry["mesh_axes"], entry["implemented_as"]))


def _short_scope(op_name: str) -> str:
    """An op_name without its jit/shard_map/loop prefix: the zoo's scopes and the op."""
    parts = [part for part in op_name.split("/") if part and not part.startswith(("jit(", "shard_map", "while", "body", "closed_call", "checkpoint"))]
    return "/".join(parts[-3:])
