"""Proves the browser machinery on a tiny demo form: the mechanism notebook 01 uses.

The demo notebook (written here, into the server's temporary root) shows an ipywidgets form:
Prompt (Text), Seed (IntText), Steps (IntSlider), Generate and Stop buttons, a status Label and a
gallery VBox. Generate runs a background thread, so the kernel stays free to receive the Stop click;
each step sleeps 0.25 s, saves a PNG into ``$SDNB_OUTPUT_DIR/demo-form/`` and appends it to the gallery.
"""

from __future__ import annotations

import re
import sys
import time

import lab
import nbformat
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

SETUP = """\
import os, re, sys, threading, time, traceback
from pathlib import Path

import ipywidgets as widgets
from IPython.display import display
from PIL import Image as PILImage

OUT = Path(os.environ["SDNB_OUTPUT_DIR"]) / "demo-form"
OUT.mkdir(parents=True, exist_ok=True)
_ = (OUT / "kernel_python.txt").write_text(sys.executable)
"""

FORM = """\
prompt = widgets.Text(description="Prompt", value="a teapot")
seed = widgets.IntText(description="Seed", value=0)
steps = widgets.IntSlider(description="Steps", value=1, min=1, max=20)
generate = widgets.Button(description="Generate", button_style="primary", icon="play")
stop = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
status = widgets.Label(value="status: ready")
gallery = widgets.VBox()
log = widgets.Output()
stop_event = threading.Event()


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "image"


def worker(text, seed_value, n_steps):
    done = 0
    try:
        for step in range(n_steps):
            if stop_event.is_set():
                break
            time.sleep(0.25)
            path = OUT / f"{slug(text)}-seed{seed_value}-step{step:02d}.png"
            color = ((seed_value * 37) % 256, (step * 12) % 256, 200)
            PILImage.new("RGB", (48, 48), color).save(path)
            gallery.children = gallery.children + (
                widgets.Image(value=path.read_bytes(), format="png", width=48, height=48),
            )
            done += 1
        if done < n_steps:
            status.value = f"status: stopped after {done} of {n_steps} steps"
        else:
            status.value = f"status: done {done} of {n_steps} steps"
    except Exception:
        log.append_stderr(traceback.format_exc())
        status.value = "status: failed"
    finally:
        generate.disabled = False
        stop.disabled = True


def on_generate(_button):
    stop_event.clear()
    generate.disabled = True
    stop.disabled = False
    status.value = "status: running"
    threading.Thread(target=worker, args=(prompt.value, seed.value, steps.value), daemon=True).start()


def on_stop(_button):
    stop_event.set()


generate.on_click(on_generate)
stop.on_click(on_stop)
display(widgets.VBox([prompt, seed, steps, widgets.HBox([generate, stop]), status, log, gallery]))
"""


def _demo_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Demo form\nA stand-in for the txt2img form."),
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell(FORM),
    ]
    return nb


def _valid_png(path):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.format == "PNG" and im.size == (48, 48)


def test_demo_form_generate_and_stop(jupyter_server, page):
    url, token, root = jupyter_server
    folder = root / "demo"
    folder.mkdir(exist_ok=True)
    nbformat.write(_demo_notebook(), folder / "demo_form.ipynb")
    out = jupyter_server.output_dir / "demo-form"

    lab.open_notebook(page, url, token, "demo/demo_form.ipynb")
    lab.run_all(page)
    state = lab.wait_idle(page, timeout=60)
    assert lab.cell_errors(page) == [], state
    # the kernel is the interpreter running the tests (the virtualenv's python)
    assert (out / "kernel_python.txt").read_text() == sys.executable
    page.locator("button.jupyter-button", has_text="Generate").wait_for()
    lab.scroll_to_end(page)
    lab.screenshot(page, "01-form")

    # one quick image
    lab.set_widget_text(page, "Prompt", "a red square")
    lab.set_widget_text(page, "Seed", 42)
    lab.set_widget_text(page, "Steps", 1)
    assert lab.widget_value(page, "Seed") == "42"
    before = lab.count_images(page)
    lab.click_button(page, "Generate")
    assert lab.wait_for_new_image(page, before, timeout=30) == before + 1
    lab.wait_for_output_text(page, "status: done 1 of 1 steps", timeout=15)
    png = out / "a-red-square-seed42-step00.png"
    assert png.is_file() and _valid_png(png)
    lab.screenshot(page, "02-generated")

    # a long run (20 x 0.25 s), stopped after a few steps
    lab.set_widget_text(page, "Seed", 7)
    lab.set_widget_text(page, "Steps", 20)
    before = lab.count_images(page)
    lab.click_button(page, "Generate")
    lab.wait_for_new_image(page, before + 1, timeout=30)  # at least two steps finished
    lab.click_button(page, "Stop")
    status = lab.wait_for_output_text(page, re.compile(r"status: stopped after \d+ of 20"), timeout=15)
    finished = int(re.search(r"stopped after (\d+)", status).group(1))
    time.sleep(0.6)  # a loop that ignored Stop would write another file within 0.25 s
    files = sorted(out.glob("a-red-square-seed7-step*.png"))
    assert 2 <= len(files) < 20, files
    assert len(files) == finished
    assert all(_valid_png(f) for f in files)  # the finished steps were kept, intact
    assert lab.wait_for_new_image(page, before + finished - 1, timeout=10) == before + finished
    # the form is usable again
    page.locator("button.jupyter-button:not([disabled])", has_text="Generate").wait_for(timeout=10_000)
    lab.scroll_to_end(page)
    lab.screenshot(page, "03-stopped")

    assert lab.cell_errors(page) == []
