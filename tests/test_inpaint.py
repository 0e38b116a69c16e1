"""Inpainting, outpainting and depth to image: masks (shapes, invert, blur, checks), masked content, inpaint
area, the outpainting canvas, a user depth map, their infotext keys, and bad input refused with nothing written."""

from __future__ import annotations

import functools
import inspect
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from sdnb.assets import asset
from sdnb.errors import SdnbError
from sdnb.generate import depth2img, inpaint, regenerate
from sdnb.images import as_image, fit_image, parse_infotext, read_infotext
from sdnb.masks import crop_region, fill_masked, mask_overlay, outpaint_canvas, shape_mask
from sdnb.params import Depth2ImgParams, InpaintParams

TINY = {"width": 64, "height": 64, "steps": 3, "seed": 5}


@pytest.fixture
def params() -> InpaintParams:
    return InpaintParams(image=str(asset("portrait.jpg")), mask=str(asset("portrait_mask.png")), strength=1.0,
                         mask_blur=0, **TINY)


def px(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=int)


def test_shapes_overlay_and_fill() -> None:
    ellipse = shape_mask((40, 20), (10, 0, 30, 20), "ellipse")
    rect = shape_mask((40, 20), (10, 0, 30, 20))
    assert np.asarray(rect).sum() == 20 * 20 * 255 and 0 < np.asarray(ellipse).sum() < np.asarray(rect).sum()
    with pytest.raises(SdnbError, match="does not fit"):
        shape_mask((40, 20), (10, 0, 50, 20))
    photo = Image.new("RGB", (40, 20), (0, 0, 255))
    photo.paste((255, 0, 0), (10, 0, 30, 20))  # a red block, exactly under the mask
    filled = np.asarray(fill_masked(photo, rect))
    assert filled[10, 20, 2] > 200 and filled[10, 20, 0] < 30  # the hole takes the blue around it, no red left
    assert np.asarray(mask_overlay(photo, rect))[10, 2].tolist() == [0, 0, 255]  # outside: untouched


def test_only_masked_and_whole_picture_keep_every_unmasked_pixel(params: InpaintParams) -> None:
    source = px(fit_image(as_image(params.image), 64, 64))
    kept = np.asarray(fit_image(as_image(params.mask, mode="L"), 64, 64)) == 0
    out = px(inpaint(params, save=False).images[0])
    assert (out[kept] == source[kept]).all() and (out[~kept] != source[~kept]).any()
    # Only masked works on a crop at the run's size and gives the whole picture back at its own size (the WebUI's
    # "inpaint at full resolution"), every pixel outside the mask as it was
    whole, whole_kept = px(as_image(params.image)), np.asarray(as_image(params.mask, mode="L")) == 0
    for content in ("original", "fill", "latent noise"):
        out = px(inpaint(params, inpaint_area="Only masked", padding=8, masked_content=content, save=False).images[0])
        assert out.shape == whole.shape, content
        assert (out[whole_kept] == whole[whole_kept]).all() and (out[~whole_kept] != whole[~whole_kept]).any(), content


def test_crop_region_is_the_webuis() -> None:
    mask = shape_mask((400, 300), (300, 250, 380, 290))  # 80 x 40 near the bottom-right corner
    assert crop_region(mask, 0, 64, 64) == (300, 220, 380, 300)  # grown to 80 high, moved up off the edge
    # padded by 16 (cut at the edges), then made square for a 64x64 run and moved back inside the picture
    x1, y1, x2, y2 = crop_region(mask, 16, 64, 64)
    assert (x1, y1, x2, y2) == (284, 188, 396, 300)
    x1, y1, x2, y2 = crop_region(mask, 0, 128, 64)  # a 2:1 run: 80 x 40 already has its shape
    assert (x1, y1, x2, y2) == (300, 250, 380, 290)
    x1, y1, x2, y2 = crop_region(mask, 0, 64, 128)  # a 1:2 run: 80 wide needs 160 high
    assert (y1, y2) == (140, 300) and (x1, x2) == (300, 380)


