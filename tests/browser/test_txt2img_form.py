"""Notebook 01's form in a real browser: Run All, edit the form, Generate, then Stop a long run."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import lab
import pytest

from sdnb.images import parse_infotext, read_infotext

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser


def _pngs(folder: Path, seed_from: int, seed_to: int) -> list[Path]:
    found = []
    for p in folder.glob("*.png"):
        m = re.fullmatch(r"\d{5}-(\d+)\.png", p.name)
        if m and seed_from <= int(m.group(1)) < seed_to:
            found.append(p)
    return sorted(found)


def test_txt2img_form_generate_and_stop(jupyter_server, page) -> None:
    url, token, root = jupyter_server
    (root / "notebooks").mkdir(exist_ok=True)
    shutil.copyfile(REPO_ROOT / "notebooks" / "01_txt2img.ipynb", root / "notebooks" / "01_txt2img.ipynb")
    out = jupyter_server.output_dir / "txt2img"

    lab.open_notebook(page, url, token, "notebooks/01_txt2img.ipynb")
    lab.run_all(page)
    lab.wait_idle(page, timeout=240)
    assert lab.cell_errors(page) == []
    form = page.locator("button.jupyter-button", has_text="Generate")
    form.wait_for()
    lab.scroll_into_view(page, form)
    lab.screenshot(page, "01-form")

    # a new prompt and seed, then Generate: a new image in the page and a PNG with those parameters on disk
    lab.set_widget_text(page, "Prompt", "a lighthouse drawn in a browser test")
    lab.set_widget_text(page, "Seed", 4242)
    before = lab.count_images(page)
    lab.click_button(page, "Generate")
    lab.wait_for_output_text(page, "Done: 1 image(s), seeds [4242]", timeout=120)
    assert lab.wait_for_new_image(page, before, timeout=30) > before
    lab.wait_for_output_text(page, re.compile(r"seed 4242 → .*\.png"), timeout=30)
    [png] = _pngs(out, 4242, 4243)
    info = parse_infotext(read_infotext(png))
    assert info.prompt == "a lighthouse drawn in a browser test" and info.settings["Seed"] == "4242"
    lab.screenshot(page, "02-generated")

    # a long run, stopped after the first images: it stops and keeps what finished
    lab.set_widget_text(page, "Seed", 7000)
    lab.set_widget_text(page, "Steps", 30)
    lab.set_widget_text(page, "Batch count", 100)
    lab.click_button(page, "Generate")
    lab.wait_for_output_text(page, re.compile(r"Steps: (6\d|[7-9]\d|\d{3,})/3000"), timeout=120)
    lab.click_button(page, "Stop")
    message = lab.wait_for_output_text(page, re.compile(r"Stopped: \d+ image\(s\)"), timeout=60)
    kept = int(re.search(r"Stopped: (\d+)", message).group(1))
    time.sleep(1.0)  # a run that ignored Stop would keep writing
    files = _pngs(out, 7000, 7100)
    assert 1 <= kept < 100 and len(files) == kept
    assert all(parse_infotext(read_infotext(f)).settings["Steps"] == "30" for f in files)
    page.locator("button.jupyter-button:not([disabled])", has_text="Generate").wait_for(timeout=10_000)
    lab.screenshot(page, "03-stopped")
    assert lab.cell_errors(page) == []
