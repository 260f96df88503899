"""How the projections' matmuls are written for the backend that runs them: as declared (the
product in the compute dtype, as the paper's bf16 partial sums are), or in the form XLA:CPU runs
fast (`zoo.execution`), which only a program on one device uses, where no partial sum is reduced.

Measured on XLA:CPU (jax 0.10.2, 2 AMD EPYC cores with avx512_bf16; `benchmarks/cpu_forms.py`,
medians of 7):
- bf16 × bf16 with a float32 product runs in the CPU's bf16 matmul library: [4096, 1024] ×
  [1024, 8192] in 137 ms. With a bf16 product, XLA converts both operands to float32 first:
  227 ms, as slow as float32 (212 ms). The product is cast to bf16 right after.
- A bf16 matmul of one row (decode at batch 1) takes neither path: XLA converts the whole weight
  to float32 in a slow loop, 8.6 ms for [1024, 8192] against 1.0 ms in float32. Two rows (the
  second all zeros, dropped after) take the library's path again: 1.9 ms.
"""

import dataclasses

import jax
import jax.numpy as jnp

from zoo.constraints import Constrain, Contracted, MatmulInput, Placed


@dataclasses.dataclass(frozen=True)
class MatmulForm:
    float32_product: bool = False  # the product leaves the matmul in float32, then takes the input's dtype
    min_bf16_rows: int = 1  # a bf16 matmul of fewer rows (B·T) is padded with zero rows up to this many


DECLARED = MatmulForm()


def project(
    constrain: Constrain, subscripts: str, x: MatmulInput, x_placed: Placed, w: jax.Array, w_placed: Placed, form: MatmulForm = DECLARED
) -> tuple[Contracted, Placed]:
    """`constrain.contract` of the activation `x` [B, T, ...] and a weight, written as `form` says
    (a form other than DECLARED takes an array: a layout's pending gather is a sharded program's)."""
    if form == DECLARED:
        return constrain.contract(subscripts, x, x_placed, w, w_placed)
    dtype = x.dtype
    rows = x.shape[0] * x.shape[1]
    padding = form.min_bf16_rows - rows if dtype == jnp.bfloat16 else 0
    if padding > 0:
        x = jnp.concatenate([x, jnp.zeros((padding, *x.shape[1:]), dtype)], axis=0)
    options = {"preferred_element_type": jnp.float32} if form.float32_product else {}
    product, placed = constrain.contract(subscripts, x, x_placed, w, w_placed, **options)
    if padding > 0:
        product = product[: x.shape[0] - padding]
    return product.astype(dtype), placed
