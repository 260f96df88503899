"""The per-host view of a compiled phase on a multi-host TPU slice (`layouts.compiled.host_view`):
how many hosts, which mesh axes span them, and each host's share of the arrays."""

import jax
import numpy as np
import pytest

from layouts import build_steps, get_partitioning, make_mesh
from layouts.compiled.host_view import host_view
from layouts.compiled.targets import get_target
from zoo import get_preset
from zoo.kv_cache import abstract_cache
from zoo.quantization import abstract_model


def _view(target: str, chips: int, mesh_shape, layout: str, attention: str, batch: int = 64, model_name: str = "palm-8b"):
    config = get_preset(model_name)
    mesh = make_mesh(mesh_shape, get_target(target, chips).devices())
    model = abstract_model(config, "bf16")
    partitioning = get_partitioning(layout, attention, config)
    steps = build_steps(model, partitioning, partitioning, mesh, batch=batch, input_len=1, max_len=128)
    arguments = steps.decode.abstract_arguments(model, abstract_cache(config, batch, 128))
    return host_view(mesh, arguments), mesh, arguments


def test_a_v4_4x4x4_slice_is_16_hosts_each_holding_a_sixteenth_of_2d_weights():
    view, mesh, _ = _view("tpu-v4", 64, (4, 4, 4), "2d-ws", "batch")
    assert (view.hosts, view.devices_per_host, view.single_host) == (16, 4, False)
    # Counted by hand from the devices: along each mesh axis, the hosts one line of devices visits.
    hosts = [[[mesh.devices[x, y, z].process_index for z in range(4)] for y in range(4)] for x in range(4)]
    assert view.axis_hosts["z"] == max(len(set(hosts[x][y])) for x in range(4) for y in range(4))
    assert view.axis_hosts["x"] == max(len({hosts[x][y][z] for x in range(4)}) for y in range(4) for z in range(4))
    assert sum(count > 1 for count in view.axis_hosts.values()) >= 2  # a 2x2 block per host: two axes at least leave it
    # 2D weight-stationary splits the matmul weights over all 64 chips, a host's 4 chips hold at
    # least a sixteenth; slices two of them share (the embedding's, the norms') are held once.
    assert view.total_bytes["weights"] / 16 <= view.host_bytes["weights"] < view.total_bytes["weights"] / 8
    assert "16 hosts × 4 devices" in view.describe()


@pytest.mark.parametrize(("layout", "attention"), [("2d-ws", "batch"), ("1d-ws", "heads"), ("wg-xyz", "batch")])
def test_each_hosts_share_is_the_elements_its_devices_hold(layout, attention):
    """Counted element by element: every element of every array its devices hold, marked once."""
    view, mesh, arguments = _view("tpu-v4", 8, (2, 2, 2), layout, attention, batch=8, model_name="palm-4m")
    assert view.hosts == 2
    model, tokens, cache = arguments
    kinds = {"weights": jax.tree.leaves(model), "tokens": [tokens], "kv_cache": [cache.k, cache.v]}
    for kind, leaves in kinds.items():
        held = {}
        for host in (0, 1):
            total = 0
            for leaf in leaves:
                mask = np.zeros(leaf.shape, bool)
                for device, index in leaf.sharding.devices_indices_map(tuple(leaf.shape)).items():
                    if device.process_index == host:
                        mask[index] = True
                total += int(mask.sum()) * np.dtype(leaf.dtype).itemsize
            held[host] = total
        assert view.host_bytes[kind] == max(held.values()), kind


def test_one_host_is_the_single_process_view():
    view, _, _ = _view("tpu-v4", 4, (1, 2, 2), "1d-ws", "heads", batch=16)
    assert (view.hosts, view.single_host) == (1, True)
    assert view.host_bytes == view.total_bytes
    assert "single-process" in view.describe()
