"""The registry, layout files and layout validation: each mistake gets its specific error."""

import pytest

from layouts import (
    ATTENTION_LAYOUTS,
    FFN_LAYOUTS,
    Layout,
    LayoutError,
    LayoutFileError,
    MeshError,
    Partitioning,
    UnknownLayoutError,
    choose_mesh_shape,
    get_attention_layout,
    get_layout,
    parse_mesh,
)
from zoo import get_preset
from zoo.logical_axes import Role

USER_2D = """
kind = "ffn"
name = "my-2d"
summary = "2D weight-stationary written by hand"
phase = "decode"
[weight]
layers = []
vocab = ["z", "y"]
embed = ["x"]
mlp = ["z", "y"]
heads = ["z", "y"]
head_dim = []
fused = []
positions = []
[weight_use]
vocab = ["z", "y"]
embed = ["x"]
mlp = ["z", "y"]
heads = ["z", "y"]
head_dim = []
fused = []
positions = []
[activation]
batch = []
seq = []
residual_embed = ["x", "y", "z"]
matmul_embed = ["x"]
hidden_mlp = ["z", "y", "x"]
hidden_heads = ["z", "y", "x"]
matmul_mlp = ["z", "y"]
matmul_heads = ["z", "y"]
activation_head_dim = []
logits_vocab = ["z", "y", "x"]
"""


def test_built_in_names():
    assert set(FFN_LAYOUTS) == {"1d-ws", "2d-ws", "wg-x", "wg-xy", "wg-xyz"}
    assert {"heads", "batch", "batch-z", "batch-yz"} <= set(ATTENTION_LAYOUTS)
    for layout in FFN_LAYOUTS.values():
        assert layout.algorithm and layout.summary


@pytest.mark.parametrize(
    "name,kinds",
    [
        ("1d-ws", ("all_gather", "reduce_scatter")),
        ("2d-ws", ("all_gather", "reduce_scatter", "all_reduce")),
        ("wg-x", ("all_gather", "reduce_scatter")),
        ("wg-xy", ("all_gather", "reduce_scatter")),
        ("wg-xyz", ("all_gather",)),
    ],
)
def test_the_collectives_a_layout_implies_follow_from_its_rules(name, kinds):
    """The paper's per-layer collectives (docs/paper-model.md §4); 2D's all-reduce is the multiquery
    K/V head, replicated over heads and summed over x after its projection."""
    from layouts.cost.terms import collective_kinds

    partitioning = Partitioning(FFN_LAYOUTS[name], ATTENTION_LAYOUTS["heads"], get_preset("palm-8b"))
    assert collective_kinds(partitioning, "decode") == kinds
    # Attention over the batch adds all-to-alls, except where the batch is split on every axis already.
    batch = Partitioning(FFN_LAYOUTS[name], ATTENTION_LAYOUTS["batch"], get_preset("palm-8b"))
    assert ("all_to_all" in collective_kinds(batch, "decode")) == (name != "wg-xyz")


def test_unknown_layout_names_list_valid_ones_and_the_nearest():
    with pytest.raises(UnknownLayoutError) as raised:
        get_layout("2d-sw")
    assert "did you mean '2d-ws'" in str(raised.value) and "wg-xyz" in str(raised.value)
    with pytest.raises(UnknownLayoutError, match="valid: batch, batch-yz, batch-z, heads"):
        get_attention_layout("bach")


def test_a_user_layout_file_equals_the_built_in_it_copies(tmp_path):
    path = tmp_path / "my-2d.toml"
    path.write_text(USER_2D)
    layout = get_layout(str(path))
    assert isinstance(layout, Layout) and layout.name == "my-2d" and layout.phase == "decode"
    assert dict(layout.rules[Role.WEIGHT]) == dict(FFN_LAYOUTS["2d-ws"].rules[Role.WEIGHT])
    assert dict(layout.rules[Role.ACTIVATION]) == dict(FFN_LAYOUTS["2d-ws"].rules[Role.ACTIVATION])


def test_an_attention_layout_file(tmp_path):
    path = tmp_path / "batch-x.toml"
    path.write_text('kind = "attention"\nname = "batch-x"\nbatch_axes = ["x"]\n')
    assert get_attention_layout(str(path)).batch_axes == ("x",)
    with pytest.raises(UnknownLayoutError, match="attention layout file"):
        get_layout(str(path))


@pytest.mark.parametrize(
    "text,message",
    [
        ("kind = 'ffn'\nname = [", "not valid TOML"),
        ("name = 'x'", "key 'kind' must be"),
        ("colour = 'red'\n" + USER_2D, "unknown key 'colour'"),
        (USER_2D.replace('embed = ["x"]\nmlp', 'embed = "x"\nmlp', 1), "key 'weight.embed' must be a list"),
        (USER_2D.replace('residual_embed = ["x", "y", "z"]', 'residual_embed = ["x", "y", "w"]'), "mesh axis 'w'"),
        (USER_2D.replace('matmul_embed = ["x"]\n', ""), "no rule for matmul_embed"),
        (USER_2D.replace('mlp = ["z", "y"]\nheads', 'mlp = ["y", "y"]\nheads', 1), "uses a mesh axis twice"),
        (USER_2D.replace("[activation]\n", "[activation]\nbogus = []\n"), "unknown logical axis 'bogus'"),
        (USER_2D.replace("[weight_use]", "[weight_uses]"), "unknown key 'weight_uses'"),
    ],
)
def test_malformed_layout_files_name_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(LayoutFileError) as raised:
        get_layout(str(path))
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_missing_layout_file():
    with pytest.raises(LayoutFileError, match="no such layout file"):
        get_layout("/nonexistent/layout.toml")


def test_layout_validation_at_construction():
    rules = {role: dict(table) for role, table in FFN_LAYOUTS["2d-ws"].rules.items()}
    rules[Role.ACTIVATION]["batch"] = ("q",)
    with pytest.raises(LayoutError, match="mesh axis 'q'"):
        Layout("bad", "", "", rules)


def test_every_logical_name_a_model_uses_has_a_rule_in_every_partitioning():
    from zoo.logical_axes import NAMES_BY_ROLE

    for ffn in FFN_LAYOUTS.values():
        for attention in ATTENTION_LAYOUTS.values():
            for model in ("palm-tiny", "mtnlg-tiny"):
                partitioning = Partitioning(ffn, attention, get_preset(model))
                for role, names in NAMES_BY_ROLE.items():
                    for name in names:
                        partitioning.axes(role, name)  # raises when a rule is missing


def test_mesh_parsing_and_choice():
    assert parse_mesh("4x4x4") == (4, 4, 4) and parse_mesh("2x4") == (2, 4, 1)
    for bad in ("4x4x4x4", "0x2", "4by4", ""):
        with pytest.raises(MeshError, match="malformed mesh"):
            parse_mesh(bad)
    palm = get_preset("palm-540b")
    # 2D weight-stationary favours X = 0.5·√n when F = 4E.
    assert choose_mesh_shape(64, FFN_LAYOUTS["2d-ws"], palm)[0] == 4
    assert choose_mesh_shape(256, FFN_LAYOUTS["2d-ws"], palm)[0] == 8
    assert choose_mesh_shape(64, FFN_LAYOUTS["1d-ws"], palm) == (4, 4, 4)
