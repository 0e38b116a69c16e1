"""Notebooks are committed clean: outputs stripped, Colab metadata kept, a correct badge, install on Colab only."""

import json
import re
from pathlib import Path

import pytest

from sdnb.settings import colab_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_numbered_in_teaching_order() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names and all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names)
    assert names[:2] == ["00_setup_and_login.ipynb", "01_txt2img.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_clean_with_colab_metadata(path: Path) -> None:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: outputs not stripped"
            assert cell["execution_count"] is None, f"{path.name}: execution count not cleared"
    assert nb["metadata"]["accelerator"] == "GPU"
    assert nb["metadata"]["colab"]["gpuType"] == "T4"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_points_to_its_own_path_and_install_is_colab_only(path: Path) -> None:
    nb = json.loads(path.read_text())
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith("# "), "first cell starts with the title"
    assert f"]({colab_url('notebooks/' + path.name)})" in first
    assert "You will learn" in first and "Time:" in first
    badges = re.findall(r"colab\.research\.google\.com/github/[^)\s]+", path.read_text())
    assert badges and all(b.endswith(f"notebooks/{path.name}") for b in badges)
    install = "".join(nb["cells"][1]["source"])
    assert '"google.colab" in sys.modules' in install and "pip" in install
