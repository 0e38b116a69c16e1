"""Shared fixtures: a fresh output folder per test; tiny models cached once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "outputs"
    monkeypatch.setenv("SDNB_OUTPUT_DIR", str(out))
    monkeypatch.setenv("SDNB_TINY", "1")
    return out


@pytest.fixture(scope="session")
def pipe():
    """The tiny SD 1.5 pipeline, loaded once."""
    from sdnb.models import load_pipeline

    return load_pipeline("sd15")


def pytest_terminal_summary(terminalreporter) -> None:
    """One line with the robustness counts (inputs tried, faults injected, files lost)."""
    import sys

    module = sys.modules.get("test_robustness") or sys.modules.get("tests.test_robustness")
    stats = getattr(module, "STATS", None)
    if stats:
        terminalreporter.write_line(
            f"robustness: {stats['inputs']} bad inputs tried, {stats['faults']} faults injected, "
            f"{stats['lost']} files lost"
        )
