"""The paper's published measurements the estimate may be fitted to (../shared/reference/paper.md §5;
docs/paper-model.md §5): Table 2 and Appendix D's TPU runs. The published values appear here and
nowhere else; `layouts.cost.calibration` fits to them and `layouts.cost.paper_reproduction` prints
the estimate beside them.

Appendix D ran PaLM 540B (heads padded to 64, the paper's inference variant) and MT-NLG 530B on 64
TPU v4 chips as 4×4×4, 2D weight-stationary in both phases, bf16 weights; PaLM's multiquery
attention over the heads in prefill and over the batch in decode (split over as many of the mesh
axes as the batch divides, `layouts.fit`), MT-NLG's multihead attention over the heads. Its PaLM
rows are the prefill and the generation apart; its MT-NLG rows the total of both.
"""

import dataclasses
import functools

from layouts.cost.terms import PhasePasses, phase_passes
from layouts.fit import fit
from layouts.hardware import get_chip
from layouts.layout import Partitioning
from layouts.registry import get_partitioning
from layouts.workload import Workload
from zoo.presets import get_preset

TOTAL = "total"  # a row that times prefill and decode together


@dataclasses.dataclass(frozen=True)
class PublishedRun:
    """One of the paper's measured configurations: `phase` of `workload` ("prefill", "decode" or
    "total", both) for `model` under the FFN layout and `attention` on 64 TPU v4 chips as `mesh`,
    with the published latency in seconds (prefill: the whole prompt; decode: every step) and MFU.
    `table` names where it was published (what cross-validation holds out)."""

    table: str
    model: str
    phase: str
    layout: str
    attention: str
    mesh: tuple[int, int, int]
    workload: Workload
    latency_s: float
    mfu: float
    decode_attention: str | None = None  # where decode's attention differs from prefill's

    @property
    def phases(self) -> tuple[str, ...]:
        return ("prefill", "decode") if self.phase == TOTAL else (self.phase,)

    def partitioning(self, phase: str | None = None) -> Partitioning:
        attention = self.decode_attention if phase == "decode" and self.decode_attention else self.attention
        return fit(get_partitioning(self.layout, attention, get_preset(self.model)), self.mesh, self.workload.batch)

    def passes(self) -> tuple[PhasePasses, ...]:
        """The cost model's terms of each phase the row times (computed once: every fit and
        cross-validation fold reads them, only the calibration combining them changes)."""
        return _passes(self)

    @property
    def name(self) -> str:
        w = self.workload
        return f"{self.table} {self.model} {self.phase} batch {w.batch}, {w.input_len} in, {w.gen_tokens} out"


@functools.cache
def _passes(run: PublishedRun) -> tuple[PhasePasses, ...]:
    return tuple(phase_passes(run.partitioning(phase), get_chip("tpu-v4"), run.mesh, run.workload, phase) for phase in run.phases)


# Table 2: PaLM 540B (heads padded to 64), 64 TPU v4 chips as 4×4×4, 2048-token prompts, 64 generated tokens.
TABLE_2: dict[str, PublishedRun] = {
    "low-latency prefill": PublishedRun("Table 2", "palm-540b-64h", "prefill", "2d-ws", "heads", (4, 4, 4), Workload(1, 2048, 2048, 64, "int8"), 0.29, 0.43),
    "low-latency decode": PublishedRun("Table 2", "palm-540b-64h", "decode", "2d-ws", "batch", (4, 4, 4), Workload(64, 2048, 2048, 64, "int8"), 1.82, 0.14),
    "high-throughput prefill": PublishedRun("Table 2", "palm-540b-64h", "prefill", "wg-xyz", "batch", (4, 4, 4), Workload(512, 2048, 2048, 64, "bf16"), 85.2, 0.76),
    "high-throughput decode": PublishedRun("Table 2", "palm-540b-64h", "decode", "2d-ws", "batch", (4, 4, 4), Workload(512, 2048, 2048, 64, "bf16"), 6.0, 0.33),
}

# Appendix D, per table (input tokens, generated tokens): per batch, milliseconds and the paper's MFU
# for PaLM's prefill, PaLM's generation and MT-NLG's total.
_APPENDIX_D = {
    "D.2": (20, 8, {
        4: (34, 0.14, 255, 0.01, 289, 0.02), 8: (40, 0.25, 226, 0.02, 304, 0.04), 16: (58, 0.34, 234, 0.03, 339, 0.08),
        32: (99, 0.40, 235, 0.07, 420, 0.13), 64: (186, 0.42, 265, 0.12, 532, 0.20), 128: (356, 0.44, 312, 0.20, 740, 0.29),
        256: (668, 0.47, 415, 0.30, 1151, 0.38), 512: (1366, 0.46, 671, 0.37, 2151, 0.40), 1024: (2785, 0.45, 1257, 0.40, 4082, 0.42),
    }),
    "D.3": (60, 20, {
        4: (50, 0.29, 640, 0.01, 678, 0.03), 8: (80, 0.37, 574, 0.02, 728, 0.05), 16: (153, 0.39, 602, 0.03, 838, 0.09),
        32: (270, 0.44, 626, 0.06, 1058, 0.15), 64: (501, 0.47, 717, 0.11, 1275, 0.24), 128: (985, 0.48, 829, 0.19, 1902, 0.32),
        256: (2041, 0.46, 1114, 0.28, 3189, 0.39), 512: (4167, 0.45, 1743, 0.36, 6210, 0.40), 1024: (8349, 0.45, 3260, 0.39, 12390, 0.40),
    }),
    "D.4": (128, 8, {
        4: (81, 0.39, 258, 0.01, 338, 0.10), 8: (149, 0.42, 234, 0.02, 384, 0.16), 16: (287, 0.44, 253, 0.03, 540, 0.23),
        32: (536, 0.47, 263, 0.06, 799, 0.33), 64: (1056, 0.48, 317, 0.10, 1372, 0.39), 128: (2202, 0.46, 381, 0.17, 2583, 0.45),
        256: (4479, 0.45, 431, 0.29, 4911, 0.45), 512: (8913, 0.45, 734, 0.34, 9647, 0.43), 1024: (17766, 0.45, 1370, 0.37, 19136, 0.43),
    }),
}  # fmt: skip


def _appendix_d() -> tuple[PublishedRun, ...]:
    runs = []
    for table, (input_len, gen_tokens, rows) in _APPENDIX_D.items():
        for batch, (prefill, prefill_mfu, generate, generate_mfu, total, total_mfu) in rows.items():
            workload = Workload(batch, input_len, input_len, gen_tokens, "bf16")
            palm = dict(table=table, model="palm-540b-64h", layout="2d-ws", attention="heads", mesh=(4, 4, 4), workload=workload)
            runs.append(PublishedRun(phase="prefill", latency_s=prefill / 1e3, mfu=prefill_mfu, **palm))
            runs.append(PublishedRun(phase="decode", latency_s=generate / 1e3, mfu=generate_mfu, decode_attention="batch", **palm))
            runs.append(PublishedRun(table, "mtnlg-530b", TOTAL, "2d-ws", "heads", (4, 4, 4), workload, total / 1e3, total_mfu))
    return tuple(runs)


APPENDIX_D: tuple[PublishedRun, ...] = _appendix_d()
