"""The paper reproduced: every number of docs/paper-model.md §5 and the Fig. 3 volumes of §4, and
every row of Appendix D, recomputed by the estimator beside the published value, with the relative
error of each and the median and maximum over all. Latencies the calibration was fitted to are
in-sample; Appendix D's rows also carry the cross-validated estimate (`calibration.cross_validate`:
each table held out in turn, and MT-NLG held out), the honest measure of the model. The published
values appear here and in `layouts.cost.published`, nowhere else."""

import dataclasses
import math
import statistics

from layouts.builtin import ATTENTION_LAYOUTS, FFN_LAYOUTS
from layouts.cost.calibration import cross_validate, describe_errors, get_mode, run_seconds
from layouts.cost.published import APPENDIX_D, TABLE_2, PublishedRun
from layouts.cost.terms import axis_ways, kv_cache_bytes, phase_template
from layouts.cost.estimator import estimate_phase
from layouts.hardware import get_chip
from layouts.layout import Partitioning
from layouts.mesh import parse_mesh
from zoo.config import ModelConfig
from zoo.presets import get_preset


@dataclasses.dataclass(frozen=True)
class Comparison:
    quantity: str
    unit: str
    published: float
    estimate: float
    # Appendix D: the estimate of the fit that held this row's table out (calibrated mode only).
    held_out: float | None = None

    @property
    def relative_error(self) -> float:
        return self.estimate / self.published - 1

    @property
    def held_out_error(self) -> float | None:
        return None if self.held_out is None else self.held_out / self.published - 1


@dataclasses.dataclass(frozen=True)
class Reproduction:
    mode: str
    comparisons: tuple[Comparison, ...]
    # Per cross-validation scheme ("tables", "models"): the held-out rows' relative errors.
    cross_validated: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)

    @property
    def median_error(self) -> float:
        return statistics.median(abs(c.relative_error) for c in self.comparisons)

    @property
    def max_error(self) -> float:
        return max(abs(c.relative_error) for c in self.comparisons)

    def appendix_d(self) -> tuple[Comparison, ...]:
        return tuple(c for c in self.comparisons if c.quantity.startswith("App. D"))


