"""Masks for inpainting and outpainting: shapes drawn from numbers, the WebUI's "fill", the outpainting canvas,
and an overlay that shows a mask on its image.

White (255) means "repaint", black (0) "keep", as in the WebUI and diffusers.
"""

from __future__ import annotations

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from .errors import SdnbError

__all__ = ["SHAPES", "shape_mask", "check_mask", "crop_region", "fill_masked", "outpaint_canvas", "mask_overlay"]

#: The shapes :func:`shape_mask` draws.
SHAPES: tuple[str, ...] = ("rectangle", "ellipse")


def shape_mask(size: tuple[int, int], box: tuple[int, int, int, int], shape: str = "rectangle") -> Image.Image:
    """A ``size`` mask (mode L) with a white ``shape`` filling ``box`` = (left, top, right, bottom) in pixels."""
    if shape not in SHAPES:
        raise SdnbError(f"Unknown mask shape {shape!r}.", hint=f"Use one of: {', '.join(SHAPES)}.")
    left, top, right, bottom = box
    if not (0 <= left < right <= size[0] and 0 <= top < bottom <= size[1]):
        raise SdnbError(f"The mask box {box} does not fit a {size[0]}x{size[1]} image.",
                        hint="Give (left, top, right, bottom) with left < right <= width and top < bottom <= height.")
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    (draw.rectangle if shape == "rectangle" else draw.ellipse)((left, top, right - 1, bottom - 1), fill=255)
    return mask


def check_mask(mask: Image.Image) -> None:
    """Refuse a mask that selects nothing (nothing to inpaint) or everything (nothing kept: use img2img)."""
    low, high = mask.convert("L").getextrema()
    if high == 0:
        raise SdnbError("The mask is all black, so there is nothing to inpaint.",
                        hint="Paint the part to repaint white (or choose Mask mode 'Inpaint not masked' if your "
                        "mask marks the part to keep).")
    if low == 255:
        raise SdnbError("The mask is all white, so no pixel of the image would be kept.",
                        hint="Use img2img to repaint the whole image, or mark only the part to repaint in white.")


def crop_region(mask: Image.Image, padding: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The part of the picture that "Only masked" inpaints: the mask's bounding box grown by ``padding`` pixels
    (within the picture), then widened or heightened to the ``width`` : ``height`` shape of the run, so the crop
    scales to the model's size without distortion. The WebUI's ``get_crop_region_v2`` + ``expand_crop_region``.
    """
    box = mask.convert("L").getbbox()
    if box is None:
        check_mask(mask)  # raises: an all-black mask has nothing to inpaint
    image_w, image_h = mask.size
    x1, y1, x2, y2 = box
    if padding:
        x1, y1, x2, y2 = max(x1 - padding, 0), max(y1 - padding, 0), min(x2 + padding, image_w), min(y2 + padding, image_h)
    if (x2 - x1) / (y2 - y1) > width / height:  # too wide: grow the height, centred, shifted back inside
        y1, y2 = _grow(y1, y2, int((x2 - x1) * height / width - (y2 - y1)), image_h)
    else:
        x1, x2 = _grow(x1, x2, int((y2 - y1) * width / height - (x2 - x1)), image_w)
    return x1, y1, x2, y2


def _grow(low: int, high: int, by: int, limit: int) -> tuple[int, int]:
    """``low..high`` grown by ``by`` (half each side), moved back inside ``0..limit``, cut at ``limit``."""
    low, high = low - by // 2, high + by - by // 2
    if high >= limit:
        low, high = low - (high - limit), limit
    if low < 0:
        low, high = 0, high - low
    return low, min(high, limit)


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The WebUI's "fill" masked content: the masked part painted over with the blurred colours around it.

    The same passes as the WebUI's ``masking.fill``: the kept pixels, blurred at falling radii, are layered
    under each other, so the hole takes the colours of its edges and keeps none of its old content.
    """
    rgba = image.convert("RGBA")
    keep = ImageOps.invert(mask.convert("L"))
    known = Image.new("RGBa", image.size)
    known.paste(rgba.convert("RGBa"), mask=keep)
    filled = Image.new("RGBA", image.size)
    for radius, repeats in ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)):
        blurred = known.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            filled.alpha_composite(blurred)
    return filled.convert("RGB")


def outpaint_canvas(image: Image.Image, left: int = 0, right: int = 0, up: int = 0, down: int = 0,
                    overlap: int = 8) -> tuple[Image.Image, Image.Image]:
    """A larger canvas for outpainting and its mask: ``image`` in place, the new margins filled from its edge
    colours (:func:`fill_masked`) and white in the mask, which also reaches ``overlap`` pixels into the
    image so the seam is repainted and blends (with the mask blur)."""
    margins = {"left": left, "right": right, "up": up, "down": down}
    bad = [f"{name} {value!r}" for name, value in margins.items()
           if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value % 8]
    if bad or not any(margins.values()):
        raise SdnbError(f"Outpainting needs margins that are whole multiples of 8 pixels, at least one above 0 "
                        f"(got {', '.join(bad) or 'all 0'}).", hint="For example right=128 widens the image by 128.")
    size = (image.width + left + right, image.height + up + down)
    canvas = Image.new("RGB", size)
    canvas.paste(image.convert("RGB"), (left, up))
    mask = Image.new("L", size, 255)
    inner = [left + (overlap if left else 0), up + (overlap if up else 0),
             left + image.width - (overlap if right else 0), up + image.height - (overlap if down else 0)]
    mask.paste(0, tuple(inner))
    outside = Image.new("L", size, 255)
    outside.paste(0, (left, up, left + image.width, up + image.height))
    return Image.composite(fill_masked(canvas, outside), canvas, outside), mask


def mask_overlay(image: Image.Image, mask: Image.Image, color: tuple[int, int, int] = (255, 40, 40),
                 opacity: float = 0.5) -> Image.Image:
    """``image`` with the white part of ``mask`` tinted ``color``: what will be repainted, seen on the picture."""
    base = image.convert("RGB")
    tint = Image.new("RGB", base.size, color)
    alpha = mask.convert("L").resize(base.size).point(lambda v: round(v * opacity))
    edge = ImageChops.subtract(alpha.filter(ImageFilter.MaxFilter(3)), alpha.filter(ImageFilter.MinFilter(3)))
    out = Image.composite(tint, base, alpha)
    return Image.composite(Image.new("RGB", base.size, color), out, edge.point(lambda v: 255 if v else 0))
