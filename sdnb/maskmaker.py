"""A mask made in the notebook from a rectangle or an ellipse, with sliders and a live overlay on the form's image.

Plain ipywidgets only, so it shows in Colab's own ipywidgets 7 and in JupyterLab with 8, with no custom widget
manager. **Use as mask** saves the mask as a PNG and puts its path in the inpainting form's Mask field.
"""

from __future__ import annotations

import html

import ipywidgets as W
from PIL import Image

from .errors import SdnbError
from .images import as_image, save_image
from .masks import SHAPES, mask_overlay, shape_mask
from .settings import output_dir
from .widgets import Form, error_html, png_bytes

__all__ = ["MaskMaker"]

_PREVIEW_SIDE = 384  # the overlay is shown at most this wide or high


class MaskMaker:
    """Sliders for a rectangle or ellipse (in percent of the image, so they fit any size), a live overlay on the
    image named in ``form``'s Image field, and a button that saves the mask and fills ``form``'s Mask field."""

    def __init__(self, form: Form) -> None:
        if "image" not in form.fields or "mask" not in form.fields:
            raise SdnbError("MaskMaker needs an inpainting form (one with Image and Mask fields).",
                            hint="Use it with image_app(InpaintParams(...)).form.")
        self.form = form
        self.shape = W.ToggleButtons(options=list(SHAPES), value="ellipse", description="Shape")
        self.across = W.IntRangeSlider(value=(55, 100), min=0, max=100, description="Left–right %")
        self.down = W.IntRangeSlider(value=(65, 100), min=0, max=100, description="Top–bottom %")
        self.preview = W.Image(format="png", layout=W.Layout(width=f"min({_PREVIEW_SIDE}px, 100%)"))
        self.use = W.Button(description="Use as mask", icon="check", button_style="primary")
        self.status = W.HTML()
        for control in (self.shape, self.across, self.down, form.fields["image"]):
            control.observe(lambda _: self.show(), names="value")
        self.use.on_click(lambda _: self.save())
        self.box = W.VBox([self.shape, self.across, self.down, self.preview, W.HBox([self.use, self.status])])
        self.show()

    def _image(self) -> Image.Image:
        return as_image(self.form.fields["image"].value)

    def mask(self, size: tuple[int, int] | None = None) -> Image.Image:
        """The mask the sliders describe, for an image of ``size`` (default: the form's image)."""
        width, height = size or self._image().size
        (x0, x1), (y0, y1) = self.across.value, self.down.value
        if x1 <= x0 or y1 <= y0:
            raise SdnbError("The shape has no area: move the two handles of each slider apart.")
        box = (round(width * x0 / 100), round(height * y0 / 100), round(width * x1 / 100), round(height * y1 / 100))
        return shape_mask((width, height), box, self.shape.value)

    def show(self) -> None:
        """Redraw the overlay (red = what will be repainted); a problem is shown beside the button instead."""
        try:
            image = self._image()
            overlay = mask_overlay(image, self.mask(image.size))
        except SdnbError as exc:
            self.status.value = error_html(str(exc))
            return
        overlay.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE))
        self.preview.value = png_bytes(overlay)
        self.status.value = ""

    def save(self) -> str:
        """Save the mask under ``output_dir()/masks`` and put its path in the form's Mask field."""
        try:
            path = save_image(self.mask(), output_dir() / "masks", stem="mask")
        except SdnbError as exc:
            self.status.value = error_html(str(exc))
            return ""
        self.form.fields["mask"].value = str(path)
        self.status.value = f"Saved {html.escape(path.name)}; the form's Mask field now uses it."
        return str(path)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)
