"""Golden snapshots, one file per built-in layout: tensor -> logical names -> PartitionSpec ->
per-chip shape, for the tiny models on a 2×2×2 mesh. A change shows as a readable line diff.

To accept an intended change: LAYOUTZOO_UPDATE_GOLDEN=1 pytest tests/test_golden_placements.py
"""

import os
from pathlib import Path

import pytest

from layouts import ATTENTION_LAYOUTS, FFN_LAYOUTS, Partitioning
from layouts.introspect import describe
from zoo import get_preset

GOLDEN = Path(__file__).parent / "golden"


def _names(names) -> str:
    return "(" + ", ".join("-" if name is None else name for name in names) + ")"


def snapshot(ffn: str) -> list[str]:
    lines = [f"# layout {ffn} on mesh x=2 y=2 z=2; batch 8, context 16", ""]
    for model in ("palm-tiny", "mtnlg-tiny"):
        for attention in ("heads", "batch"):
            report = describe(Partitioning(FFN_LAYOUTS[ffn], ATTENTION_LAYOUTS[attention], get_preset(model)), (2, 2, 2), batch=8, context_len=16)
            lines.append(f"## {model} + {attention}")
            rows = report.weights + report.cache if attention == "heads" else report.cache
            for placement in rows:
                spec = ", ".join("-" if entry is None else entry if isinstance(entry, str) else "".join(entry) for entry in placement.spec)
                lines.append(
                    f"{placement.path:28s} {_names(placement.names):58s} [{spec}] "
                    f"{placement.shape} -> {placement.per_chip_shape} {placement.per_chip_bytes} B"
                )
            lines.append(f"per chip: weights {report.weight_bytes_per_chip} B, kv cache {report.cache_bytes_per_chip} B")
            lines.append("")
    return lines


@pytest.mark.parametrize("ffn", sorted(FFN_LAYOUTS))
def test_placements_match_the_golden_snapshot(ffn):
    path = GOLDEN / f"{ffn}.txt"
    got = snapshot(ffn)
    if os.environ.get("LAYOUTZOO_UPDATE_GOLDEN"):
        path.write_text("\n".join(got) + "\n")
    assert path.exists(), f"no golden file {path}; run with LAYOUTZOO_UPDATE_GOLDEN=1 once and review it"
    assert got == path.read_text().splitlines()
