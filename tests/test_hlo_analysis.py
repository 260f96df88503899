"""The HLO collective parser: replica-group syntaxes, async pairs, bytes conventions, loop trip
counts; and a real compiled program whose collectives are known by construction."""

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from layouts.compiled.hlo_analysis import KINDS, HloCollective, bytes_by_kind, collectives, collectives_from_text, replica_groups, row_bytes, spanned_axes
from layouts.mesh import make_mesh

MESH = {"x": 2, "y": 2, "z": 2}

# A hand-written optimized module: a loop of 7 trips (known_trip_count) whose body all-gathers over
# x (async pair), reduce-scatters over y and z (mesh syntax with a device order) and all-reduces
# over z (iota syntax); outside the loop, an all-to-all with explicit groups and a permute.
MODULE = """HloModule jit_step, entry_computation_layout={()->f32[]}

%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %sum = f32[] add(%a, %b)
}

%body (param: (s32[], bf16[8,128])) -> (s32[], bf16[8,128]) {
  %param = (s32[], bf16[8,128]{1,0}) parameter(0)
  %i = s32[] get-tuple-element(%param), index=0
  %h = bf16[8,128]{1,0:T(8,128)(2,1)} get-tuple-element(%param), index=1
  %ag-start = (bf16[8,64]{1,0}, bf16[8,128]{1,0}) all-gather-start(%h), channel_id=1, replica_groups=[4,2]<=[2,4]T(1,0), dimensions={1}, use_global_device_ids=true
  %ag-done = bf16[8,128]{1,0} all-gather-done(%ag-start)
  %rs = bf16[8,32]{1,0} reduce-scatter(%ag-done), channel_id=2, replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_1'}, dimensions={1}, to_apply=%add
  %ar = f32[16]{0:T(128)} all-reduce(%rs), channel_id=3, replica_groups=[4,2]<=[8], to_apply=%add
  ROOT %tuple = (s32[], bf16[8,128]) tuple(%i, %h)
}

%cond (param.1: (s32[], bf16[8,128])) -> pred[] {
  %param.1 = (s32[], bf16[8,128]{1,0}) parameter(0)
  %counter = s32[] get-tuple-element(%param.1), index=0
  %bound = s32[] constant(7)
  ROOT %lt = pred[] compare(%counter, %bound), direction=LT
}

ENTRY %main (p: bf16[8,128]) -> bf16[8,128] {
  %p = bf16[8,128]{1,0} parameter(0)
  %zero = s32[] constant(0)
  %init = (s32[], bf16[8,128]) tuple(%zero, %p)
  %loop = (s32[], bf16[8,128]) while(%init), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"7"}}
  %out = bf16[8,128]{1,0} get-tuple-element(%loop), index=1
  %a2a = bf16[8,128]{1,0} all-to-all(%out), channel_id=4, replica_groups={{0,4},{1,5},{2,6},{3,7}}, dimensions={0}
  %cp = bf16[8,128]{1,0} collective-permute(%a2a), channel_id=5, source_target_pairs={{0,1},{1,0},{2,3},{3,2},{4,5},{5,4},{6,7},{7,6}}
  ROOT %copy = bf16[8,128]{1,0} copy(%cp)
}
"""


def test_parses_each_kind_with_bytes_axes_and_trip_counts():
    found = {c.name: c for c in collectives_from_text(MODULE, MESH)}
    assert set(found) == {"ag-start", "rs", "ar", "a2a", "cp"}  # the async pair counts once
    gather = found["ag-start"]
    # [4,2]<=[2,4]T(1,0): groups {0,4},{1,5},...: ids differing by 4 differ in x (mesh 2x2x2, row-major).
    assert (gather.kind, gather.mesh_axes, gather.count, gather.in_loop) == ("all-gather", ("x",), 7, True)
    assert gather.buffer_bytes == 8 * 128 * 2  # the gathered output
    scatter = found["rs"]
    # mesh 2x4 grouped along the 4: ids 0-3 and 4-7, spanning y and z.
    assert (scatter.kind, scatter.mesh_axes, scatter.group_size) == ("reduce-scatter", ("y", "z"), 4)
    assert scatter.buffer_bytes == 8 * 128 * 2  # the input, not the scattered output
    reduce = found["ar"]
    assert (reduce.mesh_axes, reduce.buffer_bytes, reduce.count) == (("z",), 16 * 4, 7)
    assert (found["a2a"].mesh_axes, found["a2a"].count, found["a2a"].in_loop) == (("x",), 1, False)
    assert (found["cp"].kind, found["cp"].mesh_axes) == ("collective-permute", ("z",))
    # Link bytes, the paper's convention: an all-reduce moves twice its buffer.
    assert [found[name].link_bytes for name in ("ag-start", "rs", "ar", "a2a")] == [2048, 2048, 2 * 64, 2048]
    totals = bytes_by_kind(found.values())
    assert totals["all-gather"] == 7 * 2048 and totals["reduce-scatter"] == 7 * 2048 and totals["all-reduce"] == 7 * 2 * 64
    assert bytes_by_kind(found.values(), in_loop=False) == {**dict.fromkeys(KINDS, 0.0), "all-to-all": 2048.0, "collective-permute": 2048.0}
    assert row_bytes(found.values())["other"] == 2048.0


