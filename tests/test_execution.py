"""How the CPU runs a model on one device (`zoo.execution`): the same model, the same numbers within
bf16 rounding, and a program whose matmuls read every weight where it lies."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from layouts.bench.cell import Cell
from layouts.bench.run_rows import run_cell
from layouts.sharding import weight_placements
from layouts.registry import get_partitioning
from zoo import Transformer, decode_step, forward, get_preset, init_cache, prefill
from zoo.execution import AS_DECLARED, Execution, executed, executed_abstract, execution_for, unstack_layers
from zoo.logical_axes import LAYERS
from zoo.matmul_form import MatmulForm, project
from zoo.constraints import no_constraint, placed
from zoo.logical_axes import Role
from zoo.quantization import quantize
from zoo.weights import is_weight

CPU = execution_for("cpu")


def test_the_cpu_runs_one_device_its_own_way_and_several_as_declared():
    assert CPU == Execution(unrolled_layers=True, matmuls=MatmulForm(float32_product=True, min_bf16_rows=2), query_major_scores=True)
    assert execution_for("cpu", "int8").unrolled_layers is False  # one layer's dequantized weights at a time
    assert execution_for("cpu", devices=8) == AS_DECLARED  # forced host devices run the pod's program
    assert execution_for("gpu") == AS_DECLARED and execution_for("tpu") == AS_DECLARED
    assert CPU.describe() == {"layers": "unrolled", "matmul_products": "float32", "attention_scores": "query-major"}


def test_unstacked_layers_are_the_stacks_slices_named_without_the_layers_axis():
    model = Transformer(get_preset("palm-tiny"), key=jax.random.key(0))
    layers = unstack_layers(model).blocks
    assert isinstance(layers, tuple) and len(layers) == model.config.n_layers
    stacked = jax.tree.leaves(model.blocks, is_leaf=is_weight)
    for index, layer in enumerate(layers):
        for whole, part in zip(stacked, jax.tree.leaves(layer, is_leaf=is_weight)):
            assert whole.names == (LAYERS, *part.names)
            np.testing.assert_array_equal(np.asarray(whole.value[index], np.float32), np.asarray(part.value, np.float32))
    # A layout places them as it places the stack's: the same per-chip bytes in all.
    partitioning = get_partitioning("2d-ws", "heads", model.config)
    mesh = {"x": 2, "y": 2, "z": 2}
    per_chip = lambda tree: sum(p.per_chip_bytes for p in weight_placements(tree, partitioning, mesh))  # noqa: E731
    assert per_chip(executed_abstract(model, CPU)) == per_chip(model)


@pytest.mark.parametrize("dtype,weights", [("bfloat16", "bf16"), ("float32", "bf16"), ("bfloat16", "int8")])
def test_the_cpus_program_computes_what_the_declared_one_does(dtype, weights):
    """Prefill then decode, one token per sequence at batch 1 (the padded one-row matmuls) and 3.
    float32 products only round less than bf16 ones: the logits agree to bf16's precision."""
    model = Transformer(get_preset("palm-tiny").replace(dtype=dtype), key=jax.random.key(0))
    model = quantize(model) if weights == "int8" else model
    execution = execution_for("cpu", weights)
    tolerance = 2e-5 if dtype == "float32" else 0.05
    for batch in (1, 3):
        tokens = jax.random.randint(jax.random.key(batch), (batch, 10), 0, 256, dtype=jnp.int32)
        got = []
        for each in (model, executed(model, execution)):
            cache = init_cache(each.config, batch, 12)
            logits, cache = jax.jit(prefill)(each, tokens[:, :8], cache)
            steps = [logits]
            for position in (8, 9):
                logits, cache = jax.jit(decode_step)(each, tokens[:, position], cache)
                steps.append(logits)
            got.append(np.stack(steps))
        assert np.abs(got[0]).max() > 0.1
        np.testing.assert_allclose(got[1], got[0], atol=tolerance * np.abs(got[0]).max())
    np.testing.assert_allclose(forward(executed(model, execution), tokens), forward(model, tokens), atol=tolerance * np.abs(got[0]).max())


def _optimized_decode(model) -> str:
    cache = init_cache(model.config, 1, 16)
    return jax.jit(decode_step).lower(model, jnp.zeros((1,), jnp.int32), cache).compile().as_text()


def test_the_cpus_decode_reads_each_weight_in_place_and_never_converts_one():
    """In the optimized HLO of a decode step at batch 1: the declared program loops over the layer
    stack, copying each layer's weights out of it and, its bf16 matmuls having one row, converting
    them to an f32 buffer of the weight's size before the matmul; the CPU's has no loop and no
    such buffer."""
    config = get_preset("palm-tiny")
    model = Transformer(config, key=jax.random.key(0))
    layer = jax.tree.leaves(executed(model, CPU).blocks[0], is_leaf=is_weight)
    shapes = {(math.prod(w.shape[:-1]), w.shape[-1]) for w in layer if len(w.shape) > 1} | {
        (w.shape[0], math.prod(w.shape[1:])) for w in layer if len(w.shape) > 1
    }  # fmt: skip
    weight_sized = re.compile(r"= f32\[(" + "|".join(f"{rows},{columns}" for rows, columns in shapes) + r")\]\S* (fusion|convert)\(")
    declared, cpu = _optimized_decode(model), _optimized_decode(executed(model, CPU))
    assert " while(" in declared and len(weight_sized.findall(declared)) >= 5  # one per projection weight
    assert " while(" not in cpu and weight_sized.findall(cpu) == []


def test_a_one_row_bf16_matmul_is_padded_and_gives_the_unpadded_product():
    x = jax.random.normal(jax.random.key(0), (1, 1, 16), jnp.bfloat16)
    w = jax.random.normal(jax.random.key(1), (16, 8), jnp.bfloat16)
    at = placed(Role.ACTIVATION, (None, None, None))
    form = MatmulForm(float32_product=True, min_bf16_rows=2)
    product, _ = project(no_constraint, "BTE,EF->BTF", x, at, w, at, form)
    assert product.shape == (1, 1, 8) and product.dtype == jnp.bfloat16
    exact = jnp.einsum("BTE,EF->BTF", x, w, preferred_element_type=jnp.float32)
    np.testing.assert_allclose(np.asarray(product, np.float32), np.asarray(exact.astype(jnp.bfloat16), np.float32))
    text = jax.jit(lambda x, w: project(no_constraint, "BTE,EF->BTF", x, at, w, at, form)[0]).lower(x, w).as_text()
    assert re.search(r"dot_general.*tensor<2x1x16xbf16>", text), "the matmul takes two rows"


def test_a_run_on_one_cpu_device_says_how_it_ran():
    cell = Cell("palm-tiny", target="local", chips=1, phase="decode", batch=1, input_len=8, gen_tokens=1)
    (row,) = run_cell(cell, repeats=1, warmup=0)
    assert row.status == "ok", row.error
    assert row.details["execution"] == CPU.describe()
    assert row.memory_per_chip_bytes["weights"] == get_preset("palm-tiny").param_count * 2  # held as stored, in bf16
