"""Notebook 01's form in a real browser: Run All, slider and dice, Generate into the gallery, PNG Info, and Stop
during a plain cell's run (one line, no traceback). Screenshots at 1366 and 900 pixels wide."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import lab
import pytest

from sdnb.images import parse_infotext, read_infotext, save_image
from sdnb.params import Txt2ImgParams, to_infotext

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATE_CELL = 8  # the plain cell that runs app.run(txt2img, ...)
pytestmark = pytest.mark.browser


def _pngs(folder: Path, seed_from: int, seed_to: int) -> list[Path]:
    found = []
    for p in folder.glob("*.png"):
        m = re.fullmatch(r"\d{5}-(\d+)\.png", p.name)
        if m and seed_from <= int(m.group(1)) < seed_to:
            found.append(p)
    return sorted(found)


def _cards(page) -> int:
    return page.locator(".jp-Notebook button.jupyter-button", has_text="Reuse seed").count()


def _both_widths(page, name: str, locator=None) -> None:
    for width in (1366, 900):
        lab.set_viewport_width(page, width)
        if locator is not None:
            lab.scroll_into_view(page, locator)
        lab.screenshot(page, f"{name}-{width}")
    lab.set_viewport_width(page, 1366)


def test_txt2img_form_controls_gallery_png_info_and_stop(jupyter_server, page, tmp_path) -> None:
    url, token, root = jupyter_server
    (root / "notebooks").mkdir(exist_ok=True)
    shutil.copyfile(REPO_ROOT / "notebooks" / "01_txt2img.ipynb", root / "notebooks" / "01_txt2img.ipynb")
    out = jupyter_server.output_dir / "txt2img"

    lab.open_notebook(page, url, token, "notebooks/01_txt2img.ipynb")
    lab.run_all(page)
    lab.wait_idle(page, timeout=240)
    assert lab.cell_errors(page) == []
    go = page.locator("button.jupyter-button", has_text="Generate")
    go.wait_for()
    assert _cards(page) == 1  # Run All's plain cell put its image in the gallery
    _both_widths(page, "01-form", page.locator(".jp-Notebook label.widget-label", has_text="Prompt").first)

    # the slider moves the number beside it; the dice sets a random seed; both reach the params
    steps_row = (page.locator(".jp-Notebook .widget-hbox")
                 .filter(has=page.locator("label.widget-label", has_text=re.compile(r"^\s*Steps\s*$")))
                 .filter(has=page.locator(".widget-hslider")).last)
    handle = steps_row.locator(".noUi-handle, .ui-slider-handle").first
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    page.wait_for_function("() => [...document.querySelectorAll('.jp-Notebook .widget-inline-hbox')].some("
                           "r => /Steps/.test(r.innerText) && r.querySelector('input') && "
                           "r.querySelector('input').value === '23')", timeout=10_000)
    lab.set_widget_text(page, "Seed", 555)
    page.locator(".jp-Notebook button.jupyter-button[title='Random seed (-1)']").last.click()
    page.wait_for_function("() => [...document.querySelectorAll('.jp-Notebook .widget-inline-hbox')].some("
                           "r => /^\\s*Seed/.test(r.innerText) && r.querySelector('input') && "
                           "r.querySelector('input').value === '-1')", timeout=10_000)

    # Generate: a new card in the gallery, the final image on the stage, a PNG with these parameters on disk
    lab.set_widget_text(page, "Prompt", "a lighthouse drawn in a browser test")
    lab.set_widget_text(page, "Seed", 4242)
    lab.click_button(page, "Generate")
    lab.wait_for_output_text(page, "Done: 1 image(s); seeds [4242]", timeout=120)
    page.wait_for_function("() => document.querySelectorAll('.jp-Notebook button.jupyter-button').length && "
                           "[...document.querySelectorAll('.jp-Notebook button.jupyter-button')]"
                           ".filter(b => b.innerText.includes('Reuse seed')).length === 2", timeout=30_000)
    lab.wait_for_output_text(page, "Final image · seed 4242", timeout=30)
    [png] = _pngs(out, 4242, 4243)
    info = parse_infotext(read_infotext(png))
    assert info.prompt == "a lighthouse drawn in a browser test" and info.settings["Seed"] == "4242"
    assert info.settings["Steps"] == "23"
    _both_widths(page, "02-generated", page.locator(".jp-Notebook button.jupyter-button",
                                                     has_text="Reuse seed").first)

    # PNG Info: a WebUI-style PNG fills the form
    made = Txt2ImgParams(prompt="a red fox in the snow, from PNG Info", steps=17, cfg_scale=4.5, width=64, height=64)
    other = save_image(lab_image(), tmp_path, infotext=to_infotext(made, 31337), stem="31337")
    with page.expect_file_chooser() as chooser:  # the upload button opens the browser's file picker
        page.locator(".jp-Notebook button.jupyter-button", has_text="PNG Info").last.click()
    chooser.value.set_files(str(other))
    lab.wait_for_output_text(page, "Filled:", timeout=30)
    assert lab.widget_value(page, "Seed") == "31337" and lab.widget_value(page, "Steps") == "17"
    assert lab.widget_value(page, "Prompt") == "a red fox in the snow, from PNG Info"
    _both_widths(page, "03-png-info", page.locator(".jp-Notebook", has_text="Filled:").last)

    # Stop while the plain cell runs (as during Run All): one line, no traceback, finished images kept
    lab.set_widget_text(page, "Seed", 7000)
    lab.set_widget_text(page, "Steps", 30)
    lab.set_widget_text(page, "Batch count", 100)
    lab.run_cell(page, GENERATE_CELL)
    lab.wait_for_output_text(page, re.compile(r"Steps: (6\d|[7-9]\d|\d{3,})/3000"), timeout=120)
    lab.click_button(page, "Stop")
    deadline = time.monotonic() + 60
    while "Stopped" not in lab.cell_output_text(page, GENERATE_CELL) and time.monotonic() < deadline:
        time.sleep(0.25)
    text = lab.cell_output_text(page, GENERATE_CELL)
    assert re.search(r"Stopped: after \d+ of 100 image\(s\)", text), text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text and len(text.strip().splitlines()) == 1
    kept = int(re.search(r"after (\d+) of 100", text).group(1))
    time.sleep(1.0)  # a run that ignored Stop would keep writing
    files = _pngs(out, 7000, 7100)
    assert 1 <= kept < 100 and len(files) == kept
    assert all(parse_infotext(read_infotext(f)).settings["Steps"] == "30" for f in files)
    page.locator("button.jupyter-button:not([disabled])", has_text="Generate").wait_for(timeout=10_000)
    _both_widths(page, "04-stopped-plain-cell", page.locator(".jp-Notebook .jp-Cell").nth(GENERATE_CELL))


def lab_image():
    from PIL import Image

    return Image.new("RGB", (64, 64), "teal")
