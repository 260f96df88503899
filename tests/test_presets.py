import jax
import pytest

from zoo import PRESETS, ConfigError, UnknownPresetError, build_abstract, get_preset
from zoo.weights import is_weight

PUBLISHED_PARAMS = {"palm-8b": 8.63e9, "palm-62b": 62.50e9, "palm-540b": 540.35e9, "mtnlg-530b": 529.5e9}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_full_preset_parameter_counts_match_the_paper(name):
    config = get_preset(name)
    abstract = build_abstract(config)
    counted = sum(leaf.size for leaf in jax.tree.leaves(abstract))
    assert counted == config.param_count
    assert abs(counted - PUBLISHED_PARAMS[name]) / PUBLISHED_PARAMS[name] < 1e-3


def test_padded_palm_540b_adds_about_18b_parameters():
    extra = get_preset("palm-540b-64h").param_count - get_preset("palm-540b").param_count
    assert 17e9 < extra < 19e9


def test_abstract_construction_of_palm_540b_allocates_nothing():
    # Its speed is a benchmark's business (README: about 0.09 s), not a timed test's.
    abstract = build_abstract(get_preset("palm-540b"))
    assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree.leaves(abstract))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_array_leaf_carries_logical_names(name):
    abstract = build_abstract(PRESETS[name])
    weights = jax.tree.leaves(abstract, is_leaf=is_weight)
    assert weights and all(is_weight(w) for w in weights)
    for weight in weights:
        assert len(weight.names) == len(weight.shape)
        assert weight.names[0] == "layers" or weight.shape != () and "layers" not in weight.names


def test_derived_numbers():
    config = get_preset("palm-540b")
    assert config.forward_flops_per_token == 2 * config.param_count
    # Multiquery: 2 (K, V) · 118 layers · 1 head · 256 · 2 bytes.
    assert config.kv_bytes_per_token("bfloat16") == 2 * 118 * 256 * 2
    assert get_preset("mtnlg-530b").kv_bytes_per_token("bfloat16") == 2 * 105 * 128 * 160 * 2


def test_tiny_sizes_have_a_few_hundred_thousand_parameters():
    for name in ("palm-tiny", "mtnlg-tiny"):
        assert 1e5 < get_preset(name).param_count < 1e6


def test_unknown_preset_lists_valid_names_and_the_nearest():
    with pytest.raises(UnknownPresetError) as raised:
        get_preset("palm-8")
    message = str(raised.value)
    assert "palm-8b" in message and "did you mean" in message and "\n" not in message


def test_heads_need_not_divide_d_model_but_kv_heads_must_divide_heads():
    # Real models set the head dimension apart from d_model / n_heads.
    assert get_preset("palm-tiny").replace(n_heads=6, n_kv_heads=2).n_heads == 6
    with pytest.raises(ConfigError, match="must divide n_heads"):
        get_preset("palm-tiny").replace(n_kv_heads=3)
    with pytest.raises(ConfigError, match="positive integer"):
        get_preset("palm-tiny").replace(d_ff=0)