# What TPU programs do: a reduce-scatter run by an "all-reduce-scatter" fusion (an all-reduce and
# a dynamic-slice in its body), one run as an all-reduce whose result is only sliced (here inside
# a fusion that adds the residual), an all-gather written as an all-reduce of a zero-padded
# buffer, and a norm's statistics in the zoo's named scope.
TPU_PATTERNS = """HloModule jit_step, entry_computation_layout={()->f32[]}

%add (a: bf16[], b: bf16[]) -> bf16[] {
  %a = bf16[] parameter(0)
  %b = bf16[] parameter(1)
  ROOT %sum = bf16[] add(%a, %b)
}

%all-reduce-scatter.3 (input.1: bf16[64,512]) -> bf16[16,512] {
  %input.1 = bf16[64,512]{1,0} parameter(0)
  %all-reduce.9 = bf16[64,512]{1,0} all-reduce(%input.1), channel_id=1, replica_groups=[2,4]<=[8], to_apply=%add
  %offset = s32[] constant(16)
  %zero.1 = s32[] constant(0)
  ROOT %dynamic-slice.1 = bf16[16,512]{1,0} dynamic-slice(%all-reduce.9, %offset, %zero.1), dynamic_slice_sizes={16,512}
}

%slice_add (param_0.1: bf16[64,512], param_1.1: bf16[8,512], param_2.1: s32[]) -> bf16[8,512] {
  %param_0.1 = bf16[64,512]{1,0} parameter(0)
  %param_2.1 = s32[] parameter(2)
  %zero.3 = s32[] constant(0)
  %mine = bf16[8,512]{1,0} dynamic-slice(%param_0.1, %param_2.1, %zero.3), dynamic_slice_sizes={8,512}
  %param_1.1 = bf16[8,512]{1,0} parameter(1)
  ROOT %added = bf16[8,512]{1,0} add(%mine, %param_1.1)
}

ENTRY %main (p: bf16[64,512], q: bf16[8,512], s: f32[8,1]) -> bf16[16,512] {
  %p = bf16[64,512]{1,0} parameter(0), metadata={op_name="jit(step)/dot_general"}
  %fusion.1 = bf16[16,512]{1,0} fusion(%p), kind=kCustom, calls=%all-reduce-scatter.3
  %q = bf16[8,512]{1,0} parameter(1)
  %zeros = bf16[] constant(0)
  %padded = bf16[16,512]{1,0} broadcast(%zeros), dimensions={}
  %at = s32[] constant(8)
  %zero.2 = s32[] constant(0)
  %update = bf16[16,512]{1,0} dynamic-update-slice(%padded, %q, %at, %zero.2)
  %gathered = bf16[16,512]{1,0} all-reduce(%update), channel_id=2, replica_groups=[4,2]<=[8], to_apply=%add
  %s = f32[8,1]{1,0} parameter(2)
  %stats = f32[8,1]{1,0} all-reduce(%s), channel_id=3, replica_groups=[4,2]<=[8], to_apply=%add, metadata={op_name="jit(step)/while/body/norm statistics/psum"}
  %whole = bf16[64,512]{1,0} all-reduce(%p), channel_id=4, replica_groups=[1,8]<=[8], to_apply=%add
  %offset.2 = s32[] constant(8)
  %residual = bf16[8,512]{1,0} fusion(%whole, %q, %offset.2), kind=kLoop, calls=%slice_add
  ROOT %out = bf16[16,512]{1,0} add(%fusion.1, %gathered)
}
"""


