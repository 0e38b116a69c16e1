"""ControlNet control modes as the WebUI extension runs them, per unit; the units the memory plan has room for;
the tiny ControlNet's visible effect."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sdnb.assets import asset
from sdnb.controlmode import CONTROL_MODES, SOFT_DECAY, keeps_unconditional, mode_scales
from sdnb.device import CONTROLNET_GB, Hardware, check_controlnet_units, plan_memory
from sdnb.errors import SdnbError
from sdnb.generate import controlnet
from sdnb.models import clear_cache, load_pipeline
from sdnb.params import ControlNetParams

SIZE = 64


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> str:
    image = Image.new("RGB", (SIZE, SIZE), (200, 200, 200))
    ImageDraw.Draw(image).ellipse((12, 12, 50, 50), fill=(30, 30, 30))
    path = tmp_path_factory.mktemp("modes") / "photo.png"
    image.save(path)
    return str(path)


def _params(photo: str, **changes) -> ControlNetParams:
    base = ControlNetParams(prompt="a house", steps=2, seed=5, width=SIZE, height=SIZE, control_image=photo)
    return dataclasses.replace(base, **changes)


def test_the_scales_are_the_extensions() -> None:
    """``control_scales = [weight * 0.825 ** (12 - i) for i in range(13)]``, the first 10 for SDXL."""
    assert mode_scales("Balanced", 13) == [1.0] * 13
    soft = mode_scales("My prompt is more important", 13)
    assert soft == mode_scales("ControlNet is more important", 13)
    assert soft[12] == 1.0 and soft[0] == pytest.approx(0.825**12) and soft[0] == pytest.approx(0.0994, abs=1e-4)
    assert mode_scales("My prompt is more important", 10) == soft[:10]  # SDXL's 10 residuals
    assert all(b / a == pytest.approx(1 / SOFT_DECAY) for a, b in zip(soft[:-1], soft[1:], strict=True))
    assert [keeps_unconditional(m) for m in CONTROL_MODES] == [True, True, False]


def _run_recorded(p: ControlNetParams) -> tuple[list, list]:
    """Run ``p`` and return every ControlNet output (as diffusers returns it, weight applied) and every residual
    the UNet received; the recording hooks are registered before the run's own, so they see the outputs before
    the mode scales them. The run's hooks must be gone afterwards."""
    pipe = load_pipeline(p.model, **p.validate().load_options())
    nets = list(dict.fromkeys(getattr(pipe.controlnet, "nets", [pipe.controlnet])))
    before = [len(net._forward_hooks) for net in nets]
    raw: list = []
    given: list = []
    handles = [net.register_forward_hook(lambda m, a, out: raw.append([t.clone() for t in (*out[0], out[1])]))
               for net in nets]

    def unet_pre(module, args, kwargs):
        given.append([*kwargs["down_block_additional_residuals"], kwargs["mid_block_additional_residual"]])

    handles.append(pipe.unet.register_forward_pre_hook(unet_pre, with_kwargs=True))
    try:
        controlnet(p, save=False)
    finally:
        for handle in handles:
            handle.remove()
    assert [len(net._forward_hooks) for net in nets] == before  # the run's hooks are gone
    return raw, given


@pytest.mark.parametrize(
    "modes",
    [("Balanced",), ("My prompt is more important",), ("ControlNet is more important",),
     ("ControlNet is more important", "My prompt is more important")],
)
def test_each_unit_scales_its_residuals_and_halves_as_its_mode_says(photo: str, modes: tuple[str, ...]) -> None:
    changes = {"control_mode": modes[0]}
    if len(modes) == 2:  # both units use the same tiny ControlNet object: their modes are applied in turn
        changes |= {"control2_module": "lineart", "control2_model": "sd15-lineart", "control2_image": photo,
                    "control2_weight": 0.7, "control2_mode": modes[1]}
    p = _params(photo, **changes)
    raw, given = _run_recorded(p)
    assert len(given) == p.steps and len(raw) == p.steps * len(modes)
    for step, residuals in enumerate(given):
        outputs = raw[step * len(modes):(step + 1) * len(modes)]
        for i, got in enumerate(residuals):
            assert got.shape[0] == 2  # CFG: negative half first, then the prompt's half
            expected = torch.zeros_like(got)
            for mode, out in zip(modes, outputs, strict=True):
                scale = mode_scales(mode, len(residuals))[i]
                part = out[i] * scale
                if not keeps_unconditional(mode):
                    part[0] = 0  # left out of the negative prompt's pass
                expected += part
            assert torch.allclose(got, expected, atol=1e-6), (modes, step, i)
            if modes == ("ControlNet is more important",):
                assert not got[0].any() and got[1].abs().sum() > 0
            if modes == ("My prompt is more important",) and i == 0:
                assert torch.allclose(got, outputs[0][0] * 0.825**12, atol=1e-7)


