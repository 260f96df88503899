"""Weights that carry their logical axis names.

Every array of a zoo model lives in a `Weight` (or its int8 form), so the names a layout maps to
mesh axes are declared where the weight is, and a test can check that no array leaf lacks them.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int8

from zoo.constraints import Constrain, Placed, placed
from zoo.logical_axes import LAYERS, AxisNames, Role


class AbstractWeight(eqx.Module):
    """A weight as a model consumes it: `materialize(dtype)` gives the dense array."""

    names: eqx.AbstractVar[AxisNames]

    @abc.abstractmethod
    def materialize(self, dtype) -> Array: ...

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, ...]: ...


class Weight(AbstractWeight):
    value: Float[Array, "..."]
    names: AxisNames = eqx.field(static=True)

    def __check_init__(self):
        if len(self.names) != len(self.value.shape):
            raise ValueError(f"weight of shape {self.value.shape} declared with names {self.names}")

    def materialize(self, dtype) -> Array:
        return self.value.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)


class Int8Weight(AbstractWeight):
    """Per-output-channel symmetric int8 (docs/paper-model.md §4, paper §3.6): value ≈ quantized · scale.

    `scale` has the weight's rank with size 1 on the contracted (input) dimensions, whose names are
    None there: a scale is split over the mesh exactly like its weight's output channels.
    """

    quantized: Int8[Array, "..."]
    scale: Float[Array, "..."]
    names: AxisNames = eqx.field(static=True)
    scale_names: AxisNames = eqx.field(static=True)

    def materialize(self, dtype) -> Array:
        # Matmuls stay in the compute dtype: int8 saves memory and bandwidth, not arithmetic.
        return self.quantized.astype(dtype) * self.scale.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.quantized.shape)


class UsedWeight(AbstractWeight):
    """A weight already as matmuls consume it (`use_weight`'s result: gathered, dequantized, in the
    compute dtype). A loop that runs a layer several times over (chunked prefill) makes these once,
    before it, so a weight-gathered layout gathers each weight once per layer, not once per pass."""

    value: Float[Array, "..."]
    names: AxisNames = eqx.field(static=True)

    def materialize(self, dtype) -> Array:
        return self.value.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)


def use_weight(weight: AbstractWeight, dtype, constrain: Constrain, role: Role = Role.WEIGHT_USE) -> Array:
    """A weight as a matmul consumes it: in the compute dtype, laid out as the layout wants it used
    (weight-gathered layouts all-gather here; an int8 weight is gathered as int8 and its scales,
    then dequantized, so the links carry one byte per element). `role` WEIGHT: where it is stored."""
    if isinstance(weight, UsedWeight):
        if role is not Role.WEIGHT_USE:
            raise ValueError(f"a weight already placed for use cannot be used as {role.value}")
        return weight.value.astype(dtype)
    if isinstance(weight, Int8Weight):
        quantized = constrain(weight.quantized, role, weight.names, source=placed(Role.WEIGHT, weight.names))
        scale = constrain(weight.scale, role, weight.scale_names, source=placed(Role.WEIGHT, weight.scale_names))
        return quantized.astype(dtype) * scale.astype(dtype)
    return constrain(weight.materialize(dtype), role, weight.names, source=placed(Role.WEIGHT, weight.names))


def used(weight: AbstractWeight, role: Role = Role.WEIGHT_USE) -> Placed:
    """Where `use_weight` puts the weight."""
    return placed(role, weight.names)


def with_weights_used(tree, where, dtype, constrain: Constrain):
    """`tree` with the weights `where(tree)` selects replaced by `UsedWeight`s: each used once, here."""
    chosen = where(tree)
    return eqx.tree_at(where, tree, [UsedWeight(use_weight(weight, dtype, constrain), weight.names) for weight in chosen])


def use_bias(bias: AbstractWeight | None, dtype, constrain: Constrain, role: Role, names: AxisNames) -> Array | float:
    """A bias in the compute dtype, placed like the activation (`names` under `role`) it is added to."""
    if bias is None:
        return 0.0
    return constrain(bias.materialize(dtype), role, names, source=placed(Role.WEIGHT, bias.names))


def is_weight(node) -> bool:
    return isinstance(node, AbstractWeight)


def init_weight(key, shape: tuple[int, ...], names: AxisNames, dtype, *, fan_in: int | None, zero: bool = False) -> Weight:
    """A weight drawn from N(0, 1/fan_in) (or ones / zeros for norms and biases)."""
    if zero:
        value = jnp.zeros(shape, dtype)
    elif fan_in is None:
        value = jnp.ones(shape, dtype)
    else:
        value = (jax.random.normal(key, shape, jnp.float32) / jnp.sqrt(jnp.float32(fan_in))).astype(dtype)
    return Weight(value, names)


def prepend_layers_axis(tree):
    """Names the leading axis of every weight of a layer stack built with `eqx.filter_vmap`."""

    def rename(node):
        if isinstance(node, Weight):
            return Weight(node.value, (LAYERS, *node.names))
        if isinstance(node, Int8Weight):
            return Int8Weight(node.quantized, node.scale, (LAYERS, *node.names), (LAYERS, *node.scale_names))
        return node

    return jax.tree.map(rename, tree, is_leaf=is_weight)


def strip_layers_axis_names(tree):
    """The names of one layer's slice of a stack: the inverse of `prepend_layers_axis` for names."""
    return _without_layers_axis(tree, lambda array: array)


def layer_of_stack(tree, index: int):
    """Layer `index` of a layer stack: every weight's slice along the layers axis, named without it."""
    return _without_layers_axis(tree, lambda array: array[index])


def _without_layers_axis(tree, take):
    """Every weight of `tree` named without its leading layers axis, its arrays passed through `take`."""

    def rename(node):
        if isinstance(node, Weight):
            return Weight(take(node.value), node.names[1:])
        if isinstance(node, Int8Weight):
            return Int8Weight(take(node.quantized), take(node.scale), node.names[1:], node.scale_names[1:])
        return node

    return jax.tree.map(rename, tree, is_leaf=is_weight)
