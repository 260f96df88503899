"""How the cost model's terms become seconds: the roofline (the paper's idealised lower bound) and
the calibrated model, whose few factors are fitted to the paper's published measurements
(`layouts.cost.published`: Table 2 and Appendix D) and nothing else.

Per stage (one layer, or the output head), with c, m the compute and HBM seconds at the chip's
peaks, k the interconnect seconds over the links each collective's phases use
(`layouts.interconnect`), k_paper the same bytes over all of a chip's links at once (the paper's
formulas), and h the neighbour steps of those phases:

    roofline    t = max(c, m, k_paper)                 everything overlaps perfectly
    calibrated  t = max(c / η_flops, m / η_hbm) + k / η_link + h · α_hop

The calibrated form is the physical reading of the measurements: matmuls stream their weights from
HBM while they compute (so compute and memory overlap), but a collective and the matmul that needs
its result do not (so communication adds; with collective matmul on, the looped part hides behind
its matmuls, `layouts.cost.terms._stage`), a phase of a collective runs on one torus axis's links at
a fraction of their peak, and every neighbour step of a phase pays a fixed latency (synchronisation
and the link's hop), which dominates small-batch decode. No factor depends on the model, the layout,
the batch or the cell.

The fit (`fit()`; tests/test_paper_reproduction.py checks that the constants below are its result):
least squares on log(estimated / published latency) over every published row, by a deterministic
pattern search within physical bounds (efficiencies in [0.3, 1], α_hop in [0, 20 µs]). Three
factors are free: η_flops (set by the compute-bound prefills), η_link (by the communication-heavy
prefills at small batch and decode at large batch) and α_hop (by decode at small batch). η_hbm
stays 1: small-batch decode is the only memory-bound regime, and there it cannot be told apart from
the latency. `cross_validate()` refits on all but one table (or on PaLM alone) and scores the rest.
"""

import dataclasses
import math
import statistics

from layouts.cost.published import APPENDIX_D, TABLE_2, PublishedRun
from layouts.cost.terms import PassTerms, StageTerms
from layouts.hardware import Chip
from zoo.errors import ZooError


@dataclasses.dataclass(frozen=True)
class Calibration:
    name: str
    flops_efficiency: float = 1.0  # η_flops: achieved fraction of peak bf16 FLOP/s in the matmuls
    hbm_efficiency: float = 1.0  # η_hbm: achieved fraction of HBM bandwidth
    link_efficiency: float = 1.0  # η_link: achieved fraction of a torus axis's link bandwidth
    hop_latency_s: float = 0.0  # α_hop: fixed cost of each neighbour step of a collective
    overlap_communication: bool = True  # roofline: communication hides behind compute or memory

    def stage_seconds(self, stage: StageTerms, chip: Chip) -> float:
        compute = stage.compute_seconds(chip) / self.flops_efficiency
        memory = stage.memory_seconds(chip) / self.hbm_efficiency
        if self.overlap_communication:
            return max(compute, memory, stage.paper_comm_seconds / self.link_efficiency) + stage.hops * self.hop_latency_s
        return max(compute, memory) + stage.comm_seconds / self.link_efficiency + stage.hops * self.hop_latency_s

    def pass_seconds(self, terms: PassTerms, chip: Chip) -> float:
        return terms.layers * self.stage_seconds(terms.layer, chip) + self.stage_seconds(terms.head, chip)


ROOFLINE = Calibration("roofline")

# The result of fit(), checked into code (tests assert fit() still returns these).
CALIBRATED = Calibration(
    "calibrated",
    flops_efficiency=0.8585,
    hbm_efficiency=1.0,
    link_efficiency=0.9759,
    hop_latency_s=6.34e-6,
    overlap_communication=False,
)

MODES: dict[str, Calibration] = {"roofline": ROOFLINE, "calibrated": CALIBRATED}


