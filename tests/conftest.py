"""Shared fixtures: a fresh output folder per test; tiny models cached once per session."""

from __future__ import annotations

from collections import Counter
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


def _robustness_stats() -> Counter:
    import sys

    module = sys.modules.get("test_robustness") or sys.modules.get("tests.test_robustness")
    return Counter(getattr(module, "STATS", None) or {})


def pytest_sessionfinish(session) -> None:
    """Under pytest-xdist each worker hands its robustness counts to the main process."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["robustness"] = dict(_robustness_stats())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """The main process of pytest-xdist adds up the counts of every worker."""
    totals = node.config.__dict__.setdefault("sdnb_robustness", Counter())
    totals.update(getattr(node, "workeroutput", {}).get("robustness", {}))


def pytest_terminal_summary(terminalreporter) -> None:
    """One line with the robustness counts (inputs tried, faults injected, files lost)."""
    stats = terminalreporter.config.__dict__.get("sdnb_robustness") or _robustness_stats()
    if stats:
        terminalreporter.write_line(
            f"robustness: {stats['inputs']} bad inputs tried, {stats['faults']} faults injected, "
            f"{stats['lost']} files lost"
        )