def test_the_three_modes_make_three_pictures(photo: str) -> None:
    images = {mode: np.asarray(controlnet(_params(photo, control_mode=mode), save=False).images[0], np.float64)
              for mode in CONTROL_MODES}
    a, b, c = images.values()
    assert np.abs(a - b).mean() > 0.5 and np.abs(a - c).mean() > 0.5 and np.abs(b - c).mean() > 0.5
    again = np.asarray(controlnet(_params(photo, control_mode=CONTROL_MODES[1]), save=False).images[0], np.float64)
    assert np.array_equal(again, b)  # same seed, same pixels


def test_without_cfg_no_half_is_dropped(photo: str) -> None:
    """CFG scale 1 runs one pass (no negative half): "ControlNet is more important" only softens the scales."""
    p = _params(photo, cfg_scale=1.0, control_mode="ControlNet is more important")
    raw, given = _run_recorded(p)
    scales = mode_scales(p.control_mode, len(given[0]))
    assert given[0][0].shape[0] == 1
    assert all(torch.allclose(g, r * s, atol=1e-7) for g, r, s in zip(given[0], raw[0], scales, strict=True))


def test_a_weight_sweep_visibly_changes_the_tiny_image() -> None:
    """The notebook's sweep (its portrait, canny, the tiny model's own size): weight 1 against weight 0."""
    p = ControlNetParams(prompt="a portrait of an astronaut, studio photo, soft light", seed=1,
                         control_image=str(asset("portrait.jpg")))
    zero, one = (np.asarray(controlnet(dataclasses.replace(p, control_weight=w), save=False).images[0], np.float64)
                 for w in (0.0, 1.0))
    assert np.abs(one - zero).mean() > 8  # of 255; measured 10.6 (2026-12, CPU)


def _cuda(free_gb: float) -> Hardware:
    return Hardware("cuda", "a faked GPU", 16.0, free_gb, 12.0, 100.0, {})


def test_the_memory_plan_has_room_for_the_controlnets_free_vram_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_TINY", "0")  # the real sizes (tiny mode plans no limit: its ControlNets are KBs)
    t4 = plan_memory(_cuda(14.7), "sdxl")  # a T4: SDXL 6.9 GB + 2.5 GB working memory + 1 GB headroom
    assert t4.offload == "none" and t4.controlnet_units == int((14.7 - 6.9 - 2.5 - 1) // CONTROLNET_GB["sdxl"]) == 1
    assert any("room for 1 unit" in reason for reason in t4.reasons)
    assert plan_memory(_cuda(14.7), "sd15").controlnet_units == 8  # SD 1.5's are 0.7 GB: plenty of room
    assert plan_memory(_cuda(8.0), "sdxl").controlnet_units == 0  # model offload: the UNet stays during the steps
    check_controlnet_units(t4, 1, "sdxl")
    with pytest.raises(SdnbError, match=r"2 ControlNet units need about 5 GB.*room for 1 ControlNet unit") as err:
        check_controlnet_units(t4, 2, "sdxl")
    assert "fewer units" in err.value.hint
    monkeypatch.setenv("SDNB_TINY", "1")
    assert plan_memory(_cuda(14.7), "sdxl").controlnet_units == 8


def test_more_units_than_the_plan_allows_is_refused_before_loading(photo: str, tmp_path: Path) -> None:
    tight = dataclasses.replace(plan_memory(family="sd15"), controlnet_units=1)
    load_pipeline("sd15", plan=tight)
    try:
        two = _params(photo, control2_module="lineart", control2_model="sd15-lineart", control2_image=photo)
        with pytest.raises(SdnbError, match="room for 1 ControlNet unit"):
            controlnet(two, folder=tmp_path / "out")
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
        assert controlnet(_params(photo), save=False).images  # one unit fits
    finally:
        clear_cache()  # the next test loads the model with its usual plan
