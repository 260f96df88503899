"""The cost model's closed forms (docs/paper-model.md §4) and its memory terms against the zoo."""

import math

import pytest

import zoo
from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.cost.terms import axis_ways, kv_cache_bytes, phase_template
from layouts.layout import Partitioning
from layouts.mesh import factorizations, format_mesh
from layouts.cost.paper_reproduction import ffn_volume_bytes, longest_context
from layouts.sharding import cache_placements, weight_placements
from zoo.presets import get_preset

E = 16384


def _best_mesh(layout: str, chips: int, *, d_ff: int = 4 * E, tokens: int = 2048):
    volumes = {shape: ffn_volume_bytes(layout, d_model=E, d_ff=d_ff, tokens=tokens, mesh=format_mesh(shape)) for shape in factorizations(chips)}
    best = min(volumes, key=volumes.get)
    return best, volumes[best]


@pytest.mark.parametrize("chips", [16, 64, 256, 1024])
def test_2d_weight_stationary_optimum_is_half_root_n(chips):
    (x, y, z), volume = _best_mesh("2d-ws", chips)
    assert x == 0.5 * math.sqrt(chips)
    assert volume == pytest.approx(8 * 2048 * E / math.sqrt(chips) * 2)  # 8BLE/√n, bf16


def test_1d_2d_crossover_at_16_chips():
    one_d = {chips: _best_mesh("1d-ws", chips)[1] for chips in (4, 8, 16, 32, 64)}
    two_d = {chips: _best_mesh("2d-ws", chips)[1] for chips in (4, 8, 16, 32, 64)}
    assert len(set(one_d.values())) == 1  # 1D is flat in the chip count: 2BLE
    assert two_d[16] == pytest.approx(one_d[16])
    assert all(two_d[n] > one_d[n] for n in (4, 8)) and all(two_d[n] < one_d[n] for n in (32, 64))


@pytest.mark.parametrize("optimum", [2, 4, 8, 16])
def test_weight_gathered_optimum_n_is_root_bln_over_f(optimum):
    chips, F = 64, 4 * E
    tokens = F * optimum**2 // chips  # so that √(BL·n/F) = optimum
    volumes = {x: ffn_volume_bytes("wg-x", d_model=E, d_ff=F, tokens=tokens, mesh=f"{x}x{chips // x}x1") for x in (1, 2, 4, 8, 16, 32, 64)}
    assert min(volumes, key=volumes.get) == optimum
    assert volumes[optimum] == pytest.approx(4 * E * math.sqrt(tokens * F) / math.sqrt(chips) * 2)


@pytest.mark.parametrize("layout, gigabytes", [("2d-ws", 0.0671), ("wg-x", 0.302), ("wg-xy", 1.082), ("wg-xyz", 4.295)])
def test_figure_3_volumes(layout, gigabytes):
    assert ffn_volume_bytes(layout, d_model=E, d_ff=4 * E, tokens=2048, mesh="4x4x4") / 1e9 == pytest.approx(gigabytes, rel=0.01)


@pytest.mark.parametrize(
    "model, attention, batch, published",
    [
        ("palm-540b-multihead", "heads", 128, 1320),
        ("palm-540b-multihead", "heads", 512, 330),
        ("palm-540b-64h", "heads", 128, 660),
        ("palm-540b-64h", "heads", 512, 165),
        ("palm-540b-64h", "batch", 128, 43_000),
        ("palm-540b-64h", "batch", 512, 10_700),
    ],
)
def test_table_1_longest_contexts(model, attention, batch, published):
    assert longest_context(model, attention, chips=64, batch=batch, kv_fraction=0.3) == pytest.approx(published, rel=0.02)


def test_3_tb_kv_cache_example():
    multihead = get_preset("palm-540b").replace(n_kv_heads=48, d_head=128)
    assert kv_cache_bytes(multihead, 512, 2048) == 118 * 48 * 128 * 2 * 2 * 512 * 2048
    assert kv_cache_bytes(multihead, 512, 2048) / 1e12 == pytest.approx(3.04, rel=0.01)


def _stored_bytes(model: str, layout: str, mesh, attention: str = "heads") -> float:
    config = get_preset(model)
    template = phase_template(Partitioning(FFN_LAYOUTS[layout], ATTENTION_LAYOUTS[attention], config), "decode")
    return sum(term.value(axis_ways(mesh), 1, 1, 1) for term, _ in template.stored_weights) * 2


@pytest.mark.parametrize("layout", ["1d-ws", "2d-ws"])
def test_weight_stationary_weights_are_parameters_over_chips(layout):
    # A multihead model splits every matrix over all chips; the norms, biases and learned position
    # table it replicates (under 1D) come to half a percent.
    assert _stored_bytes("mtnlg-530b", layout, (4, 4, 4)) == pytest.approx(get_preset("mtnlg-530b").param_count * 2 / 64, rel=1e-2)


@pytest.mark.parametrize("model", ["palm-tiny", "mtnlg-tiny"])
@pytest.mark.parametrize("layout", sorted(FFN_LAYOUTS))
@pytest.mark.parametrize("attention", ["heads", "batch"])
def test_closed_forms_match_the_zoo_placements(model, layout, attention):
    config = get_preset(model)
    partitioning = Partitioning(FFN_LAYOUTS[layout], ATTENTION_LAYOUTS[attention], config)
    mesh = {"x": 2, "y": 2, "z": 2}
    placed = sum(p.per_chip_bytes for p in weight_placements(zoo.build_abstract(config), partitioning, mesh))
    assert _stored_bytes(model, layout, (2, 2, 2), attention) == placed
    template = phase_template(partitioning, "decode")
    cache = sum(p.per_chip_bytes for p in cache_placements(zoo.abstract_cache(config, 8, 16), partitioning, mesh))
    assert template.kv_elements.value(axis_ways((2, 2, 2)), 8, 1, 16) * config.n_layers * 2 == cache
