"""The walk benchmark runs end to end in tiny mode (speed itself is reported in RESULTS.md, never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_walk_benchmark_reports_both_paths_and_their_ratio() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.walk", "--tiny", "--steps", "2", "--frames", "5"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=300,
    ).stdout
    rows = {name: line for line in out.splitlines() for name in ("naive loop", "sdnb walk") if line.startswith(f"| {name}")}
    assert set(rows) == {"naive loop", "sdnb walk"}, out
    for line in rows.values():
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] == "5" and float(cells[3]) > 0  # frames, frames/s
    assert re.search(r"ratio \(walk / naive frames/s\): \d+\.\d+x", out)
    assert "device:" in out and "date:" in out
