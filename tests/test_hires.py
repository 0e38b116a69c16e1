"""Hires fix as the WebUI does it, on the tiny SD 1.5: both passes, the WebUI's keys written and read, regenerate,
the second pass's step count, sizes (scale, resize, crop), and one clear error for each bad setting."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdnb.errors import SdnbError
from sdnb.generate import hires_fix, regenerate
from sdnb.images import parse_infotext, read_infotext
from sdnb.params import HIRES_UPSCALERS, HiresParams, Img2ImgParams, params_from_infotext, task_of, to_infotext

FAST = dict(prompt="a red fox in the snow", schedule_type="Karras", width=64, height=64, steps=3, seed=11, hires_steps=2,
            denoising_strength=0.5, hires_upscale=1.5)

WEBUI = ("a castle on a hill\nNegative prompt: fog\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, "
         "CFG scale: 7, Seed: 1234, Size: 512x512, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, "
         "Hires upscale: 2, Hires steps: 10, Hires upscaler: R-ESRGAN 4x+, Version: v1.10.1")


class Steps:
    """A Progress that records each pass's total and the last step reached."""

    def __init__(self) -> None:
        self.passes: list[list[int]] = []

    def start(self, total: int, what: str) -> None:
        self.passes.append([total, 0])

    def update(self, done: int, preview: Image.Image | None = None) -> None:
        self.passes[-1][1] = done

    def finish(self, message: str) -> None:
        pass


def test_webui_infotext_is_read_as_hires_fix() -> None:
    p = params_from_infotext(WEBUI)
    assert isinstance(p, HiresParams)
    assert (p.hires_upscale, p.hires_steps, p.hires_upscaler, p.denoising_strength) == (2.0, 10, "R-ESRGAN 4x+", 0.45)
    assert (p.width, p.height, p.steps, p.seed, p.model) == (512, 512, 20, 1234, "sd15")
    settings = parse_infotext(WEBUI).settings
    assert task_of(settings) == "hires"
    settings.pop("Hires upscale"), settings.pop("Hires steps"), settings.pop("Hires upscaler")
    assert task_of(settings) == "img2img"  # Denoising strength alone: image to image


def test_infotext_round_trip_and_webui_rules() -> None:
    p = HiresParams(**FAST).validate()
    text = to_infotext(p, 11)
    settings = parse_infotext(text).settings
    assert settings["Hires upscale"] == "1.5" and settings["Hires steps"] == "2"
    assert settings["Hires upscaler"] == "Latent" and settings["Denoising strength"] == "0.5"
    assert settings["Size"] == "64x64" and "Hires resize" not in settings  # Size is the first pass's
    assert params_from_infotext(text) == p
    # resizing to a size writes Hires resize instead of Hires upscale; Hires steps 0 is not written
    q = HiresParams(**FAST | {"hires_resize_x": 96, "hires_resize_y": 80, "hires_steps": 0}).validate()
    settings = parse_infotext(to_infotext(q, 11)).settings
    assert settings["Hires resize"] == "96x80" and "Hires upscale" not in settings and "Hires steps" not in settings
    assert params_from_infotext(to_infotext(q, 11)) == dataclasses.replace(q, hires_upscale=2.0)  # unused: default


def test_hires_sizes_follow_the_webui() -> None:
    def size(**kw: int | float) -> tuple[int, int, int, int]:
        return HiresParams(**FAST | {"width": 64, "height": 48} | kw).validate().hires_size()

    assert size(hires_upscale=2) == (128, 96, 128, 96)
    assert size(hires_resize_x=128) == (128, 96, 128, 96)  # the other side keeps the aspect ratio
    assert size(hires_resize_y=96) == (128, 96, 128, 96)
    assert size(hires_resize_x=96, hires_resize_y=96) == (96, 96, 128, 96)  # covers the target, then cropped


