"""ControlNet: preprocessors on a sample photo, pose keypoints, units, infotext, and runs on tiny models."""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sdnb.control import (
    DEFAULT_POSE,
    KEYPOINTS,
    ControlUnit,
    canny,
    control_map,
    depth_map,
    draw_pose,
    lineart,
    pose_from_json,
    pose_to_json,
    scribble,
)
from sdnb.errors import SdnbError
from sdnb.images import read_infotext
from sdnb.params import ControlNetParams, params_from_infotext, task_of, to_infotext

SIZE = 64


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A flat grey background with a dark square (edges only on its outline) at (16..40, 16..40)."""
    image = Image.new("RGB", (SIZE, SIZE), (200, 200, 200))
    ImageDraw.Draw(image).rectangle((16, 16, 40, 40), fill=(30, 30, 30))
    path = tmp_path_factory.mktemp("control") / "photo.png"
    image.save(path)
    return str(path)


def _outline(width: int = 2) -> np.ndarray:
    """True within ``width`` pixels of the square's outline."""
    y, x = np.mgrid[:SIZE, :SIZE]
    inside = (x >= 16 - width) & (x <= 40 + width) & (y >= 16 - width) & (y <= 40 + width)
    core = (x >= 16 + width) & (x <= 40 - width) & (y >= 16 + width) & (y <= 40 - width)
    return inside & ~core


def test_canny_edges_lie_on_the_photos_edges(photo: str) -> None:
    edges = np.asarray(canny(Image.open(photo)).convert("L")) > 0
    assert edges.sum() > 40  # the whole outline
    assert not edges[~_outline()].any()  # nothing in the flat areas
    with pytest.raises(SdnbError, match="low <= high"):
        canny(Image.open(photo), 200, 100)


def test_line_art_draws_the_dark_shape_and_nothing_on_flat_ground(photo: str) -> None:
    lines = np.asarray(lineart(Image.open(photo)).convert("L")).astype(float)
    assert lines[_outline(3)].mean() > 40
    y, x = np.mgrid[:SIZE, :SIZE]
    far = (x > 56) | (y > 56) | (x < 6) | (y < 6)
    assert lines[far].max() < 10


def test_scribble_turns_dark_strokes_on_paper_into_white_on_black() -> None:
    page = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(page).line((5, 5, 60, 60), fill="black", width=3)
    out = np.asarray(scribble(page).convert("L"))
    assert out[32, 32] == 255 and out[5, 60] == 0
    assert np.array_equal(np.asarray(scribble(Image.fromarray(255 - np.asarray(page)))), np.asarray(scribble(page)))


def test_depth_map_comes_from_the_depth_models_estimator(photo: str) -> None:
    depth = depth_map(Image.open(photo))
    values = np.asarray(depth.convert("L"))
    assert depth.size == (SIZE, SIZE) and values.min() == 0 and values.max() == 255  # normalised, not flat


def test_the_pose_figure_has_its_joints_where_the_keypoints_say() -> None:
    figure = np.asarray(draw_pose(DEFAULT_POSE, 128, 128))
    for name in KEYPOINTS:
        x, y = DEFAULT_POSE[name]
        assert figure[int(y * 128), int(x * 128)].any(), name
    assert not figure[2, 2].any() and not figure[125, 2].any()  # black around the figure
    neck_x, neck_y = DEFAULT_POSE["neck"]
    assert tuple(figure[int(neck_y * 128), int(neck_x * 128)]) == (255, 85, 0)  # OpenPose's neck colour
    missing = dict(DEFAULT_POSE)
    del missing["left_wrist"]
    assert np.asarray(draw_pose(missing, 128, 128)).sum() < figure.sum()


