"""Layouts by name: the built-ins, plus user-written layout files given by path."""

import functools
import os

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.errors import UnknownLayoutError
from layouts.layout import AttentionLayout, Layout, Partitioning
from layouts.layout_file import load
from zoo.config import ModelConfig
from zoo.presets import unknown_name_message


def _looks_like_path(name: str) -> bool:
    return name.endswith(".toml") or os.sep in name


def _lookup(name_or_path: str, built_in: dict, expected: type, kind: str, flag: str, file_kind: str):
    """A built-in by name, or a layout file by path holding the expected kind of layout."""
    if name_or_path in built_in:
        return built_in[name_or_path]
    if _looks_like_path(name_or_path):
        layout = load(name_or_path)
        if isinstance(layout, expected):
            return layout
        found = ("attention", "attention") if isinstance(layout, AttentionLayout) else ("FFN", "ffn")
        raise UnknownLayoutError(f"{name_or_path}: is an {found[0]} layout file (kind = \"{found[1]}\"); {flag} takes kind = \"{file_kind}\"")
    raise UnknownLayoutError(unknown_name_message(kind, name_or_path, built_in) + ", or a layout file path ending in .toml")


def get_layout(name_or_path: str) -> Layout:
    """A built-in FFN layout by name, or a user layout file (`*.toml`) by path."""
    return _lookup(name_or_path, FFN_LAYOUTS, Layout, "layout", "--layout", "ffn")


def get_attention_layout(name_or_path: str) -> AttentionLayout:
    """A built-in attention layout by name, or a user attention layout file by path."""
    return _lookup(name_or_path, ATTENTION_LAYOUTS, AttentionLayout, "attention layout", "--attention", "attention")


@functools.lru_cache(maxsize=4096)
def get_partitioning(layout: str, attention: str, config: ModelConfig) -> Partitioning:
    """The FFN layout and the attention layout (names or files) joined for `config`. Joining is
    pure, so a matrix of thousands of cells needs only a few."""
    return Partitioning(get_layout(layout), get_attention_layout(attention), config)
