"""Paint with the mouse (or a finger): an inpainting mask on the form's picture, or a scribble for ControlNet.

The canvas is an ipycanvas widget. JupyterLab and Jupyter Notebook show it once ipycanvas is installed (sdnb
requires it). **Colab** shows third-party widgets only after ``google.colab.output.enable_custom_widget_manager()``,
which :class:`Brush` calls itself when it runs there; Colab's custom widget manager has had bug reports about
mouse drawing, so the slider mask maker (:class:`sdnb.maskmaker.MaskMaker`) and mask files stay as ways that
work everywhere.

The strokes are kept in Python (points and brush size as fractions of the picture), and the mask is drawn from
them at the picture's own size with Pillow, never read back from the browser: the same strokes always give the
same mask, whatever size the canvas is shown at, and a test can replay them. After each stroke the canvas is
redrawn from that mask, so what you see is what will be used.
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import numpy as np
from PIL import Image, ImageDraw

from .errors import SdnbError
from .images import as_image, save_image
from .masks import mask_overlay
from .settings import output_dir
from .widgets import Form, error_html

__all__ = ["Brush", "Stroke", "draw_strokes"]

_SIDE = 512  # the canvas is at most this wide or high (picture pixels are mapped onto it)
_LIVE = {"mask": "#ff2828", "scribble": "#000000"}  # the colour a stroke is drawn in while the mouse moves


@dataclass
class Stroke:
    """One press-drag-release: points as fractions (x of the width, y of the height), the brush radius as a
    fraction of the width, and whether it erases."""

    radius: float
    erase: bool = False
    points: list[tuple[float, float]] = field(default_factory=list)


def draw_strokes(strokes: list[Stroke], size: tuple[int, int], *, ink: int = 255, page: int = 0) -> Image.Image:
    """The strokes drawn on a ``size`` picture (mode L): ``ink`` where painted, ``page`` elsewhere and where
    erased. Round ends and joints, as the canvas draws them."""
    width, height = size
    picture = Image.new("L", size, page)
    draw = ImageDraw.Draw(picture)
    for stroke in strokes:
        colour = page if stroke.erase else ink
        r = max(stroke.radius * width, 0.5)
        points = [(x * width, y * height) for x, y in stroke.points]
        if len(points) > 1:
            draw.line(points, fill=colour, width=max(1, round(2 * r)), joint="curve")
        for x, y in points:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return picture


class Brush:
    """A canvas on which to paint, with brush size, paint/erase, undo, clear, and a button that saves the result
    into ``form``'s field ``target``.

    ``target="mask"`` (an inpainting form): paint the part to repaint on the form's picture; it is shown red,
    as in :func:`sdnb.masks.mask_overlay`, and saved as a white-on-black mask. Any other field (a ControlNet
    form's ``control_image``): a scribble, black lines on a white page at the form's width x height, which the
    ``scribble`` preprocessor turns into the white-on-black map the ControlNet reads.
    """

    def __init__(self, form: Form, target: str = "mask") -> None:
        if target not in form.fields:
            raise SdnbError(f"This form has no field {target!r} for the brush to fill.",
                            hint="Use target='mask' with an inpainting form, or 'control_image' with a ControlNet form.")
        if target == "mask" and "image" not in form.fields:
            raise SdnbError("A mask brush needs a form with an Image field to paint on.",
                            hint="Use it with image_app(InpaintParams(...)).form.")
        try:
            from ipycanvas import MultiCanvas
        except ImportError as exc:
            raise SdnbError("The brush needs the ipycanvas package, which is not installed.",
                            hint="Run `%pip install ipycanvas` and restart, or make the mask with MaskMaker.") from exc
        if "google.colab" in sys.modules:  # Colab shows third-party widgets only through its custom manager
            from google.colab import output  # type: ignore[import-not-found]

            output.enable_custom_widget_manager()
        self.form, self.target = form, target
        self.kind = "mask" if target == "mask" else "scribble"
        self.strokes: list[Stroke] = []
        self._drawing: Stroke | None = None
        self.canvas = MultiCanvas(2, width=_SIDE, height=_SIDE)
        self.size = W.IntSlider(value=24, min=2, max=128, description="Brush size", continuous_update=False)
        self.mode = W.ToggleButtons(options=["Paint", "Erase"], value="Paint", description="Brush")
        self.undo = W.Button(description="Undo", icon="undo")
        self.clear = W.Button(description="Clear", icon="trash")
        self.use = W.Button(description="Use as mask" if self.kind == "mask" else "Use as scribble",
                            icon="check", button_style="primary")
        self.status = W.HTML()
        self.canvas.on_mouse_down(self._down)
        self.canvas.on_mouse_move(self._move)
        self.canvas.on_mouse_up(self._up)
        self.canvas.on_mouse_out(self._up)
        self.canvas.on_touch_start(lambda touches: self._down(*touches[0]))
        self.canvas.on_touch_move(lambda touches: self._move(*touches[0]))
        self.canvas.on_touch_end(lambda touches: self._up(0, 0))
        self.undo.on_click(lambda _: self._undo())
        self.clear.on_click(lambda _: self._clear())
        self.use.on_click(lambda _: self.save())
        watched = ("image",) if self.kind == "mask" else ("width", "height")
        for name in watched:
            if name in form.fields:
                form.fields[name].observe(lambda _: self.redraw(), names="value")
        tools = W.HBox([self.mode, self.size])
        self.box = W.VBox([tools, self.canvas, W.HBox([self.undo, self.clear, self.use, self.status])])
        self.redraw()

    # the picture and its view
    def picture_size(self) -> tuple[int, int]:
        """The size of what is painted: the form's picture (mask), or the form's width x height (scribble)."""
        if self.kind == "mask":
            return as_image(self.form.fields["image"].value).size
        return int(self.form.fields["width"].value), int(self.form.fields["height"].value)

    def picture(self) -> Image.Image:
        """The result at the picture's size: the mask (white = repaint) or the scribble (black on white)."""
        if self.kind == "mask":
            return draw_strokes(self.strokes, self.picture_size())
        return draw_strokes(self.strokes, self.picture_size(), ink=0, page=255)

    def _view(self) -> Image.Image:
        if self.kind == "mask":
            return mask_overlay(as_image(self.form.fields["image"].value), self.picture())
        return self.picture().convert("RGB")

    def redraw(self) -> None:
        """Show the picture (with the mask overlaid) at the canvas's size; a problem is shown beside the button."""
        from ipycanvas import hold_canvas

        try:
            view = self._view()
        except SdnbError as exc:
            self.status.value = error_html(str(exc))
            return
        scale = min(_SIDE / view.width, _SIDE / view.height)
        shown = view.resize((max(1, round(view.width * scale)), max(1, round(view.height * scale))), Image.LANCZOS)
        with hold_canvas():
            if (self.canvas.width, self.canvas.height) != shown.size:
                self.canvas.width, self.canvas.height = shown.size
            self.canvas[0].put_image_data(np.asarray(shown), 0, 0)
            self.canvas[1].clear()
        self.status.value = ""

    # mouse and touch
    def _down(self, x: float, y: float) -> None:
        radius = self.size.value / 2 / self.canvas.width
        self._drawing = Stroke(radius=radius, erase=self.mode.value == "Erase")
        self.strokes.append(self._drawing)
        self._move(x, y)

    def _move(self, x: float, y: float) -> None:
        stroke = self._drawing
        if stroke is None:
            return
        point = (min(max(x / self.canvas.width, 0.0), 1.0), min(max(y / self.canvas.height, 0.0), 1.0))
        layer = self.canvas[1]
        layer.fill_style = layer.stroke_style = "#ffffff" if stroke.erase else _LIVE[self.kind]
        layer.line_width, layer.line_cap, layer.line_join = self.size.value, "round", "round"
        if stroke.points:
            last = stroke.points[-1]
            layer.stroke_line(last[0] * self.canvas.width, last[1] * self.canvas.height, x, y)
        else:
            layer.fill_circle(x, y, self.size.value / 2)
        stroke.points.append(point)

    def _up(self, x: float, y: float) -> None:
        if self._drawing is not None:
            self._drawing = None
            self.redraw()  # the stroke as it will be used, from the strokes kept here

    def _undo(self) -> None:
        if self.strokes:
            self.strokes.pop()
        self.redraw()

    def _clear(self) -> None:
        self.strokes.clear()
        self.redraw()

    def save(self) -> str:
        """Save the mask (under ``output_dir()/masks``) or scribble (``output_dir()/scribbles``) and put its path
        in the form's field; a mask that is all black or all white is refused as the run would refuse it."""
        try:
            picture = self.picture()
            low, high = picture.getextrema()
            if self.kind == "mask" and high == 0:
                raise SdnbError("Nothing is painted yet.", hint="Paint over the part to repaint, then press Use as mask.")
            if self.kind != "mask" and low == 255:
                raise SdnbError("Nothing is drawn yet.", hint="Draw the outline to follow, then press Use as scribble.")
            folder = output_dir() / ("masks" if self.kind == "mask" else "scribbles")
            path = save_image(picture, folder, stem=self.kind)
        except SdnbError as exc:
            self.status.value = error_html(str(exc))
            return ""
        self.form.fields[self.target].value = str(path)
        self.status.value = f"Saved {html.escape(path.name)}; the form now uses it."
        return str(path)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def __repr__(self) -> str:  # shown instead of the widget where widgets cannot render (nbconvert, text)
        return f"Brush({self.kind}, {len(self.strokes)} stroke(s))"

    def replay(self, strokes: list[list[tuple[float, float]]], size: int = 24, erase: bool = False) -> Any:
        """Draw ``strokes`` (each a list of canvas points) as the mouse would: for tests and demonstrations."""
        previous = self.size.value, self.mode.value
        self.size.value, self.mode.value = size, "Erase" if erase else "Paint"
        for points in strokes:
            self._down(*points[0])
            for point in points[1:]:
                self._move(*point)
            self._up(*points[-1])
        self.size.value, self.mode.value = previous
        return self