def test_latent_noise_and_nothing_replace_the_holes_latents(params: InpaintParams) -> None:
    from sdnb.latentfill import hole_latents, replacing_hole_latents
    from sdnb.models import load_pipeline
    from sdnb.seeds import initial_noise

    encoded = torch.randn(2, 4, 8, 8)
    mask = shape_mask((64, 64), (0, 0, 32, 64))  # the left half
    nothing = hole_latents(encoded, mask, [5, 6], "latent nothing")
    noise = hole_latents(encoded, mask, [5, 6], "latent noise")
    assert (nothing[..., :4] == 0).all() and torch.equal(nothing[..., 4:], encoded[..., 4:])
    assert torch.equal(noise[..., :4], initial_noise([5, 6], (4, 8, 8))[..., :4])  # each image's own seed
    assert torch.equal(noise[..., 4:], encoded[..., 4:])  # the kept half: the picture's own latents
    # inside a run, the pipeline's prepare_latents receives those latents instead of the picture
    pipe = load_pipeline("sd15", task="inpaint")
    seen = []
    original = type(pipe).prepare_latents

    @functools.wraps(original)
    def spy(self, *args, **kwargs):
        seen.append(inspect.signature(original).bind(self, *args, **kwargs).arguments["image"])
        return original(self, *args, **kwargs)

    type(pipe).prepare_latents = spy
    try:
        inpaint(params, masked_content="original", mask=str(asset("portrait_mask.png")), strength=0.9, pipe=pipe, save=False)
        assert seen[-1].shape == (1, 3, 64, 64)  # the picture's pixels, as diffusers has it
        with replacing_hole_latents(pipe, mask, "latent nothing"):
            assert "prepare_latents" in vars(pipe)
        assert "prepare_latents" not in vars(pipe)  # the pipeline's own method is back after the context
        inpaint(params, masked_content="latent nothing", mask=str(asset("portrait_mask.png")), strength=0.9, pipe=pipe,
                save=False)
    finally:
        type(pipe).prepare_latents = original
    hole = np.asarray(fit_image(as_image(params.mask, mode="L"), 8, 8)) > 127
    assert seen[-1].shape == (1, 4, 8, 8) and hole.any()
    assert (seen[-1][0][:, hole] == 0).all() and (seen[-1][0][:, ~hole] != 0).any()
    assert "prepare_latents" not in vars(pipe)  # the pipeline's own method is back after the run


@pytest.mark.parametrize("model", ["sd15", "sd15-inpainting"])
def test_each_masked_content_starts_the_hole_from_something_else(params: InpaintParams, model: str) -> None:
    from sdnb.generate import controlnet_inpaint
    from sdnb.params import ControlNetInpaintParams

    runs = {c: px(inpaint(params, model=model, masked_content=c, strength=0.9, save=False).images[0])
            for c in ("original", "fill", "latent noise", "latent nothing")}
    assert len({r.tobytes() for r in runs.values()}) == 4
    again = px(inpaint(params, model=model, masked_content="latent noise", strength=0.9, save=False).images[0])
    assert np.array_equal(again, runs["latent noise"])  # same seed, same pixels
    # ControlNet inpainting's pipelines take them the same way
    cn = ControlNetInpaintParams(model=model, image=params.image, mask=params.mask, control_image=params.image,
                                 strength=0.9, mask_blur=0, **TINY)
    made = {c: px(controlnet_inpaint(cn, masked_content=c, save=False).images[0]) for c in ("original", "latent noise")}
    assert not np.array_equal(made["original"], made["latent noise"])


