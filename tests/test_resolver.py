"""Resolver tests against a fake mesh: no devices, milliseconds."""

import pytest
from jax.sharding import PartitionSpec as P

from layouts import (
    ATTENTION_LAYOUTS,
    FFN_LAYOUTS,
    IndivisibleDimensionError,
    LayoutError,
    Partitioning,
    resolve,
)
from zoo import get_preset
from zoo.logical_axes import (
    ACTIVATION_HEAD_DIM,
    ATTENTION_BATCH,
    ATTENTION_HEADS,
    BATCH,
    CACHE_BATCH,
    CACHE_HEAD_DIM,
    CACHE_KV_HEADS,
    CACHE_LAYERS,
    CACHE_SEQ,
    EMBED,
    FUSED,
    HEAD_DIM,
    HEADS,
    HIDDEN_MLP,
    KV_HEADS,
    LAYERS,
    MATMUL_EMBED,
    MLP,
    RESIDUAL_EMBED,
    SEQ,
    Role,
)

MESH_222 = {"x": 2, "y": 2, "z": 2}
MESH_444 = {"x": 4, "y": 4, "z": 4}
CACHE = (CACHE_LAYERS, CACHE_BATCH, CACHE_SEQ, CACHE_KV_HEADS, CACHE_HEAD_DIM)


def partitioning(ffn: str, attention: str = "heads", model: str = "palm-tiny") -> Partitioning:
    return Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS[attention], get_preset(model))


def test_2d_weight_stationary_specs():
    p = partitioning("2d-ws")
    assert resolve(p, Role.WEIGHT, (LAYERS, EMBED, FUSED, MLP), (2, 128, 2, 512), MESH_222) == P(None, "x", None, ("z", "y"))
    assert resolve(p, Role.ACTIVATION, (BATCH, SEQ, RESIDUAL_EMBED), (8, 4, 128), MESH_222) == P(None, None, ("x", "y", "z"))
    assert resolve(p, Role.ACTIVATION, (BATCH, SEQ, MATMUL_EMBED), (8, 4, 128), MESH_222) == P(None, None, "x")
    # The FFN hidden is reduce-scattered over x into the zy split it already has (z major: see builtin.py).
    assert resolve(p, Role.ACTIVATION, (BATCH, SEQ, HIDDEN_MLP), (8, 4, 512), MESH_222) == P(None, None, ("z", "y", "x"))


def test_1d_weight_stationary_splits_only_d_ff():
    p = partitioning("1d-ws")
    assert resolve(p, Role.WEIGHT, (EMBED, FUSED, MLP), (128, 2, 512), MESH_222) == P(None, None, ("x", "y", "z"))
    assert resolve(p, Role.ACTIVATION, (BATCH, SEQ, MATMUL_EMBED), (8, 4, 128), MESH_222) == P(None, None, None)


def test_weight_gathered_layouts_store_like_2d_and_use_gathered():
    stored = (EMBED, FUSED, MLP)
    for name, used, batch in (("wg-x", P(None, None, ("z", "y")), "x"), ("wg-xy", P(None, None, "z"), ("x", "y")), ("wg-xyz", P(None, None, None), ("x", "y", "z"))):
        p = partitioning(name)
        assert resolve(p, Role.WEIGHT, stored, (128, 2, 512), MESH_222) == P("x", None, ("z", "y")), name
        assert resolve(p, Role.WEIGHT_USE, stored, (128, 2, 512), MESH_222) == used, name
        assert resolve(p, Role.ACTIVATION, (BATCH, SEQ, RESIDUAL_EMBED), (8, 4, 128), MESH_222)[0] == batch, name


def test_multiquery_kv_head_is_replicated_under_heads_and_batch_sharded_under_batch():
    heads = partitioning("2d-ws", "heads")
    assert resolve(heads, Role.WEIGHT, (EMBED, FUSED, KV_HEADS, HEAD_DIM), (128, 2, 1, 16), MESH_222) == P("x", None, None, None)
    assert resolve(heads, Role.CACHE, CACHE, (2, 8, 16, 1, 16), MESH_222) == P(None, None, None, None, None)
    batch = partitioning("2d-ws", "batch")
    assert resolve(batch, Role.CACHE, CACHE, (2, 8, 16, 1, 16), MESH_222) == P(None, ("x", "y", "z"), None, None, None)
    assert resolve(batch, Role.ACTIVATION, (ATTENTION_BATCH, SEQ, ATTENTION_HEADS, ACTIVATION_HEAD_DIM), (8, 1, 8, 16), MESH_222) == P(("x", "y", "z"), None, None, None)


def test_partial_batch_variants_keep_the_other_axes_on_heads():
    p = partitioning("2d-ws", "batch-z")
    assert resolve(p, Role.ACTIVATION, (ATTENTION_BATCH, SEQ, ATTENTION_HEADS, ACTIVATION_HEAD_DIM), (8, 1, 8, 16), MESH_222) == P("z", None, ("y", "x"), None)
    p = partitioning("1d-ws", "batch-yz", model="mtnlg-tiny")
    assert resolve(p, Role.CACHE, CACHE, (2, 8, 16, 8, 16), MESH_222) == P(None, ("y", "z"), None, "x", None)


def test_multihead_kv_heads_split_like_query_heads():
    p = partitioning("2d-ws", "heads", model="mtnlg-tiny")
    assert resolve(p, Role.WEIGHT, (EMBED, FUSED, KV_HEADS, HEAD_DIM), (128, 2, 8, 16), MESH_222) == P("x", None, ("z", "y"), None)
    assert resolve(p, Role.WEIGHT, (EMBED, HEADS, HEAD_DIM), (128, 8, 16), MESH_222) == P("x", ("z", "y"), None)


def test_indivisible_heads_name_tensor_dimension_axes_and_hint():
    # PaLM 540B's 48 heads over 64 chips: the reason the paper pads to 64 heads.
    p = partitioning("2d-ws", "heads", model="palm-540b")
    with pytest.raises(IndivisibleDimensionError) as raised:
        resolve(p, Role.ACTIVATION, (BATCH, SEQ, "hidden_heads", ACTIVATION_HEAD_DIM), (1, 1, 48, 256), MESH_444, tensor="queries")
    message = str(raised.value)
    for part in ("queries", "hidden_heads", "48", "z=4 x y=4 x x=4", "palm-540b-64h"):
        assert part in message


def test_batch_smaller_than_the_batch_axes_is_an_error_with_a_hint():
    p = partitioning("2d-ws", "batch")
    with pytest.raises(IndivisibleDimensionError, match="batch-yz"):
        resolve(p, Role.CACHE, CACHE, (2, 4, 16, 1, 16), MESH_222, tensor="cache.k")


def test_missing_mesh_axis_and_size_one_axes():
    p = partitioning("2d-ws")
    with pytest.raises(LayoutError, match="not in mesh"):
        resolve(p, Role.WEIGHT, (EMBED, MLP), (128, 512), {"x": 2, "y": 2})
    # An axis of size 1 splits nothing and does not appear in the spec.
    assert resolve(p, Role.WEIGHT, (EMBED, MLP), (128, 512), {"x": 1, "y": 2, "z": 4}) == P(None, ("z", "y"))


def test_mesh_axis_used_twice_in_one_tensor_is_an_error():
    p = partitioning("2d-ws")
    with pytest.raises(LayoutError, match="assigned to both"):
        resolve(p, Role.WEIGHT, (MLP, MLP), (512, 512), MESH_222)
