"""Defaults for every test and every notebook nbval runs: tiny mode, offline, outputs in a temp folder."""

import os
import tempfile

os.environ.setdefault("SDNB_TINY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("SDNB_OUTPUT_DIR", tempfile.mkdtemp(prefix="sdnb-test-outputs-"))


def pytest_collection_modifyitems(config, items):
    """Skip tests that need real weights or a GPU, with one line that says why."""
    import pytest

    real = os.environ.get("SDNB_REAL", "") == "1"
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    for item in items:
        if "real" in item.keywords and not real:
            item.add_marker(pytest.mark.skip(reason="needs real model weights from the hub: set SDNB_REAL=1 online"))
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
