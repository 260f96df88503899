"""User-written layout files (TOML), with the same schema as the built-ins.

An FFN layout:

    kind = "ffn"
    name = "my-2d"
    summary = "..."
    algorithm = "W_in E_x F_yz ..."
    phase = "decode"                      # optional: prefill | decode | any
    [weight]                              # how weights are stored
    embed = ["x"]
    mlp = ["y", "z"]
    ...                                   # one key per logical name of the role
    [weight_use]                          # how matmuls consume them
    [activation]

An attention layout:

    kind = "attention"
    name = "batch-x"
    summary = "..."
    batch_axes = ["x"]

Errors name the file, the key and what was expected.
"""

from pathlib import Path

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.errors import LayoutError, LayoutFileError
from layouts.layout import AttentionLayout, Layout
from layouts.toml_file import read_toml
from zoo.logical_axes import Role

_FFN_KEYS = {"kind", "name", "summary", "algorithm", "phase", "weight", "weight_use", "activation"}
_ATTENTION_KEYS = {"kind", "name", "summary", "batch_axes", "phase"}


def _string(path: Path, table: dict, key: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise LayoutFileError(f"{path}: key {key!r} must be a string, got {type(value).__name__}")
    return value


def _axes(path: Path, key: str, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(axis, str) for axis in value):
        raise LayoutFileError(f"{path}: key {key!r} must be a list of mesh axis names such as [\"x\", \"y\"], got {value!r}")
    return tuple(value)


def load(path_like: str | Path) -> Layout | AttentionLayout:
    path = Path(path_like)
    data = read_toml(path, LayoutFileError, "layout")
    kind = data.get("kind")
    allowed = {"ffn": _FFN_KEYS, "attention": _ATTENTION_KEYS}.get(kind)
    if allowed is None:
        raise LayoutFileError(f"{path}: key 'kind' must be \"ffn\" or \"attention\", got {kind!r}")
    unknown = sorted(data.keys() - allowed)
    if unknown:
        raise LayoutFileError(f"{path}: unknown key {unknown[0]!r}; valid keys for kind {kind!r}: {', '.join(sorted(allowed))}")
    name = _string(path, data, "name", path.stem)
    if name in FFN_LAYOUTS or name in ATTENTION_LAYOUTS:
        # Rows are labelled by layout name: a file must not pass for the built-in it may differ from.
        raise LayoutFileError(f"{path}: name {name!r} is a built-in layout's; give the file's layout a name of its own (key 'name')")
    summary = _string(path, data, "summary", f"user layout from {path}")
    phase = _string(path, data, "phase", "any")
    try:
        if kind == "attention":
            return AttentionLayout(name, summary, _axes(path, "batch_axes", data.get("batch_axes", [])), phase=phase)
        rules = {}
        for role in (Role.WEIGHT, Role.WEIGHT_USE, Role.ACTIVATION):
            table = data.get(role.value)
            if not isinstance(table, dict):
                raise LayoutFileError(f"{path}: missing table [{role.value}] mapping logical names to mesh axes")
            rules[role] = {key: _axes(path, f"{role.value}.{key}", value) for key, value in table.items()}
        return Layout(name, summary, _string(path, data, "algorithm", ""), rules, phase=phase)
    except LayoutFileError:
        raise
    except LayoutError as error:
        raise LayoutFileError(f"{path}: {error}") from None


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_axes(axes) -> str:
    return "[" + ", ".join(_toml_string(axis) for axis in axes) + "]"


def dumps(layout: Layout | AttentionLayout, name: str | None = None) -> str:
    """`layout` as a layout file (under `name`, since a file may not take a built-in's): `load`
    of the text gives a layout with the same rules, which is costed, meshed and compiled the same."""
    lines = [f"name = {_toml_string(name or layout.name)}", f"summary = {_toml_string(layout.summary)}", f"phase = {_toml_string(layout.phase)}"]
    if isinstance(layout, AttentionLayout):
        return "\n".join(['kind = "attention"', *lines, f"batch_axes = {_toml_axes(layout.batch_axes)}"]) + "\n"
    lines = ['kind = "ffn"', *lines, f"algorithm = {_toml_string(layout.algorithm)}"]
    for role in (Role.WEIGHT, Role.WEIGHT_USE, Role.ACTIVATION):
        lines.append(f"[{role.value}]")
        lines += [f"{logical} = {_toml_axes(axes)}" for logical, axes in sorted(layout.rules[role].items())]
    return "\n".join(lines) + "\n"
