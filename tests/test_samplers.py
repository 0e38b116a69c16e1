"""WebUI samplers and schedule types: two fields, old combined names read, faithful sigmas, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sdnb.errors import SdnbError
from sdnb.generate import regenerate, txt2img
from sdnb.images import parse_infotext, read_infotext, save_image
from sdnb.params import Txt2ImgParams, params_from_infotext, to_infotext
from sdnb.samplers import (
    SAMPLERS,
    WALK_SAMPLERS,
    make_scheduler,
    resolve_schedule,
    sampler_from_infotext,
    schedules_for,
)

#: The tiny SD 1.5 scheduler's config: the real SD 1.5 noise schedule.
SD15 = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1, "set_alpha_to_one": False,
        "skip_prk_steps": True}
PAIRS = [(sampler, schedule) for sampler in SAMPLERS for schedule in schedules_for(sampler)]


def _model_sigmas() -> np.ndarray:
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    alphas = np.cumprod(1 - betas)
    return ((1 - alphas) / alphas) ** 0.5


@pytest.mark.parametrize(("sampler", "schedule"), PAIRS)
def test_every_sampler_and_schedule_builds_the_right_scheduler(sampler: str, schedule: str) -> None:
    scheduler = make_scheduler(SD15, sampler, schedule)
    assert type(scheduler).__name__ == SAMPLERS[sampler].cls
    for key, value in SAMPLERS[sampler].config.items():
        assert scheduler.config[key] == value
    ran = resolve_schedule(sampler, schedule)
    flags = {"use_karras_sigmas": "Karras", "use_exponential_sigmas": "Exponential", "use_beta_sigmas": "Beta"}
    for flag, name in flags.items():
        assert bool(scheduler.config.get(flag, False)) == (ran == name), (flag, ran)
    scheduler.set_timesteps(10)
    assert len(scheduler.timesteps) >= 9


def test_karras_and_uniform_give_the_webuis_sigmas() -> None:
    """k-diffusion's get_sigmas_karras and its uniform get_sigmas, computed here on their own, for 10 steps."""
    sigmas = _model_sigmas()
    lo, hi, n, rho = sigmas[0], sigmas[-1], 10, 7.0
    ramp = np.linspace(0, 1, n)
    karras = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    got = make_scheduler(SD15, "DPM++ 2M", "Karras")
    got.set_timesteps(n)
    assert np.allclose(np.asarray(got.sigmas[:n]), karras, rtol=1e-4)
    euler = make_scheduler(SD15, "Euler", "Uniform")
    euler.set_timesteps(n)
    t = np.linspace(999, 0, n)
    uniform = np.interp(t, np.arange(1000), sigmas)
    assert np.allclose(np.asarray(euler.sigmas[:n]), uniform, rtol=1e-4)


def test_automatic_is_the_samplers_own_schedule_and_is_written_out() -> None:
    assert resolve_schedule("DPM++ 2M", "Automatic") == "Karras"
    assert resolve_schedule("DPM++ 2M SDE", "Automatic") == "Exponential"
    assert resolve_schedule("Euler", "Automatic") == "Uniform"
    text = to_infotext(Txt2ImgParams(prompt="a cat", width=64, height=64), 1)
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in text  # never left for the WebUI to guess
    ddim = parse_infotext(to_infotext(Txt2ImgParams(prompt="a cat", sampler="DDIM", width=64, height=64), 1))
    assert "Schedule type" not in ddim.settings  # DDIM keeps its own timesteps: no schedule type to name


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"Sampler": "DPM++ 2M Karras"}, ("DPM++ 2M", "Karras")),
        ({"Sampler": "DPM++ 2M SDE Exponential"}, ("DPM++ 2M SDE", "Exponential")),
        ({"Sampler": "DPM++ 2M", "Schedule type": "Exponential"}, ("DPM++ 2M", "Exponential")),
        ({"Sampler": "Euler a"}, ("Euler a", "Automatic")),
        ({"Sampler": "LMS Karras"}, ("LMS", "Karras")),
    ],
)
def test_old_combined_names_and_the_schedule_key_are_read(settings: dict, expected: tuple) -> None:
    assert sampler_from_infotext(settings) == expected