def test_infotext_keys_as_the_webui_writes_them_and_regenerate(params: InpaintParams, _outputs: Path) -> None:
    made = inpaint(params, inpaint_area="Only masked", padding=16, masked_content="fill", strength=0.8)
    settings = parse_infotext(read_infotext(made.paths[0])).settings
    assert (settings["Mask blur"], settings["Inpaint area"], settings["Masked area padding"]) == ("0", "Only masked", "16")
    assert settings["Masked content"] == "fill" and "Mask hash" in settings and "Source hash" in settings
    whole = inpaint(params, save=False).infotexts[0]
    assert "Inpaint area" not in whole and "Masked area padding" not in whole  # the WebUI writes them only then
    again = regenerate(made.paths[0], image=params.image, mask=params.mask, save=False)
    assert np.array_equal(px(again.images[0]), px(made.images[0]))
    with pytest.warns(UserWarning, match="stretched"), pytest.raises(SdnbError, match="mask given is not the one"):
        regenerate(made.paths[0], image=params.image, mask=str(asset("coffee_mask.png")))


def test_outpainting_adds_exactly_the_margins(params: InpaintParams) -> None:
    small = fit_image(as_image(params.image), 64, 64)
    canvas, mask = outpaint_canvas(small, left=16, down=8, overlap=4)
    assert canvas.size == mask.size == (80, 72)
    assert px(canvas)[:64, 16:].tolist() == px(small).tolist()  # the picture in place
    m = np.asarray(mask)
    assert (m[:, :20] == 255).all() and (m[-12:] == 255).all() and (m[:60, 20:] == 0).all()
    out = inpaint(replace(params, image=canvas, mask=mask, width=80, height=72, masked_content="fill"), save=False)
    assert out.images[0].size == (80, 72)
    with pytest.raises(SdnbError, match="multiples of 8"):
        outpaint_canvas(small, right=10)
    with pytest.raises(SdnbError, match="all 0"):
        outpaint_canvas(small)


def test_bad_masks_are_refused_with_nothing_written(params: InpaintParams, _outputs: Path, tmp_path: Path) -> None:
    black, white = tmp_path / "black.png", tmp_path / "white.png"
    Image.new("L", (512, 512), 0).save(black)
    Image.new("L", (512, 512), 255).save(white)
    with pytest.raises(SdnbError, match="nothing to inpaint"):
        inpaint(params, mask=str(black))
    with pytest.raises(SdnbError, match="all white"):
        inpaint(params, mask=str(white))
    with pytest.raises(SdnbError, match="must be one of fill, original, latent noise, latent nothing"):
        inpaint(params, masked_content="latent fog")
    assert not _outputs.exists() or not any(_outputs.rglob("*.png"))
    small = tmp_path / "small_mask.png"
    Image.open(asset("portrait_mask.png")).resize((128, 100)).save(small)
    with pytest.warns(UserWarning, match="stretched to the image's size"):
        assert inpaint(params, mask=str(small), save=False).images[0].size == (64, 64)


def test_depth2img_with_a_depth_map_of_ones_own(_outputs: Path, tmp_path: Path) -> None:
    p = Depth2ImgParams(image=str(asset("launch.jpg")), strength=0.8, **TINY)
    estimated = px(depth2img(p, save=False).images[0])
    ramp = tmp_path / "ramp.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))).save(ramp)
    own = depth2img(p, depth_map=str(ramp))
    assert not np.array_equal(estimated, px(own.images[0]))
    assert "Depth map hash" in read_infotext(own.paths[0])
    with pytest.raises(SdnbError, match="depth map of your own"):
        regenerate(own.paths[0], image=p.image)
    again = regenerate(own.paths[0], image=p.image, depth_map=str(ramp), save=False)
    assert np.array_equal(px(again.images[0]), px(own.images[0]))
    flat = tmp_path / "flat.png"
    Image.new("L", (64, 64), 128).save(flat)
    with pytest.raises(SdnbError, match="one flat grey"):
        depth2img(p, depth_map=str(flat))
    with pytest.raises(SdnbError, match="cannot run depth2img"):
        depth2img(p, model="sd15")


