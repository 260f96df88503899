"""How much memory the local devices can still take, checked before a model is allocated on them.

A random initialisation or a generation that cannot fit should fail with one line before it starts,
not with an allocator's traceback (or the kernel's OOM killer) halfway through. An accelerator
reports its own limit (`memory_stats()["bytes_limit"]` less what is in use); host CPU devices share
the machine's available memory (`MemAvailable` in /proc/meminfo), however many are forced.
"""

import os

import jax

from zoo.errors import ZooError


class LocalMemoryError(ZooError):
    """Work that needs more memory than the local devices have free."""


def _host_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _device_free_bytes(device) -> int | None:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if not stats or "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


def local_free_bytes(devices=None) -> int | None:
    """Bytes the given local devices (default: all) can still allocate together; None if unknown."""
    devices = list(jax.devices() if devices is None else devices)
    if devices and devices[0].platform == "cpu":
        return _host_available_bytes()
    free = [_device_free_bytes(device) for device in devices]
    return None if not free or any(value is None for value in free) else sum(free)


def _gib(value: int) -> str:
    return f"{value / 2**30:.2f} GiB"


def check_fits_locally(required_bytes: int, what: str, devices=None) -> None:
    """Raises LocalMemoryError (one line) when `what` needs more than the devices have free. With
    several processes, `required_bytes` is spread evenly over `devices` and this process checks
    the share its own devices hold."""
    devices = list(jax.devices() if devices is None else devices)
    own = [device for device in devices if device.process_index == jax.process_index()]
    if len(own) < len(devices):
        required_bytes = required_bytes * len(own) // len(devices)
        what = f"{what} ({len(own)} of them in this process)"
    free = local_free_bytes(own)
    if free is not None and required_bytes > free:
        where = "this machine's available memory" if own[0].platform == "cpu" else f"the free memory of {len(own)} {own[0].platform} device(s)"
        raise LocalMemoryError(f"{what} needs about {_gib(required_bytes)} but {where} is {_gib(free)}; choose a smaller model or workload")