def test_pose_json_round_trip_and_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "pose.json"
    path.write_text(pose_to_json(DEFAULT_POSE, 512, 768))
    (person,) = pose_from_json(path)
    assert person.keys() == DEFAULT_POSE.keys()
    assert all(np.allclose(person[k], DEFAULT_POSE[k], atol=1e-3) for k in KEYPOINTS)
    for bad, reason in [
        ("{", "malformed"),
        ('{"people": []}', "no people"),
        ('{"people": [{"pose_keypoints_2d": [1, 2, 1]}]}', "3 numbers"),
        (json.dumps({"canvas_width": 10, "canvas_height": 10, "people": [{"pose_keypoints_2d": [50] * 54}]}),
         "between 0 and 1"),
    ]:
        with pytest.raises(SdnbError, match=reason) as err:
            pose_from_json(bad)
        assert "pose_keypoints_2d" in err.value.hint
    with pytest.raises(SdnbError, match="Unknown pose keypoint"):
        draw_pose({"tail": (0.5, 0.5)}, 64, 64)


def test_a_control_image_of_another_size_is_resized_with_a_notice(photo: str) -> None:
    big = Image.open(photo).resize((128, 96))
    with pytest.warns(UserWarning, match="stretched to fit"):
        out = control_map(ControlUnit(image=big), SIZE, SIZE)
    assert out.size == (SIZE, SIZE)


def _params(photo: str, **changes) -> ControlNetParams:
    base = ControlNetParams(prompt="a house", steps=3, seed=7, width=SIZE, height=SIZE, control_image=photo)
    return dataclasses.replace(base, **changes)


def test_infotext_is_written_and_read_as_the_webui_extension_writes_it(photo: str) -> None:
    p = _params(photo, control_weight=0.5, control_start=0.2, control2_module="lineart", control2_image=photo,
                control2_model="sd15-lineart").validate()
    text = to_infotext(p, p.seed)
    assert ('ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny, Weight: 0.5, Resize Mode: Just Resize, '
            'Threshold A: 100, Threshold B: 200, Guidance Start: 0.2, Guidance End: 1, Control Mode: Balanced"') in text
    assert "Module: lineart_standard" in text
    back = params_from_infotext(text)
    assert isinstance(back, ControlNetParams)
    assert back.units() == [dataclasses.replace(u, image="") for u in p.units()]
    webui = ('a house\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, ControlNet 0: "Module: '
             'canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.8, Resize Mode: Crop and Resize, Low Vram: '
             'False, Processor Res: 512, Threshold A: 50, Threshold B: 150, Guidance Start: 0.1, Guidance End: 0.9, '
             'Pixel Perfect: False, Control Mode: Balanced"')
    (unit,) = params_from_infotext(webui).units()
    assert (unit.model, unit.weight, unit.start, unit.end, unit.low, unit.high) == ("sd15-canny", 0.8, 0.1, 0.9, 50,
                                                                                    150)
    old = {"ControlNet 0": "preprocessor: canny, model: control_v11p_sd15_canny [d14c016b], weight: 1, "
           "starting/ending: (0.25, 0.75), control mode: Balanced", "Steps": "4", "Size": "64x64", "Seed": "1", "CFG scale": "7"}
    assert task_of(old) == "controlnet"
    (unit,) = ControlNetParams.from_settings("a", "", old).units()
    assert (unit.start, unit.end) == (0.25, 0.75)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"control_start": 0.6, "control_end": 0.4}, "start < end"),
        ({"control_image": ""}, "give the path of its control image"),
        ({"control_module": "hed"}, "preprocessor 'hed' is not one of"),
        ({"control_mode": "Guess"}, "control mode 'Guess' is not one of"),
    ],
)
def test_bad_units_are_one_clear_error(photo: str, changes: dict, message: str) -> None:
    with pytest.raises(SdnbError, match=message):
        _params(photo, **changes).validate()


