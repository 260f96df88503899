"""A model as a flat mapping from readable names ("blocks.attention.w_q.value") to its arrays, and
back. The names are the checkpoint's keys: they appear in the manifest, in error messages and as
directory names on disk."""

import jax

from zoo.weights import Int8Weight, Weight, is_weight


def _key_name(entry) -> str:
    for attribute in ("name", "key", "idx"):
        if hasattr(entry, attribute):
            return str(getattr(entry, attribute))
    return str(entry)


def array_name(path) -> str:
    return ".".join(_key_name(entry) for entry in path)


def named_arrays(tree) -> dict:
    """{name: leaf} for every array leaf (real arrays or ShapeDtypeStructs) of a model."""
    return {array_name(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def with_arrays(tree, arrays: dict):
    """`tree` with its leaves replaced by `arrays[name]`."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return jax.tree_util.tree_unflatten(treedef, [arrays[array_name(path)] for path, _ in paths])


def logical_names(tree) -> dict[str, tuple[str | None, ...]]:
    """{array name: logical axis names} for the arrays inside the model's weights."""
    names = {}
    for path, weight in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_weight)[0]:
        prefix = array_name(path)
        if isinstance(weight, Weight):
            names[f"{prefix}.value"] = weight.names
        elif isinstance(weight, Int8Weight):
            names[f"{prefix}.quantized"] = weight.names
            names[f"{prefix}.scale"] = weight.scale_names
    return names


def weight_format(model) -> str:
    """"int8" when the matmul weights are quantized, else the dtype they are stored in."""
    weights = jax.tree.leaves(model, is_leaf=is_weight)
    if any(isinstance(weight, Int8Weight) for weight in weights):
        return "int8"
    return str(model.embedding.value.dtype)
