"""Who turns a layout's placements into collectives: `explicit` (the layout's own program,
`layouts.explicit`; the default) or `compiler` (sharding constraints, XLA's partitioner chooses)."""

from jax.sharding import Mesh

from layouts.collective_matmul import check_mode
from layouts.errors import LayoutError
from layouts.explicit import ExplicitPlacement
from layouts.layout import Partitioning
from layouts.sharding import CompilerPlacement
from zoo.constraints import Constrain

PARTITIONERS = ("explicit", "compiler")
DEFAULT_PARTITIONER = "explicit"


def check_partitioner(partitioner: str) -> str:
    if partitioner not in PARTITIONERS:
        raise LayoutError(f"unknown partitioner {partitioner!r}; valid: {', '.join(PARTITIONERS)}")
    return partitioner


def check_collective_matmul(collective_matmul: str, partitioner: str) -> str:
    check_mode(collective_matmul)
    if collective_matmul != "none" and partitioner != "explicit":
        raise LayoutError(f"collective matmul {collective_matmul!r} needs the explicit partitioner, not {partitioner!r}")
    return collective_matmul


def placement_hook(partitioning: Partitioning, mesh: Mesh, partitioner: str = DEFAULT_PARTITIONER, collective_matmul: str = "none") -> Constrain:
    """The zoo's layout hook for `partitioning` on `mesh`, run by `partitioner`; the explicit
    partitioner may run its projections' reduce-scatters as collective matmuls."""
    check_collective_matmul(collective_matmul, check_partitioner(partitioner))
    if partitioner == "explicit":
        return ExplicitPlacement(partitioning, mesh, collective_matmul)
    return CompilerPlacement(partitioning, mesh)
