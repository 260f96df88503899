"""The paper's analytical cost model, free of any benchmark cell: per-chip terms derived from a
partitioning's rules (`terms`), the calibrated or roofline combination of them (`calibration`), an
estimate of one phase of a workload on a chip and mesh (`estimator`), the prefill chunk that fits
(`chunking`), and the layout search.

    from layouts.cost import Workload, estimate_phase
"""

from layouts.cost.calibration import CALIBRATED, MODES, ROOFLINE, Calibration, get_mode
from layouts.cost.chunking import choose_prefill_chunk
from layouts.cost.estimator import PhaseEstimate, estimate_phase
from layouts.cost.search import Choice, best_choice, paper_layout
from layouts.workload import Workload

__all__ = [
    "CALIBRATED",
    "Calibration",
    "Choice",
    "MODES",
    "PhaseEstimate",
    "ROOFLINE",
    "Workload",
    "best_choice",
    "choose_prefill_chunk",
    "estimate_phase",
    "get_mode",
    "paper_layout",
]
