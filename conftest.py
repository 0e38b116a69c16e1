"""Defaults for every test and every notebook nbval runs: tiny mode, offline, outputs in a temp folder."""

import os
import tempfile

os.environ.setdefault("SDNB_TINY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("SDNB_OUTPUT_DIR", tempfile.mkdtemp(prefix="sdnb-test-outputs-"))
os.environ.setdefault("MPLBACKEND", "Agg")
