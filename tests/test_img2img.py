"""Image input shared by every image task (EXIF, modes, sizes, resize modes), img2img's strength rules, the
sample assets, and the source-image hash that lets regenerate tell the right source from a wrong one."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdnb.assets import ASSETS, asset
from sdnb.errors import SdnbError
from sdnb.generate import image_hash, img2img, regenerate
from sdnb.images import MAX_INPUT_SIDE, as_image, fit_image, read_infotext
from sdnb.params import RESIZE_MODES, Img2ImgParams

ROOT = Path(__file__).resolve().parents[1]
TINY = {"width": 64, "height": 64, "steps": 4, "seed": 11}


def test_every_asset_is_there_small_and_credited() -> None:
    credits = (ROOT / "assets" / "CREDITS.md").read_text()
    for name in ASSETS:
        path = asset(name)
        assert path.is_file() and 0 < path.stat().st_size < 300_000, name
        assert f"`{name}`" in credits, f"{name} has no line in assets/CREDITS.md"
        with Image.open(path) as image:
            assert max(image.size) <= 640
    with pytest.raises(SdnbError, match="no sample file"):
        asset("nope.png")


def test_transparent_16bit_palette_cmyk_and_grey_are_converted_with_a_notice() -> None:
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    with pytest.warns(UserWarning, match="transparent parts put on white"):
        assert as_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    deep = Image.fromarray(np.full((16, 16), 32768, dtype=np.uint16))
    with pytest.warns(UserWarning, match="16-bit"):
        assert as_image(deep).getpixel((0, 0)) == (128, 128, 128)  # scaled, not clipped to white
    with pytest.warns(UserWarning, match="CMYK"):
        assert as_image(Image.new("CMYK", (16, 16), (0, 255, 255, 0))).getpixel((0, 0)) == (255, 0, 0)
    with pytest.warns(UserWarning, match="palette"):
        as_image(Image.new("RGB", (16, 16), (0, 0, 255)).convert("P"))
    with pytest.warns(UserWarning, match="greyscale"):
        assert as_image(Image.new("L", (16, 16), 90)).mode == "RGB"
    assert as_image(Image.new("RGB", (16, 16)), mode="L").mode == "L"  # a mask wanted as L: no notice


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    path = tmp_path / "sideways.jpg"
    image.save(path, exif=exif)
    assert as_image(path).size == (20, 40)


def test_too_large_is_scaled_down_with_a_notice_too_small_and_broken_refused(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="scaled down to 4096x128"):
        assert as_image(Image.new("RGB", (MAX_INPUT_SIDE * 2, 256))).size == (MAX_INPUT_SIDE, 128)
    with pytest.raises(SdnbError, match="1x1 pixels: too small"):
        as_image(Image.new("RGB", (1, 1)))
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(SdnbError, match="damaged or incomplete"):
        as_image(cut)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(SdnbError, match="not an image file"):
        as_image(text)


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("size", [(64, 32), (32, 64)])
def test_resize_modes_give_the_requested_size(mode: str, size: tuple[int, int]) -> None:
    photo = as_image(asset("coffee.jpg"))  # 3:2
    fitted = fit_image(photo, *size, mode)
    assert fitted.size == size
    if mode == "Resize and fill" and size == (32, 64):  # bands above and below repeat the edge rows
        pixels = np.asarray(fitted)
        assert (pixels[0] == pixels[1]).all()


def test_strength_zero_or_out_of_range_is_refused_before_anything_is_written(_outputs: Path) -> None:
    with pytest.raises(SdnbError, match="strength 0 changes nothing"):
        img2img(Img2ImgParams(image=str(asset("portrait.jpg")), strength=0.0, **TINY))
    with pytest.raises(SdnbError, match="between 0 and 1"):
        img2img(Img2ImgParams(image=str(asset("portrait.jpg")), strength=1.5, **TINY))
    assert not _outputs.exists() or not any(_outputs.rglob("*.png"))


def test_same_seed_same_pixels_and_the_source_hash_round_trips(_outputs: Path) -> None:
    p = Img2ImgParams(image=str(asset("portrait.jpg")), strength=0.5, **TINY)
    first, second = img2img(p), img2img(p, save=False)
    assert np.array_equal(np.asarray(first.images[0]), np.asarray(second.images[0]))
    text = read_infotext(first.paths[0])
    fitted = fit_image(as_image(asset("portrait.jpg")), 64, 64)
    assert f"Source hash: {image_hash(fitted)}" in text and "Denoising strength: 0.5" in text
    assert "Resize mode: Just resize" in text
    again = regenerate(first.paths[0], image=Image.open(asset("portrait.jpg")), save=False)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(first.images[0]))
    with pytest.raises(SdnbError, match="image given is not the one"):
        regenerate(first.paths[0], image=str(asset("cat.jpg")))
    with pytest.raises(SdnbError, match="from a source image"):
        regenerate(first.paths[0])
    assert len(list(_outputs.rglob("*.png"))) == 1  # the refused regenerations wrote nothing


def test_another_resize_mode_is_another_source() -> None:
    photo = as_image(asset("coffee.jpg"))
    hashes = {image_hash(fit_image(photo, 64, 64, mode)) for mode in RESIZE_MODES}
    assert len(hashes) == 3
