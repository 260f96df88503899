"""The feed-forward layer: SwiGLU (PaLM, gate and up projections fused as W_in [E, 2, F]) or GeLU
(Megatron, W_in [E, 1, F])."""

import equinox as eqx
import jax
import jax.numpy as jnp

from zoo.config import ModelConfig
from zoo.constraints import Constrain, Contracted, MatmulInput, Placed, placed
from zoo.logical_axes import BATCH, EMBED, FUSED, HIDDEN_MLP, MATMUL_MLP, MLP, SEQ, Role
from zoo.matmul_form import DECLARED, MatmulForm, project
from zoo.weights import AbstractWeight, init_weight, use_bias, use_weight, used

_HIDDEN_NAMES = (BATCH, SEQ, None, HIDDEN_MLP)  # [B, T, G, F] after the input projection
_ACTIVATED_NAMES = (BATCH, SEQ, HIDDEN_MLP)  # after the nonlinearity, still where the hidden was
_MATMUL_NAMES = (BATCH, SEQ, MATMUL_MLP)  # as the output projection consumes it


class FeedForward(eqx.Module):
    w_in: AbstractWeight  # [E, G, F], G = 2 for SwiGLU (gate, up), 1 for GeLU
    w_out: AbstractWeight  # [F, E]
    b_in: AbstractWeight | None  # [G, F]
    b_out: AbstractWeight | None  # [E]
    config: ModelConfig = eqx.field(static=True)
    matmuls: MatmulForm = eqx.field(static=True)  # how a backend runs them (`zoo.execution`)

    def __init__(self, config: ModelConfig, *, key):
        E, F, dtype = config.d_model, config.d_ff, config.dtype
        G = config.mlp_matrices - 1
        key_in, key_out = jax.random.split(key)
        self.w_in = init_weight(key_in, (E, G, F), (EMBED, FUSED, MLP), dtype, fan_in=E)
        self.w_out = init_weight(key_out, (F, E), (MLP, EMBED), dtype, fan_in=F)
        if config.use_bias:
            self.b_in = init_weight(None, (G, F), (FUSED, MLP), dtype, fan_in=None, zero=True)
            self.b_out = init_weight(None, (E,), (EMBED,), dtype, fan_in=None, zero=True)
        else:
            self.b_in = self.b_out = None
        self.config = config
        self.matmuls = DECLARED

    def __call__(self, x: MatmulInput, x_placed: Placed, constrain: Constrain) -> tuple[Contracted, Placed]:
        """The output projection before any reduction over a split F, and where it is; the block
        adds `b_out` once it is reduced."""
        dtype = x.dtype
        # Partial sums leave the matmul in the compute dtype, so a layout that splits E reduces them
        # in bf16 as the paper's volumes assume; the nonlinearity then runs in fp32.
        # The fused axis stays beside F, where the weight has it: putting it first makes XLA:CPU copy
        # a transposed W_in in every layer on every step.
        hidden, hidden_placed = project(constrain, "BTE,EGF->BTGF", x, x_placed, use_weight(self.w_in, dtype, constrain), used(self.w_in), self.matmuls)
        hidden = constrain(hidden, Role.ACTIVATION, _HIDDEN_NAMES, source=hidden_placed).astype(jnp.float32)
        hidden = hidden + use_bias(self.b_in, jnp.float32, constrain, Role.ACTIVATION, _HIDDEN_NAMES[2:])
        if self.config.mlp == "swiglu":
            activated = jax.nn.silu(hidden[:, :, 0]) * hidden[:, :, 1]
        else:
            activated = jax.nn.gelu(hidden[:, :, 0], approximate=True)
        # Where the nonlinearity leaves it (a no-op for the explicit partitioner; it keeps the
        # compiler from moving the hidden before the nonlinearity), then where W_out needs it.
        at_hidden = placed(Role.ACTIVATION, _ACTIVATED_NAMES)
        activated = constrain(activated.astype(dtype), Role.ACTIVATION, _ACTIVATED_NAMES, source=at_hidden)
        activated = constrain(activated, Role.ACTIVATION, _MATMUL_NAMES, source=at_hidden, into_contraction=True)
        at_matmul = placed(Role.ACTIVATION, _MATMUL_NAMES)
        return project(constrain, "BTF,FE->BTE", activated, at_matmul, use_weight(self.w_out, dtype, constrain), used(self.w_out), self.matmuls)
