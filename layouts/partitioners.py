"""Who turns a layout's placements into collectives: `explicit` (the layout's own program,
`layouts.explicit`; the default) or `compiler` (sharding constraints, XLA's partitioner chooses)."""

from jax.sharding import Mesh

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


def placement_hook(partitioning: Partitioning, mesh: Mesh, partitioner: str = DEFAULT_PARTITIONER) -> Constrain:
    """The zoo's layout hook for `partitioning` on `mesh`, run by `partitioner`."""
    hook = ExplicitPlacement if check_partitioner(partitioner) == "explicit" else CompilerPlacement
    return hook(partitioning, mesh)