@pytest.mark.parametrize("upscaler", ["Latent (bicubic antialiased)", "R-ESRGAN 4x+"])
def test_two_passes_regenerate_exactly(upscaler: str, _outputs: Path) -> None:
    progress = Steps()
    result = hires_fix(HiresParams(**FAST | {"hires_upscaler": upscaler}), progress=progress)
    assert [image.size for image in result.images] == [(96, 96)]
    assert progress.passes == [[3, 3], [2, 2]]  # the second pass runs exactly Hires steps, as in the WebUI
    (path,) = result.paths
    assert path.parent == _outputs / "hires" and Image.open(path).size == (96, 96)
    settings = parse_infotext(read_infotext(path)).settings
    assert settings["Hires upscaler"] == upscaler and settings["Steps"] == "3" and settings["Size"] == "64x64"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "regenerate cannot honour")
        again = regenerate(path)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[0]))
    assert len(list((_outputs / "hires").glob("*.png"))) == 2


def test_second_pass_changes_with_strength_and_upscaler() -> None:
    base = hires_fix(HiresParams(**FAST), save=False).images[0]
    stronger = hires_fix(HiresParams(**FAST | {"denoising_strength": 0.9}), save=False).images[0]
    lanczos = hires_fix(HiresParams(**FAST | {"hires_upscaler": "Lanczos"}), save=False).images[0]
    assert not np.array_equal(np.asarray(base), np.asarray(stronger))
    assert not np.array_equal(np.asarray(base), np.asarray(lanczos))


def test_batch_images_keep_their_own_seeds(_outputs: Path) -> None:
    result = hires_fix(HiresParams(**FAST | {"batch_size": 2, "hires_resize_x": 96, "hires_resize_y": 80}))
    assert result.seeds == [11, 12] and [image.size for image in result.images] == [(96, 80), (96, 80)]
    settings = parse_infotext(read_infotext(result.paths[1])).settings
    assert (settings["Batch pos"], settings["Hires resize"]) == ("1", "96x80")
    again = regenerate(result.paths[1])
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[1]))


@pytest.mark.parametrize(("change", "words"), [
    ({"hires_upscale": 1.3}, "not a multiple of 8"),
    ({"hires_upscaler": "SwinIR 4x"}, "Upscaler must be one of"),
    ({"denoising_strength": 0.1, "hires_steps": 2}, "no step to run"),
    ({"hires_upscale": 9.0}, "Upscale by must be between"),
    ({"width": 60}, "multiple of 8"),
])
def test_bad_settings_give_one_clear_error_and_write_nothing(change: dict, words: str, _outputs: Path) -> None:
    with pytest.raises(SdnbError, match=words):
        hires_fix(HiresParams(**FAST | change))
    assert not _outputs.exists() or not any(_outputs.rglob("*.png"))


def test_hires_is_its_own_task_and_refuses_a_pipe(pipe) -> None:
    assert "Lanczos" in HIRES_UPSCALERS and HiresParams.task == "hires"
    assert not isinstance(HiresParams(), Img2ImgParams)
    with pytest.raises(SdnbError, match="loads its two pipelines"):
        hires_fix(HiresParams(**FAST), pipe=pipe)


def test_latent_modes_enlarge_the_first_passs_own_latents_without_the_vae(monkeypatch: pytest.MonkeyPatch) -> None:
    """The WebUI's latent hires fix enlarges the sampler's latents; nothing goes through the VAE encoder."""
    from sdnb import engine
    from sdnb.models import load_pipeline

    vae = load_pipeline("sd15").vae
    encoded: list[int] = []
    real = vae.encode
    monkeypatch.setattr(vae, "encode", lambda *a, **k: encoded.append(1) or real(*a, **k))
    seen: list[engine.Result] = []
    render = engine.render

    def keep(*args, **kwargs):
        seen.append(render(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr("sdnb.generate.render", keep)
    hires_fix(HiresParams(**FAST), save=False)
    assert encoded == []
    first = seen[0]
    assert len(first.latents) == 1 and tuple(first.latents[0].shape) == (4, 8, 8)  # 64 px first pass
