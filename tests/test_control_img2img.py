"""ControlNet on image to image and inpainting (the extension on the img2img tab), and pose detection."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sdnb.control import DEFAULT_POSE, POSE_DETECTOR_REPO, ControlUnit, control_map, detect_pose, draw_pose
from sdnb.errors import SdnbError
from sdnb.generate import controlnet_img2img, controlnet_inpaint, regenerate
from sdnb.images import as_image, read_infotext
from sdnb.params import ControlNetImg2ImgParams, ControlNetInpaintParams, params_from_infotext, task_of

SIZE = 64


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A source photo, a control photo with a dark square, a blank control and a mask of the left half."""
    folder = tmp_path_factory.mktemp("cn-img2img")
    source = Image.new("RGB", (SIZE, SIZE), (90, 140, 200))
    ImageDraw.Draw(source).ellipse((20, 20, 44, 44), fill=(230, 200, 60))
    control = Image.new("RGB", (SIZE, SIZE), (200, 200, 200))
    ImageDraw.Draw(control).rectangle((16, 16, 40, 40), fill=(30, 30, 30))
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 31, SIZE), fill=255)
    paths = {}
    for name, image in {"source": source, "control": control, "blank": Image.new("RGB", (SIZE, SIZE), (200, 200, 200)),
                        "mask": mask}.items():
        paths[name] = str(folder / f"{name}.png")
        image.save(paths[name])
    return paths


