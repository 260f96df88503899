"""The paper's layouts (docs/paper-model.md §4) as data.

Notation: a subscript names the mesh axes a dimension is split over (B L E_xyz); "partialsum-x" is a
value still to be summed over x. The paper's F_yz is split with z as the major axis (PartitionSpec
("z", "y")): gathering it over y then leaves each chip one contiguous F_z block, so weight-gathered
XY is a plain all-gather of the 2D weight-stationary shards rather than an all-gather plus a
permutation. Weights of the attention projections follow the FFN's: query heads
H sit where d_ff F sits, so W_q [E, H, Q] is split like W_in [E, F] and W_o like W_out.
"""

from layouts.layout import AttentionLayout, Layout
from zoo.logical_axes import (
    ACTIVATION_HEAD_DIM,
    BATCH,
    EMBED,
    FUSED,
    HEAD_DIM,
    HEADS,
    HIDDEN_HEADS,
    HIDDEN_MLP,
    LAYERS,
    LOGITS_VOCAB,
    MATMUL_EMBED,
    MATMUL_HEADS,
    MATMUL_MLP,
    MLP,
    POSITIONS,
    RESIDUAL_EMBED,
    SEQ,
    VOCAB,
    Role,
)

Axes = tuple[str, ...]
XYZ: Axes = ("x", "y", "z")


def ffn_layout(
    name: str,
    summary: str,
    algorithm: str,
    *,
    stored: tuple[Axes, Axes],
    used: tuple[Axes, Axes],
    batch: Axes,
    residual: Axes,
    matmul_input: Axes,
    hidden: Axes,
    phase="any",
) -> Layout:
    """A layout from the few placements that define it: weights stored as E_a F_b and used as
    E_c F_d; the batch, the residual stream's E, a projection input's E and the hidden F (which
    query heads and the logits' vocabulary share). The output projections take their input where
    the weight in use keeps F (or H)."""
    used_mlp = used[1]
    weight_tables = {
        role: {LAYERS: (), VOCAB: mlp, EMBED: embed, MLP: mlp, HEADS: mlp, HEAD_DIM: (), FUSED: (), POSITIONS: ()}
        for role, (embed, mlp) in ((Role.WEIGHT, stored), (Role.WEIGHT_USE, used))
    }
    del weight_tables[Role.WEIGHT_USE][LAYERS]  # weights are used one layer at a time
    activations = {
        BATCH: batch,
        SEQ: (),
        RESIDUAL_EMBED: residual,
        MATMUL_EMBED: matmul_input,
        HIDDEN_MLP: hidden,
        HIDDEN_HEADS: hidden,
        MATMUL_MLP: used_mlp,
        MATMUL_HEADS: used_mlp,
        ACTIVATION_HEAD_DIM: (),
        LOGITS_VOCAB: hidden,
    }
    return Layout(
        name=name,
        summary=summary,
        algorithm=algorithm,
        rules={**weight_tables, Role.ACTIVATION: activations},
        phase=phase,
    )


ONE_D_WEIGHT_STATIONARY = ffn_layout(
    "1d-ws",
    "1D weight-stationary (Megatron): weights split over d_ff on all chips; communication flat in chip count",
    "W_in E F_xyz, W_out F_xyz E. BLE_xyz -allgather(xyz)-> BLE -einsum-> BLF_xyz -gelu-> "
    "-einsum-> BLE partialsum-xyz -reducescatter(xyz)-> BLE_xyz. T_comm = 2BLE/bw per layer.",
    stored=((), XYZ),
    used=((), XYZ),
    batch=(),
    residual=XYZ,
    matmul_input=(),
    hidden=XYZ,
)

