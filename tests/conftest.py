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
