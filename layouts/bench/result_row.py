"""The result row (README.md, "Result rows"): one object per (cell, phase, source), the same keys for every source.

Estimates, compiles and runs all produce these rows (the estimator and the compiler live in
`layouts`, the runner and the reports in `cli`), so the schema is defined here, once.
"""

import dataclasses
import functools
import importlib.metadata
import os
import subprocess
from pathlib import Path
from typing import Any, Literal

from layouts.layout import COLLECTIVE_KINDS

Source = Literal["estimate", "compile", "run"]
Phase = Literal["prefill", "decode"]

MEMORY_KEYS = ("weights", "kv_cache", "other", "total")
COMMUNICATION_KEYS = (*COLLECTIVE_KINDS, "other")  # "other": what the formulas do not have (collective-permute)
ENV_KEYS = ("jax", "jaxlib", "libtpu", "layoutzoo", "git_sha", "xla_flags")


@dataclasses.dataclass
class ResultRow:
    """Sizes are per chip. phase `prefill`: step_time_s is the whole prompt (batch × input_len
    tokens); phase `decode`: step_time_s is one token step at context_len and latency_s is
    gen_tokens steps. mfu = 2·N_nominal·tokens / (chips·peak·time)."""

    model: str
    layout: str
    attention: str
    chips: int
    mesh: str
    target: str
    phase: Phase
    batch: int
    input_len: int
    context_len: int
    gen_tokens: int
    weights: str
    source: Source
    partitioner: str | None = None  # compile and run: "explicit" or "compiler" (layouts.partitioners)
    collective_matmul: str = "none"  # "unidirectional" or "bidirectional": layouts.collective_matmul
    prefill_chunk: int | None = None  # prefill rows: tokens per sequence a layer takes at a time
    # The mesh axes attention and the KV cache split the batch over ("" for none), as far as the
    # batch divides (`layouts.fit`).
    batch_axes: str | None = None
    # Where each logical mesh axis lies on the TPU slice's physical axes (`layouts.interconnect`),
    # e.g. "x→Z y→Y z→X"; None for local devices.
    physical_axes: str | None = None
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    step_time_s: float | None = None
    latency_s: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    cost_chip_ms_per_token: float | None = None
    memory_per_chip_bytes: dict[str, int | None] = dataclasses.field(default_factory=lambda: dict.fromkeys(MEMORY_KEYS))
    hbm_bytes: int | None = None
    fits: bool | None = None
    comm_bytes_per_chip: dict[str, float | None] = dataclasses.field(default_factory=lambda: dict.fromkeys(COMMUNICATION_KEYS))
    compile_time_s: float | None = None
    env: dict[str, str | None] = dataclasses.field(default_factory=lambda: environment())
    # Source-specific figures that have no column of their own (the compiler's cost analysis, a
    # run's ms/token and bandwidth utilisation, the estimator's time breakdown), clearly labelled.
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.memory_per_chip_bytes = {key: self.memory_per_chip_bytes.get(key) for key in MEMORY_KEYS}
        self.comm_bytes_per_chip = {key: self.comm_bytes_per_chip.get(key) for key in COMMUNICATION_KEYS}

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def does_not_fit(self) -> "ResultRow":
        """This row as an error because its program needs more memory per chip than a program may
        use there (`hbm_bytes`: for a TPU, the HBM libtpu leaves to programs);
        unlike `failed`, the figures stay: they say by how much it misses."""
        needed, available = self.memory_per_chip_bytes["total"], self.hbm_bytes
        return dataclasses.replace(
            self, status="error", fits=False, error=f"does not fit: needs {needed / 2**30:.1f} GiB per chip, a program may use {available / 2**30:.2f} GiB"
        )

    def failed(self, reason: str) -> "ResultRow":
        """This cell as an error row: the keys stay, the numbers go, one line of reason."""
        return dataclasses.replace(
            self,
            status="error",
            error=" ".join(str(reason).split()) or "unknown error",
            step_time_s=None,
            latency_s=None,
            tokens_per_s=None,
            mfu=None,
            cost_chip_ms_per_token=None,
            memory_per_chip_bytes=dict.fromkeys(MEMORY_KEYS),
            hbm_bytes=None,
            fits=None,
            comm_bytes_per_chip=dict.fromkeys(COMMUNICATION_KEYS),
        )


ROW_KEYS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(ResultRow))


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@functools.cache
def _static_environment() -> tuple[tuple[str, str | None], ...]:
    return (
        ("jax", _version("jax")),
        ("jaxlib", _version("jaxlib")),
        ("libtpu", _version("libtpu")),
        ("layoutzoo", _version("layoutzoo")),
        ("git_sha", _git_sha()),
    )


def environment() -> dict[str, str | None]:
    """Versions, the git SHA of the code and the XLA flags a row was produced with."""
    return {**dict(_static_environment()), "xla_flags": os.environ.get("XLA_FLAGS") or None}
