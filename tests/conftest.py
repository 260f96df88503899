"""Test set-up: 8 forced CPU devices (mesh 2×2×2), the CPU platform only (libtpu is installed for
TPU-topology compiles, but there is no TPU to probe), strict dtype promotion, jaxtyping's
runtime shape checks on the zoo, and the compile cache off (every test compiles what it checks;
tests/test_compile_cache.py turns it on in a folder of its own), also for the commands tests run."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["ZOO_COMPILE_CACHE"] = "off"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

from jaxtyping import install_import_hook  # noqa: E402

with install_import_hook(["zoo"], "beartype.beartype"):
    import zoo  # noqa: F401

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")

# Tolerances, written down once. fp32 on the CPU: cached decode reorders the same sums as the full
# forward pass, so the differences are rounding only.
FP32_ATOL = 1e-5
FP32_RTOL = 1e-5


def slow_but(cases, fast) -> list:
    """`cases` for `pytest.mark.parametrize`, all but those in `fast` marked slow: the default run
    keeps a representative few of a long matrix, `pytest -m slow` the rest."""
    return [case if case in fast else pytest.param(*(case if isinstance(case, tuple) else (case,)), marks=pytest.mark.slow) for case in cases]


@pytest.fixture(scope="session")
def devices():
    assert len(jax.devices()) == 8, "tests need 8 forced host devices"
    return jax.devices()


@pytest.fixture
def nothing_allocated(monkeypatch):
    """Fails the test if a command builds, initialises or restores a model: refusals (bad input, no
    room) must come before any of that."""
    import checkpoints
    import layouts.sharding

    def refuse(*arguments, **keywords):
        raise AssertionError("a model was built or read before the input was checked")

    monkeypatch.setattr(zoo, "Transformer", refuse)
    monkeypatch.setattr(checkpoints, "restore", refuse)
    monkeypatch.setattr(layouts.sharding, "init_in_shards", refuse)
