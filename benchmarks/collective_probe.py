"""How XLA on TPU implements a lone reduce-scatter or all-gather over each group of mesh axes: one
`psum_scatter` / `all_gather` in a `shard_map`, compiled for a TPU v4 topology with libtpu (no TPU
needed), its HLO classified by `layouts.compiled.hlo_analysis` (`implemented_as`).

    JAX_PLATFORMS=cpu python benchmarks/collective_probe.py
    JAX_PLATFORMS=cpu LIBTPU_INIT_ARGS=--xla_tpu_enable_3d_reduce_scatter_decomposer=true python benchmarks/collective_probe.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from layouts.compiled.hlo_analysis import collectives
from layouts.compiled.targets import get_target

GROUPS = (("x",), ("y", "z"), ("x", "y", "z"))
COLUMNS = (4096, 262144)  # per chip before scattering: 64 rows of this many bf16


def _implemented(mesh: Mesh, axes, columns: int, gather: bool) -> str:
    def body(block):
        if gather:
            return jax.lax.all_gather(block, axes, axis=1, tiled=True)
        return jax.lax.psum_scatter(block, axes, scatter_dimension=1, tiled=True)

    spec_in, spec_out = (PartitionSpec(None, axes), PartitionSpec()) if gather else (PartitionSpec(), PartitionSpec(None, axes))
    step = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=spec_in, out_specs=spec_out, check_vma=False))
    argument = jax.ShapeDtypeStruct((64, columns), jnp.bfloat16, sharding=NamedSharding(mesh, spec_in))
    return ", ".join(sorted({found.implemented_as for found in collectives(step.lower(argument).compile(), mesh)}))


def main() -> None:
    print(f"{'mesh':6} {'axes':6} {'columns':>8}  {'reduce-scatter runs as':32} all-gather runs as")
    for chips, shape in ((8, (2, 2, 2)), (64, (4, 4, 4))):
        mesh = Mesh(np.array(get_target("tpu-v4", chips).devices()).reshape(shape), ("x", "y", "z"))
        for axes in GROUPS:
            for columns in COLUMNS:
                scatter, gather = _implemented(mesh, axes, columns, False), _implemented(mesh, axes, columns, True)
                print(f"{'x'.join(map(str, shape)):6} {''.join(axes):6} {columns:8}  {scatter:32} {gather}")


if __name__ == "__main__":
    main()
