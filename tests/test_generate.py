import threading

import numpy as np
import pytest
from PIL import Image

from sdnb.errors import SdnbError
from sdnb.generate import regenerate, txt2img
from sdnb.images import parse_infotext, read_infotext
from sdnb.notebook import check_images
from sdnb.params import Txt2ImgParams
from sdnb.prompts import encode_prompt, token_count
from sdnb.samplers import SAMPLERS
from sdnb.sweep import xy_grid

FAST = Txt2ImgParams(prompt="a cat in a forest", steps=4, seed=123)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def test_same_seed_same_pixels_and_batch_seeds_follow_the_webui_rule(pipe, _outputs) -> None:
    a = txt2img(FAST, batch_size=2, batch_count=2)
    b = txt2img(FAST)
    assert a.seeds == [123, 124, 125, 126]
    assert np.abs(pixels(a.images[0]).astype(int) - pixels(b.images[0])).max() <= 1  # batched math rounds
    assert not np.array_equal(pixels(a.images[0]), pixels(a.images[1]))
    assert len({p.name for p in a.paths + b.paths}) == 5  # nothing overwritten
    assert check_images(a.paths, (64, 64)).startswith("✓")
    info = parse_infotext(read_infotext(a.paths[1]))
    assert info.prompt == "a cat in a forest"
    assert info.settings["Seed"] == "124" and info.settings["Size"] == "64x64"
    assert info.settings["Sampler"] == "DPM++ 2M" and info.settings["Schedule type"] == "Karras"
    assert info.settings["Steps"] == "4"


def test_requested_size_is_what_is_saved(pipe) -> None:
    r = txt2img(FAST, width=96, height=48)
    assert r.images[0].size == (96, 48)
    assert check_images(r.paths, (96, 48))
    with pytest.raises(SdnbError, match="96x48, expected 64x64"):
        check_images(r.paths, (64, 64))
    with pytest.raises(SdnbError, match="saved no images"):
        check_images([], (64, 64))


def test_regenerate_from_png_gives_the_same_image(pipe) -> None:
    first = txt2img(FAST, seed=-1, sampler="Euler a", cfg_scale=5.5)
    again = regenerate(first.paths[0], save=False)
    assert again.seeds == first.seeds and first.seeds[0] != -1
    assert np.array_equal(pixels(first.images[0]), pixels(again.images[0]))


def test_regenerate_a_batch_member_is_pixel_exact(pipe) -> None:
    batch = txt2img(FAST, batch_size=3)
    assert parse_infotext(read_infotext(batch.paths[2])).settings["Batch pos"] == "2"
    again = regenerate(batch.paths[2], save=False)
    assert again.seeds == [125]
    assert np.array_equal(pixels(batch.images[2]), pixels(again.images[0]))


def test_regenerate_without_parameters_is_a_clear_error(tmp_path) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(SdnbError, match="no generation parameters"):
        regenerate(plain)


def test_stop_keeps_finished_images_and_drops_the_partial_batch(pipe) -> None:
    stop = threading.Event()

    class StopAfterFirstImage:
        def start(self, total, what):
            pass

        def update(self, done, preview=None):
            if done > FAST.steps + 1:  # second image is under way
                stop.set()

        def finish(self, message):
            self.message = message

    progress = StopAfterFirstImage()
    r = txt2img(FAST, batch_count=3, stop=stop, progress=progress)
    assert r.interrupted
    assert len(r.images) == len(r.paths) == 1
    assert progress.message.startswith("Stopped")


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_runs(pipe, sampler: str) -> None:
    r = txt2img(FAST, sampler=sampler, save=False)
    assert r.images[0].size == (64, 64)


@pytest.mark.parametrize("model", ["sd21", "sdxl"])
def test_other_families_run(model: str) -> None:
    r = txt2img(FAST, model=model, steps=2)
    assert check_images(r.paths, (64, 64))


def test_capture_steps_and_cfg_grid(pipe) -> None:
    r = txt2img(FAST, capture_steps=(1, 4), save=False)
    assert sorted(r.steps_seen) == [1, 4]
    grid = xy_grid(lambda p: txt2img(p, save=False).images[0], FAST, "cfg_scale", [1.0, 7.0])
    assert grid.width >= 2 * 64
    two_d = xy_grid(lambda p: txt2img(p, save=False).images[0], FAST, "cfg_scale", [1.0, 7.0], "steps", [2, 3])
    assert two_d.height > grid.height
    with pytest.raises(SdnbError, match="no parameter"):
        xy_grid(lambda p: None, FAST, "strength", [0.5])


def test_long_prompts_are_chunked_not_cut(pipe) -> None:
    long_prompt = ", ".join(["a red cat", "a blue dog", "a green tree", "a small house"] * 12)
    n = token_count(pipe, long_prompt)
    assert n > 150
    e = encode_prompt(pipe, long_prompt, "")
    assert e.cond.shape[1] == e.uncond.shape[1] == 77 * -(-n // 75)  # every token kept, 75 per chunk
    short = encode_prompt(pipe, "a red cat", "")
    assert short.cond.shape[1] == 77
    r = txt2img(FAST, prompt=long_prompt, save=False)
    assert r.images[0].size == (64, 64)


def test_sdxl_long_prompts_are_chunked_not_cut() -> None:
    from sdnb.models import load_pipeline

    xl = load_pipeline("sdxl")
    e = encode_prompt(xl, " ".join(["cat"] * 100))
    assert e.cond.shape[1] == e.uncond.shape[1] == 2 * 77  # both text encoders read every chunk


@pytest.mark.parametrize("prompt", ["", "🐱 一只猫 in the rain ☔", "line one\nline two"])
def test_empty_unicode_and_multiline_prompts_work(pipe, prompt: str) -> None:
    r = txt2img(FAST, prompt=prompt)
    assert parse_infotext(read_infotext(r.paths[0])).prompt == prompt.strip()


def test_safety_checker_hits_are_reported(pipe, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdnb.engine as engine

    real = engine.call_pipeline

    def flag_second(*args, **kwargs):
        images, nsfw, interrupted = real(*args, **kwargs)
        return images, [i == 1 for i in range(len(images))], interrupted

    class Last:
        def start(self, total, what):
            pass

        def update(self, done, preview=None):
            pass

        def finish(self, message):
            self.message = message

    monkeypatch.setattr(engine, "call_pipeline", flag_second)
    progress = Last()
    r = txt2img(FAST, batch_size=2, progress=progress)
    assert r.flagged == [1]
    assert "safety checker" in progress.message and "[1]" in progress.message
