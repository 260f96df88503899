"""How the cost model's terms become seconds: the roofline (the paper's idealised lower bound) and
the calibrated model, whose few efficiency factors were fitted to docs/paper-model.md and nothing else.

Per stage (one layer, or the output head), with c, m, k the compute, HBM and interconnect seconds at
the chip's peaks and n the number of collectives:

    roofline    t = max(c, m, k)                      everything overlaps perfectly
    calibrated  t = max(c / η_flops, m / η_hbm) + k / η_link + n · α

The calibrated form is the physical reading of Table 2: matmuls stream their weights from HBM while
they compute (so compute and memory overlap), but a collective and the matmul that needs its result
do not (so communication adds), collectives reach only a fraction of the links' peak, and every
collective pays a fixed start-up and synchronisation latency α whatever its size (it dominates
small-batch decode, where 9 collectives per layer each move a few hundred kilobytes). No factor
depends on the model, the layout, the batch or the cell.

How the factors were fitted (`fit()` reproduces them; tests/test_paper_reproduction.py checks that
the constants below are its result): least squares on log(estimated / published latency) over the
four cells of Table 2 (PaLM 540B with 64 padded heads on 64 TPU v4 chips, 4×4×4), by a
deterministic pattern search within physical bounds (efficiencies in [0.3, 1], α in [0, 100 µs]).
Three factors are free: η_flops (set by the compute-bound high-throughput prefill: 0.92), η_link
(set by the communication-heavy low-latency prefill and high-throughput decode: 0.34 of 270 GB/s,
about what one axis's links give, see layouts/cost/terms.py) and α (set by the small-batch decode:
15 µs). η_hbm stays 1: only one cell is memory-bound, so freeing it would fit a factor to a cell.
With η_flops and α alone the fit misses high-throughput prefill by 19%. The published MFUs follow
from the latencies and are not fitted separately.
"""

import dataclasses
import math

from layouts.cost.terms import PassTerms, PhasePasses, StageTerms, phase_passes
from layouts.workload import Workload
from layouts.hardware import Chip, get_chip
from layouts.layout import Partitioning
from layouts.registry import get_partitioning
from zoo.errors import ZooError
from zoo.presets import get_preset


@dataclasses.dataclass(frozen=True)
class Calibration:
    name: str
    flops_efficiency: float = 1.0  # η_flops: achieved fraction of peak bf16 FLOP/s in the matmuls
    hbm_efficiency: float = 1.0  # η_hbm: achieved fraction of HBM bandwidth
    link_efficiency: float = 1.0  # η_link: achieved fraction of interconnect bandwidth
    collective_latency_s: float = 0.0  # α: fixed cost of each collective
    overlap_communication: bool = True  # roofline: communication hides behind compute or memory

    def stage_seconds(self, stage: StageTerms, chip: Chip) -> float:
        compute = stage.compute_seconds(chip) / self.flops_efficiency
        memory = stage.memory_seconds(chip) / self.hbm_efficiency
        communication = stage.comm_seconds / self.link_efficiency
        if self.overlap_communication:
            return max(compute, memory, communication) + stage.collectives * self.collective_latency_s
        return max(compute, memory) + communication + stage.collectives * self.collective_latency_s

    def pass_seconds(self, terms: PassTerms, chip: Chip) -> float:
        return terms.layers * self.stage_seconds(terms.layer, chip) + self.stage_seconds(terms.head, chip)


ROOFLINE = Calibration("roofline")

# The result of fit(), checked into code (tests assert fit() still returns these).
CALIBRATED = Calibration(
    "calibrated",
    flops_efficiency=0.9144,
    hbm_efficiency=1.0,
    link_efficiency=0.3378,
    collective_latency_s=15.4e-6,
    overlap_communication=False,
)

MODES: dict[str, Calibration] = {"roofline": ROOFLINE, "calibrated": CALIBRATED}