TWO_D_WEIGHT_STATIONARY = ffn_layout(
    "2d-ws",
    "2D weight-stationary: weights split over d_model on x and d_ff on yz; communication falls as 1/√n",
    "W_in E_x F_yz, W_out F_yz E_x. BLE_xyz -allgather(yz)-> BLE_x -einsum-> BLF_yz partialsum-x "
    "-reducescatter(x)-> BLF_yzx -gelu-> -allgather(x)-> BLF_yz -einsum-> BLE_x partialsum-yz "
    "-reducescatter(yz)-> BLE_xyz. T_comm = (2BL/bw)(E/X + F/YZ); optimum X = √(nE/F). "
    "A multiquery K/V head is all-reduced over x after its projection.",
    stored=(("x",), ("z", "y")),
    used=(("x",), ("z", "y")),
    batch=(),
    residual=XYZ,
    matmul_input=("x",),
    hidden=("z", "y", "x"),
)

WEIGHT_GATHERED_X = ffn_layout(
    "wg-x",
    "Weight-gathered over x: weights stored E_x F_yz, all-gathered over x before use; batch split over x",
    "W_in stored E_x F_yz -allgather(x)-> E F_yz. B_xLE_yz -allgather(yz)-> B_xLE -einsum-> B_xLF_yz "
    "-gelu-> -einsum-> B_xLE partialsum-yz -reducescatter(yz)-> B_xLE_yz. "
    "T = 2EFN/(n·bw) + 2BLE/(N·bw), N = X.",
    stored=(("x",), ("z", "y")),
    used=((), ("z", "y")),
    batch=("x",),
    residual=("z", "y"),
    matmul_input=(),
    hidden=("z", "y"),
    phase="prefill",
)

WEIGHT_GATHERED_XY = ffn_layout(
    "wg-xy",
    "Weight-gathered over xy: weights all-gathered over x and y before use; batch split over xy",
    "W_in stored E_x F_yz -allgather(xy)-> E F_z. B_xyLE_z -allgather(z)-> B_xyLE -einsum-> B_xyLF_z "
    "-gelu-> -einsum-> B_xyLE partialsum-z -reducescatter(z)-> B_xyLE_z. N = XY.",
    stored=(("x",), ("z", "y")),
    used=((), ("z",)),
    batch=("x", "y"),
    residual=("z",),
    matmul_input=(),
    hidden=("z",),
    phase="prefill",
)

WEIGHT_GATHERED_XYZ = ffn_layout(
    "wg-xyz",
    "Weight-gathered over xyz: weights fully all-gathered before use; batch split over all chips, no activation traffic",
    "W_in stored E_x F_yz -allgather(xyz)-> E F. B_xyzLE -einsum-> B_xyzLF -gelu-> -einsum-> B_xyzLE. "
    "Only weights move: T = 2EF/bw per layer, flat in batch.",
    stored=(("x",), ("z", "y")),
    used=((), ()),
    batch=XYZ,
    residual=(),
    matmul_input=(),
    hidden=(),
    phase="prefill",
)

FFN_LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (ONE_D_WEIGHT_STATIONARY, TWO_D_WEIGHT_STATIONARY, WEIGHT_GATHERED_X, WEIGHT_GATHERED_XY, WEIGHT_GATHERED_XYZ)
}

ATTENTION_LAYOUTS: dict[str, AttentionLayout] = {
    layout.name: layout
    for layout in (
        AttentionLayout(
            "heads",
            "Attention and KV cache over heads, like d_ff; a multiquery K/V head is replicated on every chip (baseline)",
            batch_axes=(),
            phase="prefill",
        ),
        AttentionLayout(
            "batch",
            "Attention and KV cache over batch on all chips: all-to-all in and out; KV cache per chip is 1/n",
            batch_axes=XYZ,
            phase="decode",
        ),
        AttentionLayout(
            "batch-yz",
            "Attention and KV cache over batch on y and z, heads on x: for batches smaller than the chip count",
            batch_axes=("y", "z"),
            phase="decode",
        ),
        AttentionLayout(
            "batch-z",
            "Attention and KV cache over batch on z only, heads on x and y: for small batches",
            batch_axes=("z",),
            phase="decode",
        ),
    )
}
