"""The logical axis vocabulary: the names the zoo gives to every dimension it may want split.

Models declare these names on their weights, activations and KV cache; layouts map them to mesh
axes. The vocabulary lives with the models (not in `layouts/`) because the models declare the names
and `zoo` must not import `layouts`; `layouts` imports it from here.

Each role has its own names, so one layout can split a weight's E differently from an activation's E
(2D weight-stationary stores W_in as E_x F_yz while the residual stream is B L E_xyz and the matmul
input is B L E_x). Weights used at compute time ("weight-gathered" layouts all-gather them first)
reuse the weight names under the role WEIGHT_USE.
"""

from enum import Enum


class Role(str, Enum):
    WEIGHT = "weight"  # how a weight is stored between steps
    WEIGHT_USE = "weight_use"  # how a weight is laid out when a matmul consumes it
    ACTIVATION = "activation"
    CACHE = "cache"


# Weights. FUSED is the small axis that stacks matrices the paper fuses (K with V; SwiGLU's gate
# with its up projection); it is never split.
LAYERS = "layers"
VOCAB = "vocab"
EMBED = "embed"
MLP = "mlp"
HEADS = "heads"
KV_HEADS = "kv_heads"
HEAD_DIM = "head_dim"
FUSED = "fused"
POSITIONS = "positions"

# Activations, one name per place in the block where the paper's layouts differ.
BATCH = "batch"
SEQ = "seq"
RESIDUAL_EMBED = "residual_embed"  # the residual stream between sub-blocks: B L E_xyz in 2D WS
MATMUL_EMBED = "matmul_embed"  # the normalised input of a projection: B L E_x in 2D WS
HIDDEN_MLP = "hidden_mlp"  # the FFN hidden after the nonlinearity: B L F_xyz in 2D WS
HIDDEN_HEADS = "hidden_heads"  # query heads right after projection, placed like HIDDEN_MLP
# The hidden as the output projection consumes it: F where W_out keeps its F (B L F_yz in 2D WS,
# gathered over x from HIDDEN_MLP's F_yzx); likewise the attention output's heads before W_o.
MATMUL_MLP = "matmul_mlp"
MATMUL_HEADS = "matmul_heads"
HIDDEN_KV_HEADS = "hidden_kv_heads"  # K/V heads right after projection
ATTENTION_BATCH = "attention_batch"  # batch inside attention: B_xyz under batch-sharded attention
ATTENTION_HEADS = "attention_heads"  # query heads inside attention
ATTENTION_KV_HEADS = "attention_kv_heads"
ACTIVATION_HEAD_DIM = "activation_head_dim"  # queries' and K/V's head dimension after projection
# The head dimension inside attention (whole: scores contract it) and as W_o consumes it (as W_o
# splits it): where a layout splits the heads over more chips than there are heads
# (`layouts.fit`), the head dimension takes the other axes after projection.
ATTENTION_HEAD_DIM = "attention_head_dim"
MATMUL_HEAD_DIM = "matmul_head_dim"
LOGITS_VOCAB = "logits_vocab"
# The batch of the output head's input and of the embedding lookup's ids: the batch axes the stored
# embedding table does not split, so both use the table where it is stored and never gather it.
HEAD_BATCH = "head_batch"

# KV cache [N, B, S, K, Q].
CACHE_LAYERS = "cache_layers"
CACHE_BATCH = "cache_batch"
CACHE_SEQ = "cache_seq"
CACHE_KV_HEADS = "cache_kv_heads"
CACHE_HEAD_DIM = "cache_head_dim"

NAMES_BY_ROLE: dict[Role, frozenset[str]] = {
    Role.WEIGHT: frozenset({LAYERS, VOCAB, EMBED, MLP, HEADS, KV_HEADS, HEAD_DIM, FUSED, POSITIONS}),
    Role.WEIGHT_USE: frozenset({VOCAB, EMBED, MLP, HEADS, KV_HEADS, HEAD_DIM, FUSED, POSITIONS}),
    Role.ACTIVATION: frozenset(
        {
            BATCH,
            SEQ,
            RESIDUAL_EMBED,
            MATMUL_EMBED,
            HIDDEN_MLP,
            HIDDEN_HEADS,
            MATMUL_MLP,
            MATMUL_HEADS,
            HIDDEN_KV_HEADS,
            ATTENTION_BATCH,
            ATTENTION_HEADS,
            ATTENTION_KV_HEADS,
            ACTIVATION_HEAD_DIM,
            ATTENTION_HEAD_DIM,
            MATMUL_HEAD_DIM,
            LOGITS_VOCAB,
            HEAD_BATCH,
        }
    ),
    Role.CACHE: frozenset({CACHE_LAYERS, CACHE_BATCH, CACHE_SEQ, CACHE_KV_HEADS, CACHE_HEAD_DIM}),
}

# A dimension declared with no name is replicated on purpose (the size-1 axes of int8 scales).
AxisNames = tuple[str | None, ...]
