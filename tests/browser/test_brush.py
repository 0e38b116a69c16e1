"""The brush in a real browser: the ipycanvas canvas shows the picture, a mouse drag paints a stroke that the
kernel receives at the right place, and Use as mask saves it. A screenshot of the painted canvas is kept."""

from __future__ import annotations

import json
from pathlib import Path

import lab
import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser

CELLS = [
    "from sdnb.assets import asset\nfrom sdnb.brush import Brush\nfrom sdnb.params import InpaintParams\n"
    "from sdnb.widgets import Form\n\n"
    "form = Form(InpaintParams(image=str(asset('portrait.jpg')), mask=str(asset('portrait_mask.png'))))\n"
    "brush = Brush(form)\nbrush",
    "import json\nimport numpy as np\nm = np.asarray(brush.picture())\n"
    "ys, xs = np.nonzero(m)\n"
    "print('BRUSH', json.dumps({'strokes': len(brush.strokes), 'painted': int((m > 0).sum()),"
    " 'box': [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(xs) else None}))",
]


def test_brush_paints_with_the_mouse(jupyter_server, page) -> None:
    url, token, root = jupyter_server
    for name in ("assets", "sdnb"):
        if not (root / name).exists():
            (root / name).symlink_to(REPO_ROOT / name, target_is_directory=True)
    (root / "notebooks").mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbformat.write(nb, root / "notebooks" / "brush.ipynb")

    lab.open_notebook(page, url, token, "notebooks/brush.ipynb")
    lab.run_cell(page, 0)
    canvas = page.locator(".jp-Notebook canvas").last
    canvas.wait_for(timeout=60_000)
    page.wait_for_function("() => [...document.querySelectorAll('.jp-Notebook canvas')].some(c => c.width === 512)",
                           timeout=30_000)
    lab.scroll_into_view(page, canvas)
    box = canvas.bounding_box()
    assert box and box["width"] > 100
    scale = box["width"] / 512  # the canvas may be shown narrower than its 512 pixels
    # drag from (100, 100) to (300, 100) in picture pixels (the portrait is 512x512, shown 1:1 on the canvas)
    page.mouse.move(box["x"] + 100 * scale, box["y"] + 100 * scale)
    page.mouse.down()
    for x in range(120, 301, 20):
        page.mouse.move(box["x"] + x * scale, box["y"] + 100 * scale)
        page.wait_for_timeout(20)
    page.mouse.up()
    page.wait_for_timeout(500)
    lab.screenshot(page, "brush-painted", page.locator(".jp-Notebook .jp-OutputArea").first)
    lab.run_cell(page, 1)
    text = lab.wait_for_output_text(page, "BRUSH", timeout=60)
    found = json.loads(text[text.index("BRUSH") + 6:].splitlines()[0])
    assert found["strokes"] == 1 and found["painted"] > 150 * 20
    x0, y0, x1, y1 = found["box"]
    assert abs(x0 - 88) <= 8 and abs(x1 - 312) <= 8 and abs(y0 - 88) <= 8 and abs(y1 - 112) <= 8  # 24 px brush
    lab.click_button(page, "Use as mask")
    lab.wait_for_output_text(page, "the form now uses it", timeout=30)
    assert lab.cell_errors(page) == []