@pytest.mark.parametrize(
    ("sampler", "schedule", "message"),
    [
        ("DPM++ SDE", "Automatic", "use DPM\\+\\+ 2M SDE"),
        ("Restart", "Automatic", "DPM\\+\\+ 2M or Heun"),
        ("DDIM CFG++", "Automatic", "use DDIM instead"),
        ("Euler a", "Karras", "choose one of: Automatic, Uniform, SGM Uniform"),
        ("DPM++ 2M", "Align Your Steps", "closest: Karras or Exponential"),
        ("DDIM", "Karras", "choose one of: Automatic"),
    ],
)
def test_what_cannot_run_faithfully_is_refused_with_the_closest_choices(sampler, schedule, message) -> None:
    with pytest.raises(SdnbError, match=message):
        Txt2ImgParams(sampler=sampler, schedule_type=schedule).validate()


def test_a_combined_name_in_code_still_works() -> None:
    p = Txt2ImgParams(sampler="DPM++ 2M Karras").validate()
    assert (p.sampler, p.schedule_type) == ("DPM++ 2M", "Karras")


def test_overrides_apply_before_the_sampler_is_checked(pipe, tmp_path) -> None:
    text = ("a castle\nSteps: 2, Sampler: Restart, Schedule type: Automatic, CFG scale: 7, Seed: 5, Size: 64x64, "
            "Model: sd15")
    png = save_image(Image.new("RGB", (64, 64)), tmp_path, infotext=text)
    with pytest.raises(SdnbError, match="Restart"):
        regenerate(png, save=False)
    again = regenerate(png, sampler="Euler", save=False)
    assert again.params.sampler == "Euler" and again.seeds == [5]
    assert params_from_infotext(text).sampler == "Restart"  # read as written: the form can show and fix it


def test_sampler_and_schedule_change_the_image_and_round_trip(pipe) -> None:
    base = Txt2ImgParams(prompt="a cat", steps=4, seed=3)
    karras = txt2img(base, sampler="DPM++ 2M", schedule_type="Karras")
    uniform = txt2img(base, sampler="DPM++ 2M", schedule_type="Uniform")
    assert not np.array_equal(np.asarray(karras.images[0]), np.asarray(uniform.images[0]))
    again = regenerate(uniform.paths[0], save=False)
    assert again.params.schedule_type == "Uniform"
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(uniform.images[0]))
    assert "Uniform" in read_infotext(uniform.paths[0])


def test_walks_take_only_samplers_without_fresh_noise() -> None:
    assert "DPM++ 2M" in WALK_SAMPLERS and "Euler" in WALK_SAMPLERS
    assert not {"Euler a", "DPM2 a", "DPM++ 2M SDE", "DPM++ 3M SDE", "LCM"} & set(WALK_SAMPLERS)


def test_variation_seeds_mix_noise_as_the_webui_does_and_remake_exactly(pipe) -> None:
    import torch

    from sdnb.seeds import webui_slerp

    base = Txt2ImgParams(prompt="a cat", steps=4, seed=3, width=64, height=64)
    plain = txt2img(base, save=False)
    assert "Variation seed" not in plain.infotexts[0]  # written only when it acts
    mixed = txt2img(base, variation_seed=77, variation_strength=0.3, batch_size=2)
    info = parse_infotext(read_infotext(mixed.paths[1]))
    assert (info.settings["Variation seed"], info.settings["Variation seed strength"]) == ("78", "0.3")
    assert not np.array_equal(np.asarray(mixed.images[0]), np.asarray(plain.images[0]))
    again = regenerate(mixed.paths[1], save=False)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(mixed.images[1]))
    # strength 1 is the variation seed's own noise: the same image as that seed alone (deterministic sampler)
    full = txt2img(base, variation_seed=9, variation_strength=1.0, save=False)
    alone = txt2img(base, seed=9, save=False)
    assert np.abs(np.asarray(full.images[0]).astype(int) - np.asarray(alone.images[0])).max() <= 1
    a, b = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(1)), torch.randn(4, 8, 8)
    assert torch.allclose(webui_slerp(0.0, a, b), a, atol=1e-5) and torch.allclose(webui_slerp(1.0, a, b), b, atol=1e-5)


def test_a_webui_png_with_gpu_noise_is_flagged_before_regenerating(pipe, tmp_path) -> None:
    text = "a castle\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x64, Model: sd15, Version: v1.10.1"
    png = save_image(Image.new("RGB", (64, 64)), tmp_path, infotext=text)
    with pytest.warns(UserWarning, match="GPU noise"):
        regenerate(png, save=False)