def longest_context(model: str, attention: str, *, chips: int, batch: int, kv_fraction: float, target: str = "tpu-v4", mesh: str = "4x4x4") -> int:
    """The longest context whose bf16 KV cache fits in `kv_fraction` of one chip's HBM, with the
    FFN in 2D weight-stationary and attention as `attention` (Table 1)."""
    config = get_preset(model)
    template = phase_template(Partitioning(FFN_LAYOUTS["2d-ws"], ATTENTION_LAYOUTS[attention], config), "decode")
    shape = parse_mesh(mesh)
    assert math.prod(shape) == chips
    per_token = template.kv_elements.value(axis_ways(shape), batch, 1, 1) * config.n_layers * 2
    return int(kv_fraction * get_chip(target).hbm_bytes // per_token)


def ffn_volume_bytes(layout: str, *, d_model: int, d_ff: int, tokens: int, mesh: str) -> float:
    """Per-chip bytes one FFN layer (two matrices, bf16) moves under `layout` (Fig. 3)."""
    config = ModelConfig("fig-3", n_layers=1, d_model=d_model, d_ff=d_ff, n_heads=1, n_kv_heads=1, d_head=128, vocab=1, mlp="gelu", block="serial")
    template = phase_template(Partitioning(FFN_LAYOUTS[layout], ATTENTION_LAYOUTS["heads"], config), "prefill")
    ways = axis_ways(parse_mesh(mesh))
    ffn = {"ffn in", "ffn hidden", "ffn out", "mlp.w_in", "mlp.w_out"}
    # B·L as one batch of `tokens` rows of length 1: only the product enters the volumes.
    return sum(c.elements.value(ways, tokens, 1, 1) * 2 for c in template.layer_collectives if c.where in ffn)


# Table 1 (docs/paper-model.md §5): (model, attention, batch) -> published longest context.
TABLE_1 = {
    ("palm-540b-multihead", "heads", 128): 1320,
    ("palm-540b-multihead", "heads", 512): 330,
    ("palm-540b-64h", "heads", 128): 660,
    ("palm-540b-64h", "heads", 512): 165,
    ("palm-540b-64h", "batch", 128): 43_000,
    ("palm-540b-64h", "batch", 512): 10_700,
}
FIGURE_3_GB = {"2d-ws": 0.0671, "wg-x": 0.302, "wg-xy": 1.082, "wg-xyz": 4.295}


def _appendix_d_quantity(run: PublishedRun) -> str:
    model = "MT-NLG" if run.model.startswith("mtnlg") else "PaLM"
    what = {"prefill": "prefill", "decode": "generate", "total": "total"}[run.phase]
    return f"App. {run.table} {model} {what}, batch {run.workload.batch} ({run.workload.input_len} in, {run.workload.gen_tokens} out)"


def _appendix_d(mode: str) -> tuple[list[Comparison], dict[str, tuple[float, ...]]]:
    calibration = get_mode(mode)
    held_out: dict[PublishedRun, float] = {}
    schemes = {}
    if mode == "calibrated":
        for scheme, folds in cross_validate().items():
            errors = []
            for fold in folds:
                for run, error in fold.errors().items():
                    errors.append(error)
                    if scheme == "tables":
                        held_out[run] = run.latency_s * (1 + error)
            schemes[scheme] = tuple(errors)
    comparisons = [
        Comparison(_appendix_d_quantity(run), "ms", run.latency_s * 1e3, run_seconds(calibration, run.passes()) * 1e3, held_out[run] * 1e3 if run in held_out else None)
        for run in APPENDIX_D
    ]
    return comparisons, schemes


def reproduce_paper(mode: str = "calibrated") -> Reproduction:
    comparisons = []
    rows = {}
    for name, run in TABLE_2.items():
        row = rows[name] = estimate_phase(run.partitioning(run.phase), get_chip("tpu-v4"), run.mesh, run.workload, run.phase, mode)
        comparisons.append(Comparison(f"Table 2 {name} latency", "s", run.latency_s, row.latency_s))
        comparisons.append(Comparison(f"Table 2 {name} MFU", "", run.mfu, row.mfu))
    comparisons.append(Comparison("headline decode at batch 64, int8", "ms/token", 29, rows["low-latency decode"].step_time_s * 1000))
    comparisons.append(Comparison("headline large-batch prefill MFU", "", 0.76, rows["high-throughput prefill"].mfu))
    contexts = {}
    for (model, attention, batch), published in TABLE_1.items():
        contexts[model, attention, batch] = longest_context(model, attention, chips=64, batch=batch, kv_fraction=0.3)
        kind = "multihead" if model.endswith("multihead") else f"multiquery over {attention}"
        comparisons.append(Comparison(f"Table 1 longest context, {kind}, batch {batch}", "tokens", published, contexts[model, attention, batch]))
    batch_sharded = contexts["palm-540b-64h", "batch", 128]
    comparisons.append(Comparison("longer context: batch-sharded multiquery vs multihead", "x", 32, batch_sharded / contexts["palm-540b-multihead", "heads", 128]))
    comparisons.append(Comparison("longer context: batch-sharded vs head-sharded multiquery", "x", 64, batch_sharded / contexts["palm-540b-64h", "heads", 128]))
    multihead = get_preset("palm-540b").replace(n_kv_heads=48, d_head=128)
    comparisons.append(Comparison("KV cache, 500B+ multihead, batch 512, context 2048", "TB", 3.0, kv_cache_bytes(multihead, 512, 2048) / 1e12))
    # The multiquery figure is PaLM 540B's own single K/V head of 256.
    comparisons.append(Comparison("KV cache, PaLM 540B multiquery, same batch and context", "TB", 0.13, kv_cache_bytes(get_preset("palm-540b"), 512, 2048) / 1e12))
    for layout, published in FIGURE_3_GB.items():
        volume = ffn_volume_bytes(layout, d_model=16384, d_ff=65536, tokens=2048, mesh="4x4x4")
        comparisons.append(Comparison(f"Fig. 3 per-layer FFN volume, {layout}", "GB", published, volume / 1e9))
    appendix_d, cross_validated = _appendix_d(mode)
    return Reproduction(mode, tuple(comparisons + appendix_d), cross_validated)


def format_reproduction(reproduction: Reproduction) -> str:
    lines = [f"{'quantity':<62} {'unit':>9} {'published':>10} {'estimate':>10} {'error':>7} {'held out':>10} {'error':>7}"]
    for c in reproduction.comparisons:
        held_out = f" {c.held_out:>10.4g} {c.held_out_error:>+7.1%}" if c.held_out is not None else ""
        lines.append(f"{c.quantity:<62} {c.unit:>9} {c.published:>10.4g} {c.estimate:>10.4g} {c.relative_error:>+7.1%}{held_out}")
    appendix_d = reproduction.appendix_d()
    lines.append(f"in-sample, Appendix D: {describe_errors(c.relative_error for c in appendix_d)}")
    names = {"tables": "each Appendix D table held out (fitted on Table 2 and the other two)", "models": "MT-NLG held out (fitted on every PaLM row)"}
    for scheme, errors in reproduction.cross_validated.items():
        lines.append(f"cross-validated, {names[scheme]}: {describe_errors(errors)}")
    lines.append(f"median |error| {reproduction.median_error:.1%}, max |error| {reproduction.max_error:.1%} ({reproduction.mode}, in-sample, every row)")
    return "\n".join(lines)
