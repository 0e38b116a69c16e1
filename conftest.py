"""Defaults for every test and every notebook nbval runs: tiny mode, offline, outputs in a temp folder.

A canary Hugging Face token is set for the whole session; every nbval cell's outputs are scanned for it
(see ``pytest_runtest_makereport``) and tests/test_auth.py greps every file the notebooks wrote.
"""

import json
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("SDNB_TINY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("SDNB_OUTPUT_DIR", tempfile.mkdtemp(prefix="sdnb-test-outputs-"))
os.environ.setdefault("HF_TOKEN", "hf_sdnbCanaryTokenThatMustNeverBeShown0123")
#: Where the notebooks run by nbval write, and the token they must never show.
NOTEBOOK_OUTPUT_DIR = os.environ["SDNB_OUTPUT_DIR"]
CANARY = os.environ["HF_TOKEN"]
#: notebooks/zh/ holds the English notebooks' code cells exactly (tests/test_zh_notebooks.py checks it, with
#: scripts/sync_zh.py), so nbval does not run them a second time.
collect_ignore = ["notebooks/zh"]


def pytest_configure(config):
    config.sdnb_nbval = {"cells": 0, "notebooks": set(), "leaks": [], "output_dir": NOTEBOOK_OUTPUT_DIR,
                         "canary": CANARY}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """For nbval cells: fail the cell if its outputs contain the token; after a notebook's last cell, fail it if
    any file written so far contains the token (so the check runs on whichever worker runs the notebook)."""
    outcome = yield
    outputs = getattr(item, "test_outputs", None)
    if call.when != "call" or type(item).__name__ != "IPyNbCell" or outputs is None:
        return
    state = item.config.sdnb_nbval
    state["cells"] += 1
    state["notebooks"].add(os.path.basename(str(item.fspath)))
    report = outcome.get_result()
    if CANARY in json.dumps(outputs, default=str):
        state["leaks"].append(item.nodeid)
        report.outcome = "failed"
        report.longrepr = f"the Hugging Face token appears in the outputs of {item.nodeid}"
    elif item.nodeid in state.get("last_cells", ()):
        written = [p for p in Path(NOTEBOOK_OUTPUT_DIR).rglob("*") if p.is_file()]
        leaked = [str(p) for p in written if CANARY.encode() in p.read_bytes()]
        if leaked:
            state["leaks"] += leaked
            report.outcome = "failed"
            report.longrepr = f"the Hugging Face token appears in files the notebooks wrote: {leaked}"


def pytest_collection_modifyitems(config, items):
    """Skip tests that need real weights or a GPU, with one line that says why; note each notebook's last cell."""
    real = os.environ.get("SDNB_REAL", "") == "1"
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    last = {str(item.fspath): item.nodeid for item in items if type(item).__name__ == "IPyNbCell"}
    config.sdnb_nbval["last_cells"] = set(last.values())
    for item in items:
        if "real" in item.keywords and not real:
            item.add_marker(pytest.mark.skip(reason="needs real model weights from the hub: set SDNB_REAL=1 online"))
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