def get_mode(name: str) -> Calibration:
    if name not in MODES:
        raise ZooError(f"unknown estimate mode {name!r}; valid: {', '.join(MODES)}")
    return MODES[name]


@dataclasses.dataclass(frozen=True)
class PublishedRun:
    """One of the paper's measured configurations: `phase` of `workload` for `model` under the
    FFN and attention layouts on TPU v4 chips as `mesh`, with the published latency in seconds
    (prefill: the whole prompt; decode: every step) and MFU."""

    model: str
    phase: str
    layout: str
    attention: str
    mesh: tuple[int, int, int]
    workload: Workload
    latency_s: float
    mfu: float

    @property
    def partitioning(self) -> Partitioning:
        return get_partitioning(self.layout, self.attention, get_preset(self.model))

    def passes(self) -> PhasePasses:
        return phase_passes(self.partitioning, get_chip("tpu-v4"), self.mesh, self.workload, self.phase)


# Table 2 of docs/paper-model.md §5: PaLM 540B (heads padded to 64, the paper's inference variant),
# 64 TPU v4 chips as 4×4×4, 2048-token prompts, 64 generated tokens.
TABLE_2: dict[str, PublishedRun] = {
    "low-latency prefill": PublishedRun("palm-540b-64h", "prefill", "2d-ws", "heads", (4, 4, 4), Workload(1, 2048, 2048, 64, "int8"), 0.29, 0.43),
    "low-latency decode": PublishedRun("palm-540b-64h", "decode", "2d-ws", "batch", (4, 4, 4), Workload(64, 2048, 2048, 64, "int8"), 1.82, 0.14),
    "high-throughput prefill": PublishedRun("palm-540b-64h", "prefill", "wg-xyz", "batch", (4, 4, 4), Workload(512, 2048, 2048, 64, "bf16"), 85.2, 0.76),
    "high-throughput decode": PublishedRun("palm-540b-64h", "decode", "2d-ws", "batch", (4, 4, 4), Workload(512, 2048, 2048, 64, "bf16"), 6.0, 0.33),
}

_BOUNDS = {
    "flops_efficiency": (0.3, 1.0),
    "hbm_efficiency": (0.3, 1.0),
    "link_efficiency": (0.3, 1.0),
    "collective_latency_s": (0.0, 100e-6),
}
FREE_FACTORS = ("flops_efficiency", "link_efficiency", "collective_latency_s")


def _loss(calibration: Calibration, data) -> float:
    return sum(math.log(calibration.pass_seconds(passes.mean, passes.chip) * passes.passes / published) ** 2 for passes, published in data)


def fit(free: tuple[str, ...] = FREE_FACTORS) -> Calibration:
    """Refit the calibrated factors named in `free` to Table 2's latencies (see the module
    docstring): a pattern search that halves its steps until they are below the rounding used for
    the checked-in constants (0.0001 in efficiency, 0.1 µs in latency)."""
    data = [(run.passes(), run.latency_s) for run in TABLE_2.values()]
    values = {name: 1.0 for name in ("flops_efficiency", "hbm_efficiency", "link_efficiency")} | {"collective_latency_s": 0.0}
    steps = {name: (high - low) / 4 for name, (low, high) in _BOUNDS.items()}
    resolution = {"collective_latency_s": 0.1e-6}

    def calibration(values) -> Calibration:
        return dataclasses.replace(CALIBRATED, **values)

    best = _loss(calibration(values), data)
    while any(steps[name] > resolution.get(name, 1e-4) for name in free):
        improved = False
        for name in free:
            for direction in (1, -1):
                low, high = _BOUNDS[name]
                trial = dict(values, **{name: min(high, max(low, values[name] + direction * steps[name]))})
                loss = _loss(calibration(trial), data)
                if loss < best:
                    values, best, improved = trial, loss, True
        if not improved:
            steps = {name: step / 2 for name, step in steps.items()}
    return calibration(
        {
            name: round(value * 1e7) / 1e7 if name == "collective_latency_s" else round(value, 4)
            for name, value in values.items()
        }
    )
