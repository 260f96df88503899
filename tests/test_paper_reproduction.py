"""The paper reproduced: Table 2 within 10% calibrated, the roofline never slower than published,
the calibration constants are what the fit returns, Appendix D within bounds in-sample and
cross-validated."""

import pytest

from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_cell
from layouts.cost.calibration import CALIBRATED, cross_validate, error_summary, fit
from layouts.cost.published import APPENDIX_D, TABLE_2
from layouts.cost.estimator import estimate_phase
from layouts.hardware import get_chip
from layouts.cost.paper_reproduction import format_reproduction, reproduce_paper


def _estimate(run, mode):
    return estimate_phase(run.partitioning(run.phase), get_chip("tpu-v4"), run.mesh, run.workload, run.phase, mode)


@pytest.mark.parametrize("name", sorted(TABLE_2))
def test_calibrated_reproduces_table_2(name):
    run = TABLE_2[name]
    estimate = _estimate(run, "calibrated")
    assert estimate.latency_s == pytest.approx(run.latency_s, rel=0.10)
    assert estimate.mfu == pytest.approx(run.mfu, rel=0.10)


@pytest.mark.parametrize("name", sorted(TABLE_2))
def test_roofline_is_never_slower_than_published(name):
    run = TABLE_2[name]
    estimate = _estimate(run, "roofline")
    assert estimate.latency_s <= run.latency_s and estimate.mfu >= run.mfu


@pytest.mark.parametrize("name", sorted(TABLE_2))
def test_a_cell_of_the_same_run_gives_the_same_estimate(name):
    run = TABLE_2[name]
    cell = Cell(run.model, chips=64, mesh="4x4x4", phase=run.phase, batch=run.workload.batch, input_len=run.workload.input_len,
                gen_tokens=run.workload.gen_tokens, weights=run.workload.weights, **{f"{run.phase}_layout": run.layout, f"{run.phase}_attention": run.attention})  # fmt: skip
    (row,) = estimate_cell(cell)
    assert row.latency_s == _estimate(run, "calibrated").latency_s


def test_checked_in_factors_are_the_fit():
    assert fit() == CALIBRATED
    # Physical readings: the matmuls and one axis's links reach most of their peak, and a
    # neighbour step of a collective costs microseconds.
    assert 0.7 <= CALIBRATED.flops_efficiency <= 1 and 0.7 <= CALIBRATED.link_efficiency <= 1 and 1e-6 < CALIBRATED.hop_latency_s < 2e-5


def test_appendix_d_has_every_published_row():
    assert len(APPENDIX_D) == 3 * 9 * 3
    assert {(run.model, run.phase) for run in APPENDIX_D} == {("palm-540b-64h", "prefill"), ("palm-540b-64h", "decode"), ("mtnlg-530b", "total")}
    # At batch 4 decode splits the batch over as many mesh axes as it divides (z alone).
    small = next(run for run in APPENDIX_D if run.phase == "decode" and run.workload.batch == 4)
    assert small.partitioning("decode").attention.batch_axes == ("z",)


def test_cross_validated_errors_on_appendix_d():
    folds = cross_validate()
    for scheme, bound_median, bound_max in (("tables", 0.10, 0.25), ("models", 0.10, 0.25)):
        errors = [error for fold in folds[scheme] for error in fold.errors().values()]
        median, worst = error_summary(errors)
        assert median <= bound_median and worst <= bound_max, (scheme, median, worst)
    assert sum(len(fold.held_out) for fold in folds["tables"]) == len(APPENDIX_D)
    # The held-out fits differ from the full one: the held-out rows were not seen.
    assert all(fold.calibration != CALIBRATED for fold in folds["tables"])


def test_reproduction_table():
    reproduction = reproduce_paper()
    assert len(reproduction.comparisons) == 24 + len(APPENDIX_D)
    paper = [c for c in reproduction.comparisons if c not in reproduction.appendix_d()]
    median, worst = error_summary(c.relative_error for c in paper)
    assert median < 0.03 and worst < 0.10
    median, worst = error_summary(c.relative_error for c in reproduction.appendix_d())
    assert median < 0.05 and worst < 0.20
    assert all(c.held_out is not None for c in reproduction.appendix_d())
    text = format_reproduction(reproduction)
    assert "Fig. 3 per-layer FFN volume, wg-xyz" in text and "App. D.4 MT-NLG total, batch 1024" in text
    assert "cross-validated, each Appendix D table held out" in text and "cross-validated, MT-NLG held out" in text
    assert text.splitlines()[-1].startswith("median |error|")
