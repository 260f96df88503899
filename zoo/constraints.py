"""The activation constraint hook.

Blocks call `constrain(x, role, names)` at the points where the paper's layouts place their
collectives. The zoo itself never knows about meshes: a layout supplies a function that turns the
logical names into a sharding constraint, and without one the hook is the identity, so single-device
code runs exactly the same lines. Entry points take the hook as an explicit argument; there is no
global "current layout" that could be silently missing.
"""

from collections.abc import Callable

from jaxtyping import Array

from zoo.logical_axes import AxisNames, Role


# constrain(x, role, names) -> x placed as the layout maps `names` under `role`.
Constrain = Callable[[Array, Role, AxisNames], Array]


def no_constraint(x: Array, role: Role, names: AxisNames) -> Array:
    """The hook with no layout: leave the array where it is."""
    del role, names
    return x