def _px(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def _img2img(files: dict[str, str], **changes) -> ControlNetImg2ImgParams:
    values = dict(prompt="a house", steps=4, seed=11, width=SIZE, height=SIZE, image=files["source"], strength=0.8,
                  control_image=files["control"]) | changes
    return ControlNetImg2ImgParams(**values)


def _inpaint(files: dict[str, str], **changes) -> ControlNetInpaintParams:
    values = dict(prompt="a house", steps=4, seed=11, width=SIZE, height=SIZE, image=files["source"],
                  mask=files["mask"], mask_blur=0, strength=0.9, control_image=files["control"]) | changes
    return ControlNetInpaintParams(**values)


def test_the_infotext_keys_choose_the_controlnet_task() -> None:
    unit = {"ControlNet 0": "Module: canny, Model: control_v11p_sd15_canny, Weight: 1"}
    assert task_of(unit) == "controlnet"
    assert task_of(unit | {"Denoising strength": "0.7"}) == "controlnet-img2img"
    assert task_of(unit | {"Denoising strength": "0.7", "Mask blur": "4"}) == "controlnet-inpaint"
    assert task_of(unit | {"Denoising strength": "0.7", "Mask blur": "4"}, "sd15-inpainting") == "controlnet-inpaint"
    assert task_of(unit | {"Denoising strength": "0.7", "Hires upscale": "2"}) == "controlnet"  # txt2img's hires fix


def test_controlnet_img2img_steers_repeats_and_regenerates(files: dict[str, str]) -> None:
    first = controlnet_img2img(_img2img(files))
    again = controlnet_img2img(_img2img(files), save=False)
    blank = controlnet_img2img(_img2img(files, control_image=files["blank"]), save=False)
    assert np.array_equal(_px(first.images[0]), _px(again.images[0]))  # same seed, same pixels
    assert np.abs(_px(first.images[0]) - _px(blank.images[0])).mean() > 0.5  # the control steers it
    text = read_infotext(first.paths[0])
    assert "Denoising strength: 0.8" in text and 'ControlNet 0: "Module: canny' in text
    assert "ControlNet 0 Image: " in text and "Source hash: " in text
    assert isinstance(params_from_infotext(text), ControlNetImg2ImgParams)
    with pytest.raises(SdnbError, match="from a source image"):
        regenerate(first.paths[0], save=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every key of its own PNG is honoured
        remade = regenerate(first.paths[0], image=files["source"], save=False)
    assert isinstance(remade.params, ControlNetImg2ImgParams)
    assert np.array_equal(_px(remade.images[0]), _px(first.images[0]))
    with pytest.raises(SdnbError, match="not the one"):
        regenerate(first.paths[0], image=files["control"], save=False)


def test_controlnet_img2img_on_sdxl(files: dict[str, str]) -> None:
    result = controlnet_img2img(_img2img(files, model="sdxl", control_model="sdxl-canny", steps=3), save=False)
    assert result.images[0].size == (SIZE, SIZE)


@pytest.mark.parametrize("model", ["sd15", "sd15-inpainting"])
def test_controlnet_inpaint_keeps_the_unmasked_part_and_regenerates(files: dict[str, str], model: str) -> None:
    first = controlnet_inpaint(_inpaint(files, model=model, control_mode="ControlNet is more important"))
    blank = controlnet_inpaint(_inpaint(files, model=model, control_image=files["blank"],
                                        control_mode="ControlNet is more important"), save=False)
    out, source = _px(first.images[0]), _px(Image.open(files["source"]))
    assert np.array_equal(out[:, 32:], source[:, 32:])  # black in the mask: kept exactly
    assert np.abs(out[:, :32] - source[:, :32]).mean() > 5  # white: repainted
    assert np.abs(out - _px(blank.images[0]))[:, :32].mean() > 0.5  # following the control there
    text = read_infotext(first.paths[0])
    assert "Mask blur: 0" in text and "Control Mode: ControlNet is more important" in text
    remade = regenerate(first.paths[0], image=files["source"], mask=files["mask"], save=False)
    assert isinstance(remade.params, ControlNetInpaintParams)
    assert np.array_equal(_px(remade.images[0]), out)


def test_only_masked_crops_the_control_maps_with_the_picture(files: dict[str, str]) -> None:
    one = controlnet_inpaint(_inpaint(files, inpaint_area="Only masked", padding=8))
    source = _px(Image.open(files["source"]))
    assert np.array_equal(_px(one.images[0])[:, 40:], source[:, 40:])
    remade = regenerate(one.paths[0], image=files["source"], mask=files["mask"], save=False)
    assert np.array_equal(_px(remade.images[0]), _px(one.images[0]))  # its control image saved at full size
    two = _inpaint(files, inpaint_area="Only masked", control2_module="lineart", control2_model="sd15-lineart",
                   control2_image=files["control"])
    assert controlnet_inpaint(two, save=False).images  # several units crop alike
    # the map the ControlNet reads is the crop of the control picture that matches the repainted crop
    from sdnb.generate import _controlnet_inpaint_inputs
    from sdnb.masks import crop_region

    p = _inpaint(files, inpaint_area="Only masked", padding=0, width=SIZE // 2)  # the mask's own shape: no growth
    box = crop_region(Image.open(files["mask"]).convert("L"), 0, p.width, p.height)
    inputs = _controlnet_inpaint_inputs(p, None)
    expected = control_map(ControlUnit(model=p.control_model, module=p.control_module,
                                       image=as_image(files["control"]).crop(box)), p.width, p.height)
    assert box == (0, 0, SIZE // 2, SIZE) and np.array_equal(_px(inputs.args["control_image"]), _px(expected))
    assert not np.array_equal(_px(expected), _px(control_map(ControlUnit(  # not the whole picture squeezed
        model=p.control_model, module=p.control_module, image=files["control"]), p.width, p.height)))


def test_pose_detection_in_tiny_mode_says_to_use_keypoints(files: dict[str, str]) -> None:
    with pytest.raises(SdnbError, match="tiny mode") as err:
        control_map(ControlUnit(model="sd15-openpose", module="openpose_detect", image=files["source"]), SIZE, SIZE)
    assert "PoseEditor" in err.value.hint and ".json" in err.value.hint


def test_pose_detection_without_controlnet_aux_says_how(monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    monkeypatch.setenv("SDNB_TINY", "0")
    monkeypatch.setitem(sys.modules, "controlnet_aux", None)  # import controlnet_aux -> ImportError
    with pytest.raises(SdnbError, match="needs controlnet-aux") as err:
        detect_pose(Image.open(files["source"]))
    assert "pip install" in err.value.hint and "PoseEditor" in err.value.hint


def test_pose_detection_uses_the_annotators_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """controlnet-aux's detector as sdnb calls it (a stand-in here: the real one needs the hub's weights)."""
    import sdnb.control as control

    calls: list = []

    class FakeDetector:
        @classmethod
        def from_pretrained(cls, repo: str) -> FakeDetector:
            calls.append(repo)
            return cls()

        def __call__(self, image: Image.Image, **kwargs) -> Image.Image:
            calls.append(kwargs)
            return draw_pose(DEFAULT_POSE, 2 * image.width, 2 * image.height)  # at its own resolution

    monkeypatch.setenv("SDNB_TINY", "0")
    monkeypatch.setitem(sys.modules, "controlnet_aux", types.SimpleNamespace(OpenposeDetector=FakeDetector))
    monkeypatch.setattr(control, "_POSE_DETECTOR", [])
    photo = Image.new("RGB", (96, 64), "gray")
    figure = detect_pose(photo)
    assert calls[0] == POSE_DETECTOR_REPO == "lllyasviel/Annotators" and calls[1]["output_type"] == "pil"
    assert figure.size == photo.size
    assert np.abs(_px(figure) - _px(draw_pose(DEFAULT_POSE, 96, 64))).mean() < 8
    detect_pose(photo)
    assert calls.count(POSE_DETECTOR_REPO) == 1  # loaded once


@pytest.mark.real
def test_openpose_detects_the_person_in_the_portrait() -> None:
    pytest.importorskip("controlnet_aux", reason="pip install controlnet-aux (sdnb[pose])")
    from sdnb.assets import asset

    photo = Image.open(asset("portrait.jpg")).convert("RGB").resize((512, 512))
    figure = np.asarray(detect_pose(photo))
    assert figure.shape == (512, 512, 3)
    coloured = figure.max(axis=2) > 60
    assert 0.002 < coloured.mean() < 0.3  # a stick figure on black, not an empty or a full picture
    ys, xs = np.nonzero(coloured)
    assert 100 < xs.mean() < 412  # the person is in the middle of the portrait