def test_collectives_are_classified_by_what_they_do_and_where_they_come_from():
    found = {c.name: c for c in collectives_from_text(TPU_PATTERNS, MESH)}
    scatter, gather, stats = found["all-reduce.9"], found["gathered"], found["stats"]
    # The fused all-reduce scatters: a reduce-scatter of its input, counted once.
    assert (scatter.kind, scatter.implemented_as, scatter.buffer_bytes, scatter.link_bytes) == ("reduce-scatter", "all-reduce-scatter fusion", 64 * 512 * 2, 64 * 512 * 2)
    assert scatter.scope == "jit(step)/dot_general"  # no metadata of its own: its operand's
    # The zero-padded all-reduce gathers, but moves what an all-reduce moves.
    assert (gather.kind, gather.implemented_as, gather.buffer_bytes, gather.link_bytes) == ("all-gather", "all-reduce of a zero-padded buffer", 16 * 512 * 2, 2 * 16 * 512 * 2)
    # The sliced all-reduce scatters too, but moves what an all-reduce moves.
    whole = found["whole"]
    assert (whole.kind, whole.implemented_as, whole.link_bytes) == ("reduce-scatter", "all-reduce then dynamic-slice", 2 * 64 * 512 * 2)
    assert (stats.kind, stats.link_bytes, stats.prescribed, scatter.prescribed) == ("all-reduce", 2 * 8 * 4, False, True)
    assert bytes_by_kind(found.values(), prescribed=False) == {**dict.fromkeys(KINDS, 0.0), "all-reduce": 64.0}


def test_trip_count_from_the_condition_when_the_compiler_gives_none():
    text = MODULE.replace(', backend_config={"known_trip_count":{"n":"7"}}', "").replace("constant(7)", "constant(118)")
    assert {c.name: c.count for c in collectives_from_text(text, MESH)}["rs"] == 118


def test_mesh_replica_groups_with_a_device_order():
    attributes = "replica_groups=mesh['axis_0'=4,'axis_1'=2], device_ids=([2,4]T(1,0)) {'axis_0'}, dimensions={0}"
    groups = replica_groups(attributes, 8)
    # devices [[0,4],[1,5],[2,6],[3,7]] on the 4x2 mesh; grouped along axis_0 (size 4).
    assert groups.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert spanned_axes(groups, MESH) == ("y", "z")


def test_a_compiled_scan_all_reduces_once_per_iteration(devices):
    mesh = make_mesh((2, 2, 2), devices)
    weights = jax.ShapeDtypeStruct((5, 16, 16), jnp.float32, sharding=NamedSharding(mesh, PartitionSpec(None, "x", None)))
    inputs = jax.ShapeDtypeStruct((4, 16), jnp.float32, sharding=NamedSharding(mesh, PartitionSpec()))

    def step(w, h):
        # h [4, 16] contracted with a weight split over x, kept replicated: partial sums all-reduced
        # over x, once per iteration.
        layer = lambda h, w: (jax.lax.with_sharding_constraint(jnp.tanh(h @ w), replicated), None)  # noqa: E731
        return jax.lax.scan(layer, h, w)[0]

    replicated = NamedSharding(mesh, PartitionSpec())
    compiled = jax.jit(step, out_shardings=replicated).lower(weights, inputs).compile()
    found = [c for c in collectives(compiled, mesh) if c.in_loop]
    reductions = [c for c in found if c.kind == "all-reduce"]
    assert len(reductions) == 1 and len(found) == 1, found
    assert (reductions[0].mesh_axes, reductions[0].count, reductions[0].in_loop, reductions[0].buffer_bytes) == (("x",), 5, True, 4 * 16 * 4)


def test_unknown_syntax_is_an_error_not_a_silent_zero():
    from layouts.compiled.hlo_analysis import HloParseError

    with pytest.raises(HloParseError):
        replica_groups("replica_groups=mesh['axis_0':(1)2] {'axis_0'}", 8)


def test_only_the_lookup_before_the_layers_and_the_norm_sums_are_listed_apart():
    def collective(kind, scope, in_loop):
        return HloCollective(kind, 8.0, 8.0, ("x",), 1, in_loop, "bf16[4]", "c", 2, kind, scope)

    lookup = "jit(step)/embedding lookup/activation batch/seq/residual_embed/reduce_scatter"
    norm = "jit(step)/while/body/norm statistics/psum"
    assert not collective("reduce-scatter", lookup, in_loop=False).prescribed
    # Inside the layer loop the scope can only be a resharding labelled where the stream began.
    assert collective("all-gather", lookup, in_loop=True).prescribed
    assert not collective("all-reduce", norm, in_loop=True).prescribed
    assert collective("all-gather", norm, in_loop=True).prescribed