def test_a_controlnet_of_another_family_names_both(photo: str, tmp_path: Path) -> None:
    from sdnb.generate import controlnet

    with pytest.raises(SdnbError, match="made for sdxl models, not sd15"):
        controlnet(_params(photo, control_model="sdxl-canny"), folder=tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.png")) if (tmp_path / "out").exists() else True


def _px(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def test_one_and_two_units_steer_the_image_and_regenerate_remakes_it(photo: str, tmp_path: Path) -> None:
    from sdnb.generate import controlnet, regenerate

    blank = tmp_path / "blank.png"
    Image.new("RGB", (SIZE, SIZE), (200, 200, 200)).save(blank)
    one = controlnet(_params(photo))
    again = controlnet(_params(photo), save=False)
    other = controlnet(_params(str(blank)), save=False)
    assert np.array_equal(_px(one.images[0]), _px(again.images[0]))  # same seed, same pixels
    assert np.abs(_px(one.images[0]) - _px(other.images[0])).mean() > 0.5  # the control steers the picture
    folder = one.paths[0].parent
    controls = sorted(folder.glob("*-control0.png"))
    assert len(controls) == 1 and Image.open(controls[0]).size == (SIZE, SIZE)
    assert f"ControlNet 0 Image: {controls[0].name}" in read_infotext(one.paths[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every key of its own PNG is honoured
        remade = regenerate(one.paths[0], save=False)
    assert np.array_equal(_px(remade.images[0]), _px(one.images[0]))

    two = controlnet(_params(photo, control2_module="lineart", control2_model="sd15-lineart", control2_image=photo))
    assert np.abs(_px(two.images[0]) - _px(one.images[0])).mean() > 0.5
    assert len(list(two.paths[0].parent.glob("*-control1.png"))) == 1
    remade = regenerate(two.paths[0], save=False)
    assert np.array_equal(_px(remade.images[0]), _px(two.images[0]))


def test_start_and_end_choose_the_steps_that_see_the_control(photo: str) -> None:
    from sdnb.generate import controlnet
    from sdnb.models import load_controlnet

    net = load_controlnet("sd15-canny")
    scales: list[float] = []
    handle = net.register_forward_pre_hook(lambda module, args, kwargs: scales.append(kwargs["conditioning_scale"]),
                                           with_kwargs=True)
    try:
        for start, end in ((0.0, 1.0), (0.0, 0.5), (0.5, 1.0)):
            scales.clear()
            controlnet(_params(photo, steps=4, cfg_scale=1.0, control_start=start, control_end=end), save=False)
            yield_steps = [i for i, s in enumerate(scales) if s > 0]
            expected = [i for i in range(4) if not (i / 4 < start or (i + 1) / 4 > end)]
            assert len(scales) == 4 and yield_steps == expected, (start, end, scales)
    finally:
        handle.remove()


def test_sdxl_controlnet_runs(photo: str) -> None:
    from sdnb.generate import controlnet

    result = controlnet(_params(photo, model="sdxl", control_model="sdxl-canny", steps=2), save=False)
    assert result.images[0].size == (SIZE, SIZE)


def test_the_pose_editor_moves_a_joint_and_redraws() -> None:
    from sdnb.control import PoseEditor

    editor = PoseEditor(DEFAULT_POSE, size=64)
    assert editor.pose() == DEFAULT_POSE
    before = editor.preview.value
    editor.sliders["left_wrist"][1].value = 0.1  # raise the left hand
    assert editor.pose()["left_wrist"] == (DEFAULT_POSE["left_wrist"][0], 0.1)
    assert editor.preview.value != before
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(editor.preview.value))),
                          np.asarray(draw_pose(editor.pose(), 64, 64)))


def test_control_mode_controlnet_is_more_important_changes_the_image(photo: str) -> None:
    from sdnb.generate import controlnet

    balanced = controlnet(_params(photo, steps=2), save=False).images[0]
    control_first = controlnet(_params(photo, steps=2, control_mode="ControlNet is more important"), save=False)
    assert np.abs(_px(balanced) - _px(control_first.images[0])).mean() > 0.5
    assert "Control Mode: ControlNet is more important" in control_first.infotexts[0]