def test_blur_softens_the_mask_edge(params: InpaintParams) -> None:
    mask = fit_image(as_image(params.mask, mode="L"), 64, 64)
    soft = np.asarray(mask.filter(ImageFilter.GaussianBlur(4)))
    assert ((soft > 0) & (soft < 255)).sum() > ((np.asarray(mask) > 0) & (np.asarray(mask) < 255)).sum()


def test_mask_maker_previews_saves_and_fills_the_form(params: InpaintParams, _outputs: Path) -> None:
    from sdnb.maskmaker import MaskMaker
    from sdnb.widgets import Form

    form = Form(params)
    maker = MaskMaker(form)
    assert maker.preview.value and not maker.status.value  # the overlay of the form's image is drawn
    maker.shape.value, maker.across.value, maker.down.value = "rectangle", (0, 50), (0, 25)
    path = Path(maker.save())
    assert form.fields["mask"].value == str(path) and path.parent == _outputs / "masks"
    mask = np.asarray(Image.open(path))
    assert mask.shape == (512, 512) and mask[:128, :256].min() == 255 and mask[128:].max() == 0 and mask[:, 256:].max() == 0
    assert form.params().mask == str(path)
    maker.across.value = (30, 30)
    assert maker.save() == "" and "no area" in maker.status.value
    form.fields["image"].value = "missing.png"
    assert "no such file" in maker.status.value
    with pytest.raises(SdnbError, match="inpainting form"):
        MaskMaker(Form(Depth2ImgParams(image=params.image)))


def test_brush_paints_erases_undoes_and_fills_the_form(params: InpaintParams, _outputs: Path) -> None:
    from sdnb.brush import Brush
    from sdnb.params import ControlNetParams
    from sdnb.widgets import Form

    form = Form(params)
    brush = Brush(form)
    assert (brush.canvas.width, brush.canvas.height) == (512, 512)  # the 512x512 portrait, shown 1:1
    assert brush.save() == "" and "Nothing is painted" in brush.status.value
    # mouse events as the browser sends them: a horizontal drag across the top, 20 px wide
    for event, x, y in [("mouse_down", 100, 50), ("mouse_move", 200, 50), ("mouse_move", 300, 50), ("mouse_up", 300, 50)]:
        brush.canvas._canvases[-1]._handle_frontend_event(None, {"event": event, "x": x, "y": y}, [])
    brush.replay([[(400, 400)]], size=40)  # a dot of radius 20
    brush.replay([[(150, 30), (150, 70)]], size=10, erase=True)  # an erased notch across the line
    mask = np.asarray(brush.picture())
    assert mask.shape == (512, 512) and mask[50, 100:144].min() == mask[50, 156:301].min() == 255 and mask[50, 150] == 0
    assert mask[400, 381] == 255 and mask[400, 419] == 255 and mask[400, 425] == 0 and mask[200, 200] == 0
    assert mask[40, 200] == mask[60, 200] == 255 and mask[35, 200] == mask[65, 200] == 0  # 24 px: 12 either side
    brush._undo()  # the notch goes, the line is whole again
    assert np.asarray(brush.picture())[50, 150] == 255
    path = Path(brush.save())
    assert form.fields["mask"].value == str(path) and path.parent == _outputs / "masks"
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(brush.picture()))
    brush._clear()
    assert np.asarray(brush.picture()).max() == 0
    form.fields["image"].value = "missing.png"
    assert "no such file" in brush.status.value
    # a scribble for ControlNet: black lines on a white page of the form's size
    cn = Form(ControlNetParams(width=64, height=96))
    sketch = Brush(cn, "control_image")
    assert (sketch.canvas.width, sketch.canvas.height) == (341, 512)
    sketch.replay([[(10, 10), (300, 500)]], size=8)
    drawn = np.asarray(sketch.picture())
    assert drawn.shape == (96, 64) and drawn.min() == 0 and drawn[0, 63] == 255
    saved = sketch.save()
    assert cn.fields["control_image"].value == saved and Path(saved).parent.name == "scribbles"
    with pytest.raises(SdnbError, match="no field 'mask'"):
        Brush(cn)
