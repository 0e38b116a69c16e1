"""The other half of the browser smoke run (see test_notebooks_smoke.py): a file of its own so that pytest-xdist
gives it to another worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_notebooks_smoke import NOTEBOOKS, check_notebook

THERE = NOTEBOOKS[1::2]
pytestmark = pytest.mark.browser


@pytest.mark.parametrize("notebook", THERE, ids=[p.name for p in THERE])
def test_notebook_runs_in_browser(jupyter_server, page, notebook: Path) -> None:
    check_notebook(jupyter_server, page, notebook)
