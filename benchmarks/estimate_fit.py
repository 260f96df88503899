"""The calibrated estimate's fit (issue 15): its factors and what they mean, the error on every
published row in-sample and cross-validated (each Appendix D table held out in turn, fitted on
Table 2 and the other two; MT-NLG held out, fitted on every PaLM row), and the ranking of every
built-in layout for PaLM 540B decode at batch 64 and 512 on 64, 128 and 256 TPU v4 chips.

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/estimate_fit.py [--rows]
"""

import argparse
import time

from layouts.bench.cell import Cell
from layouts.bench.estimate_rows import estimate_or_error_rows
from layouts.builtin import FFN_LAYOUTS
from layouts.cost.calibration import CALIBRATED, cross_validate, describe_errors, fit, published_runs, run_seconds

MEANING = {
    "flops_efficiency": "η_flops: fraction of peak bf16 FLOP/s the matmuls reach",
    "hbm_efficiency": "η_hbm: fraction of HBM bandwidth (held at 1)",
    "link_efficiency": "η_link: fraction of one torus axis's link bandwidth a collective phase reaches",
    "hop_latency_s": "α_hop: seconds per neighbour step of a collective phase",
}


def _factors(calibration) -> str:
    return ", ".join(f"{name} {getattr(calibration, name):.4g}" for name in MEANING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", action="store_true", help="print every published row's errors")
    show_rows = parser.parse_args().rows

    started = time.perf_counter()
    fitted = fit()
    print(f"fit in {time.perf_counter() - started:.2f} s; checked in: {'yes' if fitted == CALIBRATED else 'NO, differs'}")
    for name, meaning in MEANING.items():
        print(f"  {getattr(fitted, name):>10.4g}  {meaning}")

    runs = published_runs()
    in_sample = {run: run_seconds(fitted, run.passes()) / run.latency_s - 1 for run in runs}
    appendix_d = [run for run in runs if run.table.startswith("D.")]
    print(f"in-sample, Table 2: {describe_errors([in_sample[run] for run in runs if run.table == 'Table 2'])}")
    print(f"in-sample, Appendix D: {describe_errors([in_sample[run] for run in appendix_d])}")

    held_out = {}
    for scheme, folds in cross_validate().items():
        errors = []
        for fold in folds:
            fold_errors = fold.errors()
            errors += fold_errors.values()
            print(f"  {fold.name}: {_factors(fold.calibration)}; {describe_errors(list(fold_errors.values()))}")
            if scheme == "tables":
                held_out.update(fold_errors)
        print(f"cross-validated ({scheme}): {describe_errors(errors)}")

    if show_rows:
        print(f"\n{'row':<66} {'published':>10} {'in-sample':>9} {'held out':>9}")
        for run in runs:
            out = f"{held_out[run]:>+9.1%}" if run in held_out else f"{'-':>9}"
            print(f"{run.name:<66} {run.latency_s * 1e3:>8.0f}ms {in_sample[run]:>+9.1%} {out}")

    print("\nPaLM 540B (64 heads) decode, 2048-token context, TPU v4, attention over the batch: step time (ms), the estimate's mesh")
    for batch, weights in ((64, "int8"), (64, "bf16"), (512, "bf16")):
        for chips in (64, 128, 256):
            ranked = []
            for layout in FFN_LAYOUTS:
                (row,) = estimate_or_error_rows(Cell("palm-540b-64h", chips=chips, phase="decode", batch=batch, weights=weights, decode_layout=layout, decode_attention="batch"))
                ranked.append((row.step_time_s or float("inf"), layout, row.mesh, row.fits, row.error))
            ranked.sort(key=lambda item: item[0])
            cells = [f"{layout} {mesh} " + (f"{step * 1e3:.1f}" if error is None else "error") + ("" if fits or error else " (does not fit)") for step, layout, mesh, fits, error in ranked]
            print(f"  batch {batch:>3} {weights:<4} {chips:>3} chips: " + " | ".join(cells))


if __name__ == "__main__":
    main()
