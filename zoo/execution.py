"""How the local backend runs a model. A TPU topology is compiled as the model is declared (bf16
matmuls with bf16 products, the layer stack under `lax.scan`, heads-major attention scores): that
is the paper's program. A backend present here may run a model faster another way; every row it
measures says how (`Execution.describe`), and `zoo compile --target local` compiles that program.

XLA:CPU on one device (jax 0.10.2, 2 AMD EPYC cores with avx512_bf16; the figures are
`benchmarks/cpu_forms.py`'s, the whole model's `benchmarks/run_speed.py`'s):
- Layers unrolled. A scanned layer's weights are copied out of the stack (a dynamic-slice fusion
  into a fresh buffer) before its matmuls read them, so each weight byte is read twice and written
  once per step: ten [1024, 8192] + [8192, 1024] float32 matvecs took 65.9 ms scanned, 24.0 ms
  unrolled over separate arrays. Unrolled, each layer's weights are arrays of their own
  (`unstack_layers`), read in place. Not for int8 weights: unrolled, XLA keeps every layer's
  dequantized weights at once (palm-150m decode at batch 1: 98.5 ms and 283 MiB of temporaries,
  against 65.8 ms and 29 MiB scanned).
- Matmuls with float32 products and no one-row bf16 matmul (`zoo.matmul_form`).
- Query-major attention scores (`zoo.attention.attend`).
Several CPU devices (forced host devices standing in for a pod's chips) run the declared program:
they are there to run the pod's program, whose partial sums a float32 product would double.
"""

import dataclasses

import equinox as eqx

from zoo.matmul_form import DECLARED, MatmulForm
from zoo.transformer import Transformer
from zoo.weights import layer_of_stack


@dataclasses.dataclass(frozen=True)
class Execution:
    unrolled_layers: bool = False
    matmuls: MatmulForm = DECLARED
    query_major_scores: bool = False  # the attention scores' row order

    def describe(self) -> dict:
        """What a result row says about how the program ran."""
        return {
            "layers": "unrolled" if self.unrolled_layers else "scanned",
            "matmul_products": "float32" if self.matmuls.float32_product else "compute dtype",
            "attention_scores": "query-major" if self.query_major_scores else "heads-major",
        }


AS_DECLARED = Execution()
_CPU_MATMULS = MatmulForm(float32_product=True, min_bf16_rows=2)


def execution_for(platform: str, weights: str = "bf16", devices: int = 1) -> Execution:
    """How a backend of `platform` ("cpu", "gpu", "tpu") runs a zoo model whose matmul weights are
    stored as `weights` ("bf16" or "int8") on `devices` devices of its own."""
    if platform != "cpu" or devices > 1:
        return AS_DECLARED
    return Execution(unrolled_layers=weights != "int8", matmuls=_CPU_MATMULS, query_major_scores=True)


def executed(model: Transformer, execution: Execution) -> Transformer:
    """`model` as `execution` runs it: the same arrays, its layers unstacked if they are unrolled.
    Works on real arrays (unstacking copies each layer's slices once) and, under
    `eqx.filter_eval_shape` (`executed_abstract`), on abstract ones."""

    def block_as_executed(block):
        attention = _replaced(block.attention, matmuls=execution.matmuls, query_major_scores=execution.query_major_scores)
        return eqx.tree_at(lambda tree: (tree.attention, tree.mlp), block, (attention, _replaced(block.mlp, matmuls=execution.matmuls)))

    blocks = tuple(map(block_as_executed, model.blocks)) if isinstance(model.blocks, tuple) else block_as_executed(model.blocks)
    model = _replaced(model, blocks=blocks, matmuls=execution.matmuls)
    return unstack_layers(model) if execution.unrolled_layers else model


# Unstacking under jit writes each layer's arrays once, straight from the stack.
executed_jit = eqx.filter_jit(executed)


def executed_abstract(model: Transformer, execution: Execution) -> Transformer:
    """`executed` on an abstract model (ShapeDtypeStruct leaves), allocating nothing."""
    return eqx.filter_eval_shape(executed, model, execution)


def unstack_layers(model: Transformer) -> Transformer:
    """`model` with its stacked blocks split into one Block per layer (a tuple), each weight named
    without the layers axis. A model already unstacked is returned as it is."""
    if isinstance(model.blocks, tuple):
        return model
    layers = tuple(layer_of_stack(model.blocks, index) for index in range(model.config.n_layers))
    return eqx.tree_at(lambda tree: tree.blocks, model, layers)


def _replaced(module: eqx.Module, **changes) -> eqx.Module:
    """A copy of `module` with fields changed, static ones included, its own __init__ not rerun
    (as Equinox rebuilds a module from its fields when it unflattens one)."""
    copy = object.__new__(type(module))
    for field in dataclasses.fields(module):
        object.__setattr__(copy, field.name, changes.get(field.name, getattr(module, field.name)))
    return copy
