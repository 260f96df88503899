"""Plots of a matrix as PNG: the latency/cost Pareto frontier (the paper's Figure 1) and per-chip
memory by layout."""

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from layouts.bench.output_folder import atomic_path  # noqa: E402
from layouts.bench.result_row import ResultRow  # noqa: E402


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not strictly dominated (another point at most as bad on both axes and better on one),
    sorted by the first coordinate."""
    front = [
        point for point in points
        if not any(other[0] <= point[0] and other[1] <= point[1] and other != point for other in points)
    ]  # fmt: skip
    return sorted(set(front))


def latency_cost_plot(rows: list[ResultRow], path: Path) -> bool:
    """Decode latency per token against cost (chip-ms per token), one colour per model, the
    frontier of each model drawn as a line. False when no row has both numbers."""
    by_model: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        if row.status == "ok" and row.phase == "decode" and row.step_time_s and row.cost_chip_ms_per_token:
            by_model[f"{row.model} ({row.source})"].append((row.step_time_s * 1000, row.cost_chip_ms_per_token))
    if not by_model:
        return False
    figure, axes = plt.subplots(figsize=(7, 5))
    for label, points in sorted(by_model.items()):
        xs, ys = zip(*points)
        scatter = axes.scatter(xs, ys, s=12, alpha=0.5)
        front = pareto_front(points)
        axes.plot([p[0] for p in front], [p[1] for p in front], "-o", color=scatter.get_facecolor()[0], markersize=4, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("decode latency per token (ms)")
    axes.set_ylabel("cost (chip-ms per token)")
    axes.set_title("Latency against cost: Pareto frontier per model")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
    return True


def memory_plot(rows: list[ResultRow], path: Path) -> bool:
    """Per-chip memory (weights, KV cache, other) by layout for each model and phase, from compiled
    programs where present, else estimates."""
    chosen: dict[tuple, ResultRow] = {}
    for row in rows:
        if row.status != "ok" or row.memory_per_chip_bytes.get("weights") is None or row.source == "run":
            continue
        key = (row.model, row.phase, row.layout, row.attention, row.batch, row.weights)
        if key not in chosen or row.source == "compile":
            chosen[key] = row
    if not chosen:
        return False
    labels, weights, cache, other, hbm = [], [], [], [], []
    for key in sorted(chosen):
        row = chosen[key]
        memory = row.memory_per_chip_bytes
        labels.append(f"{row.model} {row.phase} {row.layout}/{row.attention} b{row.batch} ({row.source[0]})")
        weights.append((memory["weights"] or 0) / 2**30)
        cache.append((memory["kv_cache"] or 0) / 2**30)
        other.append(max(memory["other"] or 0, 0) / 2**30)
        hbm.append((row.hbm_bytes or 0) / 2**30)
    figure, axes = plt.subplots(figsize=(8, 0.3 * len(labels) + 1.5))
    positions = range(len(labels))
    axes.barh(positions, weights, label="weights")
    axes.barh(positions, cache, left=weights, label="KV cache")
    axes.barh(positions, other, left=[w + c for w, c in zip(weights, cache)], label="other")
    if any(hbm):
        axes.scatter(hbm, positions, marker="|", color="black", s=120, label="HBM per chip")
    axes.set_yticks(list(positions), labels, fontsize=7)
    axes.set_xlabel("GiB per chip")
    axes.set_title("Per-chip memory by layout (c = compiled, e = estimated)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
    return True
