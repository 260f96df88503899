"""Every built-in layout written out as a file is the same layout: the same rules and family, the
same mesh for every chip count, the same estimate and the same compiled program. Nothing keys on a
built-in's name or on a field only the built-in factory sets."""

import dataclasses

import pytest

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.bench.cell import Cell
from layouts.bench.compile_rows import compile_cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.layout_file import dumps, load
from layouts.mesh import choose_mesh_shape
from zoo.presets import get_preset


def _written(layout, tmp_path):
    path = tmp_path / f"file-{layout.name}.toml"
    path.write_text(dumps(layout, name=f"file-{layout.name}"))
    return path


def _numbers(row) -> dict:
    """A row without the names that say where its layout came from."""
    return {key: value for key, value in dataclasses.asdict(row).items() if key not in ("layout", "attention", "env")}


@pytest.mark.parametrize("name", sorted(FFN_LAYOUTS))
def test_a_built_in_ffn_layout_written_as_a_file_is_estimated_and_meshed_like_the_built_in(name, tmp_path):
    builtin = FFN_LAYOUTS[name]
    path = _written(builtin, tmp_path)
    loaded = load(path)
    assert loaded.rules == builtin.rules and loaded.family == builtin.family and loaded.gathered_axes == builtin.gathered_axes
    for model in ("palm-62b", "palm-540b-64h"):
        config = get_preset(model)
        for chips in (8, 16, 64, 128):
            for tokens in (None, 16, 512 * 2048):
                assert choose_mesh_shape(chips, loaded, config, tokens=tokens) == choose_mesh_shape(chips, builtin, config, tokens=tokens)
    cells = [
        Cell("palm-62b", chips=16, batch=16, decode_attention="batch"),
        Cell("palm-540b-64h", chips=64, batch=512, phase="prefill"),
        Cell("palm-540b-64h", chips=64, batch=64, phase="decode", decode_attention="batch"),
    ]
    for cell in cells:
        from_file = estimate_cell(dataclasses.replace(cell, prefill_layout=str(path), decode_layout=str(path)))
        from_registry = estimate_cell(dataclasses.replace(cell, prefill_layout=name, decode_layout=name))
        assert [_numbers(row) for row in from_file] == [_numbers(row) for row in from_registry]
        assert {row.layout for row in from_file} == {f"file-{name}"}


@pytest.mark.parametrize("name", sorted(FFN_LAYOUTS))
def test_a_built_in_ffn_layout_written_as_a_file_compiles_to_the_same_program(name, tmp_path):
    path = _written(FFN_LAYOUTS[name], tmp_path)
    cell = Cell("palm-tiny", chips=8, target="tpu-v4", phase="decode", batch=8, input_len=32, gen_tokens=8)
    (from_file,) = compile_cell(dataclasses.replace(cell, decode_layout=str(path)))
    (from_registry,) = compile_cell(dataclasses.replace(cell, decode_layout=name))
    assert from_file.status == from_registry.status == "ok"
    assert from_file.mesh == from_registry.mesh
    assert from_file.memory_per_chip_bytes == from_registry.memory_per_chip_bytes
    assert from_file.comm_bytes_per_chip == from_registry.comm_bytes_per_chip


@pytest.mark.parametrize("name", sorted(ATTENTION_LAYOUTS))
def test_a_built_in_attention_layout_written_as_a_file_is_estimated_like_the_built_in(name, tmp_path):
    builtin = ATTENTION_LAYOUTS[name]
    path = _written(builtin, tmp_path)
    assert load(path).batch_axes == builtin.batch_axes
    cell = Cell("palm-540b-64h", chips=64, batch=64, phase="decode")
    from_file = estimate_cell(dataclasses.replace(cell, decode_attention=str(path)))
    from_registry = estimate_cell(dataclasses.replace(cell, decode_attention=name))
    assert [_numbers(row) for row in from_file] == [_numbers(row) for row in from_registry]


def test_the_family_follows_the_rules():
    assert [FFN_LAYOUTS[name].family for name in ("1d-ws", "2d-ws", "wg-x", "wg-xy", "wg-xyz")] == [
        "weight-stationary", "weight-stationary", "weight-gathered", "weight-gathered", "weight-gathered",
    ]  # fmt: skip
    assert FFN_LAYOUTS["wg-xy"].gathered_axes == ("x", "y")
