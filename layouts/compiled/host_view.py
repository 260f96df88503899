"""What one host of a multi-host slice holds and feeds for a compiled phase: the per-host view.

A TPU v4 slice of 64 chips is 16 hosts of 4 chips. The compiled program is one SPMD program, so
every chip's memory and collectives are the same whichever host it is on (the compile row's
figures); what differs from a single process driving every chip is the host's share of the
arrays: the weight slices it reads from a checkpoint, the token slices it feeds each step, the
cache slices it holds, and which mesh axes' collectives run between hosts rather than within
one. Each is counted from the arguments' shardings and the topology's devices (each knows its
host, `process_index`): a slice several of a host's chips hold (a replicated one) is read once.
"""

import dataclasses
import math

import numpy as np
from jax.sharding import Mesh

from layouts.layout import MESH_AXES


@dataclasses.dataclass(frozen=True)
class HostView:
    hosts: int
    devices_per_host: int
    # Per mesh axis, how many hosts one line of devices along it spans (1: the axis's collectives
    # stay within a host).
    axis_hosts: dict[str, int]
    # Per argument kind, the most bytes any one host holds (distinct slices), and the whole array's.
    host_bytes: dict[str, int]
    total_bytes: dict[str, int]

    @property
    def single_host(self) -> bool:
        """One host drives every chip: the per-host view is the single-process one."""
        return self.hosts == 1

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"single_host": self.single_host}

    @classmethod
    def from_dict(cls, record: dict) -> "HostView":
        return cls(**{field.name: record[field.name] for field in dataclasses.fields(cls)})

    def describe(self) -> str:
        """One line for people."""
        if self.single_host:
            return f"one host drives all {self.devices_per_host} devices: the per-host view is the single-process one"
        across = [f"{axis} spans {hosts} hosts" for axis, hosts in self.axis_hosts.items() if hosts > 1]
        within = [axis for axis, hosts in self.axis_hosts.items() if hosts == 1]
        axes = "; ".join(across + ([f"{','.join(within)} within a host"] if within else []))
        shares = ", ".join(
            f"{kind} {_share(self.host_bytes[kind], self.total_bytes[kind])}" for kind in self.host_bytes if self.total_bytes[kind]
        )
        return f"{self.hosts} hosts × {self.devices_per_host} devices; mesh axes: {axes}; each host holds {shares}; per-device figures as one program runs on every host"


def _size(value: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value:,.0f} B"


def _share(part: int, whole: int) -> str:
    return f"{_size(part)} of {_size(whole)} ({part / whole:.0%})"


def _bytes_by_host(argument, devices_by_host: dict[int, list]) -> dict[int, int]:
    """{host: bytes of the distinct slices of `argument` its devices hold}."""
    shape = tuple(argument.shape)
    itemsize = np.dtype(argument.dtype).itemsize
    indices = argument.sharding.devices_indices_map(shape)
    held = {}
    for host, devices in devices_by_host.items():
        # Slices are not hashable before Python 3.12: a slice is keyed by its bounds in the array.
        distinct = {tuple(part.indices(size) for part, size in zip(indices[device], shape)) for device in devices}
        held[host] = sum(math.prod(len(range(*bounds)) for bounds in index) for index in distinct) * itemsize
    return held


def host_view(mesh: Mesh, arguments) -> HostView:
    """The per-host view of a program over `mesh` taking `arguments` ((model, tokens, cache) as
    sharded ShapeDtypeStructs, `layouts.steps.PhaseProgram.abstract_arguments`)."""
    import jax

    devices = mesh.devices
    devices_by_host: dict[int, list] = {}
    for device in devices.flat:
        devices_by_host.setdefault(device.process_index, []).append(device)
    hosts = np.vectorize(lambda device: device.process_index)(devices)
    axis_hosts = {}
    for axis_index, axis in enumerate(MESH_AXES):
        lines = np.moveaxis(hosts, axis_index, -1).reshape(-1, hosts.shape[axis_index])
        axis_hosts[axis] = max(len(set(line.tolist())) for line in lines)
    model, tokens, cache = arguments
    kinds = {"weights": jax.tree.leaves(model), "tokens": [tokens], "kv_cache": [cache.k, cache.v]}
    host_bytes, total_bytes = {}, {}
    for kind, leaves in kinds.items():
        by_host = [_bytes_by_host(leaf, devices_by_host) for leaf in leaves]
        host_bytes[kind] = max(sum(held[host] for held in by_host) for host in devices_by_host)
        total_bytes[kind] = sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in leaves)
    sizes = {len(members) for members in devices_by_host.values()}
    return HostView(len(devices_by_host), max(sizes), axis_hosts, host_bytes, total_bytes)
