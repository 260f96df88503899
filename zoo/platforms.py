"""Quiet JAX start-up on machines without TPUs, for the library and the CLI alike.

libtpu is installed by default (it compiles for TPU topologies with no TPU present), so JAX's default
start probes for a TPU, prints several lines of warnings and falls back to the CPU. When this
machine has no TPU device files, the TPU backend is left out of the platforms JAX tries; a TPU VM
is untouched and uses its TPUs, and so is a process whose user chose JAX_PLATFORMS. `zoo` imports
this module first, so importing any of the project's packages applies it; it takes effect if JAX
has not initialised a backend yet.
"""

import contextlib
import glob
import importlib.util
import os
import sys


def has_tpu_devices() -> bool:
    # TPU v2-v4 VMs expose /dev/accel*, v5 and later /dev/vfio/*.
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def _has_cuda_plugin() -> bool:
    return any(importlib.util.find_spec(name) is not None for name in ("jax_cuda12_plugin", "jax_cuda13_plugin"))


def quiet_platforms() -> None:
    if "JAX_PLATFORMS" in os.environ or has_tpu_devices():
        return
    platforms = "cuda,cpu" if _has_cuda_plugin() else "cpu"
    os.environ["JAX_PLATFORMS"] = platforms
    jax = sys.modules.get("jax")
    if jax is not None and not jax.config.jax_platforms:
        # jax read the environment when it was imported, before this: tell its config directly
        # (ignored, or refused, once a backend is up; the noise has been printed by then anyway).
        with contextlib.suppress(Exception):
            jax.config.update("jax_platforms", platforms)


quiet_platforms()
