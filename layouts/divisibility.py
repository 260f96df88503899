"""The one check that a tensor dimension divides over the mesh axes a layout splits it across, and
the one message that says what to do when it does not (the resolver and the estimator both use it)."""

import math
from collections.abc import Mapping

from layouts.errors import IndivisibleDimensionError


def _hint(name: str | None) -> str:
    if name and "head" in name:
        return "pad the heads (as the paper pads PaLM 540B to 64: palm-540b-64h) or choose another mesh or layout"
    if name and "batch" in name:
        return "use a batch the axes divide, or an attention layout that splits the batch over fewer axes (batch-yz, batch-z, heads)"
    return "choose another mesh shape or layout"


def check_divides(tensor: str, name: str | None, size: int, axes: tuple[str, ...], mesh_sizes: Mapping[str, int], layout_name: str) -> None:
    """Raises IndivisibleDimensionError unless dimension `name` of `size` divides over `axes`."""
    ways = math.prod(mesh_sizes[axis] for axis in axes)
    if size % ways:
        sizes = " x ".join(f"{axis}={mesh_sizes[axis]}" for axis in axes)
        raise IndivisibleDimensionError(
            f"{tensor}: dimension {name!r} of size {size} does not divide over mesh axes {sizes} ({ways} ways) under layout {layout_name!r}; {_hint(name)}"
        )