def get_mode(name: str) -> Calibration:
    if name not in MODES:
        raise ZooError(f"unknown estimate mode {name!r}; valid: {', '.join(MODES)}")
    return MODES[name]


def published_runs() -> tuple[PublishedRun, ...]:
    """Every row the calibration is fitted to."""
    return tuple(TABLE_2.values()) + APPENDIX_D


def run_seconds(calibration: Calibration, passes) -> float:
    """The latency `calibration` gives a published row: the sum over its phases of every pass."""
    return sum(calibration.pass_seconds(phase.mean, phase.chip) * phase.passes for phase in passes)


_BOUNDS = {
    "flops_efficiency": (0.3, 1.0),
    "hbm_efficiency": (0.3, 1.0),
    "link_efficiency": (0.3, 1.0),
    "hop_latency_s": (0.0, 20e-6),
}
FREE_FACTORS = ("flops_efficiency", "link_efficiency", "hop_latency_s")
_RESOLUTION = {"hop_latency_s": 0.01e-6}  # the rounding of the checked-in constants; 0.0001 in efficiency


def _loss(calibration: Calibration, data) -> float:
    return sum(math.log(run_seconds(calibration, passes) / published) ** 2 for passes, published in data)


def fit(runs: tuple[PublishedRun, ...] | None = None, free: tuple[str, ...] = FREE_FACTORS) -> Calibration:
    """Refit the calibrated factors named in `free` to the published latencies of `runs` (default:
    all of them; see the module docstring): a pattern search that halves its steps until they are
    below the rounding used for the checked-in constants."""
    data = [(run.passes(), run.latency_s) for run in (published_runs() if runs is None else runs)]
    values = {name: 1.0 for name in ("flops_efficiency", "hbm_efficiency", "link_efficiency")} | {"hop_latency_s": 0.0}
    steps = {name: (high - low) / 4 for name, (low, high) in _BOUNDS.items()}

    def calibration(values) -> Calibration:
        return dataclasses.replace(CALIBRATED, **values)

    best = _loss(calibration(values), data)
    while any(steps[name] > _RESOLUTION.get(name, 1e-4) for name in free):
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
    return calibration({name: round(value * 1e8) / 1e8 if name == "hop_latency_s" else round(value, 4) for name, value in values.items()})


@dataclasses.dataclass(frozen=True)
class Fold:
    """One cross-validation split: `calibration` fitted on every row but those of `held_out`, which it scores."""

    name: str
    held_out: tuple[PublishedRun, ...]
    calibration: Calibration

    def errors(self) -> dict[PublishedRun, float]:
        return {run: run_seconds(self.calibration, run.passes()) / run.latency_s - 1 for run in self.held_out}


def cross_validate() -> dict[str, tuple[Fold, ...]]:
    """Two schemes over Appendix D: each of its tables held out in turn (fitted on Table 2 and the
    other two), and MT-NLG held out (fitted on every PaLM row)."""
    runs = published_runs()
    tables = sorted({run.table for run in APPENDIX_D})
    by_table = tuple(Fold(f"{table} held out", tuple(r for r in APPENDIX_D if r.table == table), fit(tuple(r for r in runs if r.table != table))) for table in tables)
    mtnlg = tuple(r for r in runs if r.model.startswith("mtnlg"))
    by_model = (Fold("MT-NLG held out", mtnlg, fit(tuple(r for r in runs if r not in mtnlg))),)
    return {"tables": by_table, "models": by_model}


def error_summary(errors) -> tuple[float, float]:
    """The median and the maximum |relative error|."""
    magnitudes = [abs(error) for error in errors]
    return statistics.median(magnitudes), max(magnitudes)


def describe_errors(errors) -> str:
    """`median |error| 3.3%, max |error| 16.1% over 81`."""
    errors = list(errors)
    median, worst = error_summary(errors)
    return f"median |error| {median:.1%}, max |error| {worst:.1%} over {len(errors)}"
