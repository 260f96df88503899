"""Layouts by name: the built-ins, plus user-written layout files given by path."""

import os

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.errors import UnknownLayoutError
from layouts.layout import AttentionLayout, Layout
from layouts.layout_file import load
from zoo.presets import unknown_name_message


def _looks_like_path(name: str) -> bool:
    return name.endswith(".toml") or os.sep in name


def get_layout(name_or_path: str) -> Layout:
    """A built-in FFN layout by name, or a user layout file (`*.toml`) by path."""
    if name_or_path in FFN_LAYOUTS:
        return FFN_LAYOUTS[name_or_path]
    if _looks_like_path(name_or_path):
        layout = load(name_or_path)
        if isinstance(layout, Layout):
            return layout
        raise UnknownLayoutError(f"{name_or_path}: is an attention layout file (kind = \"attention\"); --layout takes kind = \"ffn\"")
    raise UnknownLayoutError(unknown_name_message("layout", name_or_path, FFN_LAYOUTS) + ", or a layout file path ending in .toml")


def get_attention_layout(name_or_path: str) -> AttentionLayout:
    if name_or_path in ATTENTION_LAYOUTS:
        return ATTENTION_LAYOUTS[name_or_path]
    if _looks_like_path(name_or_path):
        layout = load(name_or_path)
        if isinstance(layout, AttentionLayout):
            return layout
        raise UnknownLayoutError(f"{name_or_path}: is an FFN layout file (kind = \"ffn\"); --attention takes kind = \"attention\"")
    raise UnknownLayoutError(unknown_name_message("attention layout", name_or_path, ATTENTION_LAYOUTS) + ", or a layout file path ending in .toml")
