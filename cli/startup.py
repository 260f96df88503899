"""Quiet JAX start-up on machines without TPUs.

libtpu is installed by default (it compiles for TPU topologies with no TPU present), so JAX's default
start probes for a TPU, prints several lines of warnings and falls back to the CPU. When this
machine has no TPU device files, the TPU backend is left out of the platforms JAX tries; a TPU VM
is untouched and uses its TPUs. Importing this module must happen before JAX initialises a backend.
"""

import glob
import importlib.util
import os


def _has_tpu_devices() -> bool:
    # TPU v2-v4 VMs expose /dev/accel*, v5 and later /dev/vfio/*.
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def _has_cuda_plugin() -> bool:
    return any(importlib.util.find_spec(name) is not None for name in ("jax_cuda12_plugin", "jax_cuda13_plugin"))


def quiet_platforms() -> None:
    if "JAX_PLATFORMS" in os.environ or _has_tpu_devices():
        return
    os.environ["JAX_PLATFORMS"] = "cuda,cpu" if _has_cuda_plugin() else "cpu"


quiet_platforms()
