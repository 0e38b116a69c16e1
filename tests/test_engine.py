"""The one engine under every task: each pipeline class the course uses runs through it on tiny models, with
Stop, progress and same-seed-same-pixels checked for each; one load per model; inputs checked by signature."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdnb import engine, models
from sdnb.engine import Inputs, call_pipeline, render
from sdnb.errors import SdnbError
from sdnb.generate import regenerate, run_task
from sdnb.images import parse_infotext, read_infotext
from sdnb.models import load_pipeline
from sdnb.params import (
    Depth2ImgParams,
    GenParams,
    Img2ImgParams,
    InpaintParams,
    Txt2ImgParams,
    UpscaleParams,
    params_from_infotext,
    to_infotext,
)
from sdnb.samplers import resolve_schedule

STEPS = 3


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A source picture with real structure (a gradient and a disc) and a mask that covers its middle."""
    folder = tmp_path_factory.mktemp("sources")
    x, y = np.meshgrid(np.linspace(0, 255, 64), np.linspace(0, 255, 64))
    rgb = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    rgb[(x - 128) ** 2 + (y - 128) ** 2 < 60**2] = (250, 240, 40)
    Image.fromarray(rgb).save(folder / "source.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 20, 44, 44))
    mask.save(folder / "mask.png")
    Image.fromarray(rgb).resize((16, 16)).save(folder / "small.png")
    return {"image": str(folder / "source.png"), "mask": str(folder / "mask.png"), "small": str(folder / "small.png")}


def _params(case: str, src: dict[str, str]) -> GenParams:
    common = {"prompt": "a red fox in the snow", "steps": STEPS, "seed": 11, "width": 64, "height": 64}
    image = {"image": src["image"], "strength": 0.9}
    return {
        "sd15 txt2img": lambda: Txt2ImgParams(**common),
        "sd15 img2img": lambda: Img2ImgParams(**common, **image),
        "sd15 inpaint (base model)": lambda: InpaintParams(**common, **image, mask=src["mask"]),
        "sd15-inpainting inpaint (9 channels)": lambda: InpaintParams(**common, **image, mask=src["mask"],
                                                                      model="sd15-inpainting"),
        "sd2-depth depth2img": lambda: Depth2ImgParams(**common, **image),
        "x4-upscaler upscale": lambda: UpscaleParams(**common, image=src["small"]),
        "sdxl txt2img": lambda: Txt2ImgParams(**common, model="sdxl"),
        "sdxl img2img": lambda: Img2ImgParams(**common, **image, model="sdxl"),
        "sdxl inpaint": lambda: InpaintParams(**common, **image, mask=src["mask"], model="sdxl"),
    }[case]()


CASES = ["sd15 txt2img", "sd15 img2img", "sd15 inpaint (base model)", "sd15-inpainting inpaint (9 channels)",
         "sd2-depth depth2img", "x4-upscaler upscale", "sdxl txt2img", "sdxl img2img", "sdxl inpaint"]
PIPELINE = {
    "sd15 txt2img": "StableDiffusionPipeline",
    "sd15 img2img": "StableDiffusionImg2ImgPipeline",
    "sd15 inpaint (base model)": "StableDiffusionInpaintPipeline",
    "sd15-inpainting inpaint (9 channels)": "StableDiffusionInpaintPipeline",
    "sd2-depth depth2img": "StableDiffusionDepth2ImgPipeline",
    "x4-upscaler upscale": "StableDiffusionUpscalePipeline",
    "sdxl txt2img": "StableDiffusionXLPipeline",
    "sdxl img2img": "StableDiffusionXLImg2ImgPipeline",
    "sdxl inpaint": "StableDiffusionXLInpaintPipeline",
}


class Recorder:
    """Progress that records every update and sets ``stop`` at update number ``stop_at``."""

    def __init__(self, stop: threading.Event | None = None, stop_at: int = 0) -> None:
        self.stop, self.stop_at, self.updates, self.previews, self.message = stop, stop_at, [], 0, ""

    def start(self, total: int, what: str) -> None:
        self.total = total

    def update(self, done: int, preview: Image.Image | None = None) -> None:
        self.updates.append(done)
        self.previews += preview is not None
        if self.stop is not None and len(self.updates) >= self.stop_at:
            self.stop.set()

    def finish(self, message: str) -> None:
        self.message = message


def px(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


@pytest.mark.parametrize("case", CASES)
def test_every_task_runs_through_the_engine_with_seeds_progress_and_stop(case: str, sources, _outputs: Path) -> None:
    p = _params(case, sources)
    progress = Recorder()
    batch = run_task(p, batch_size=2, progress=progress, preview_every=1)
    assert type(load_pipeline(p.model, task=p.task)).__name__ == PIPELINE[case]
    size = (64, 64)
    assert [im.size for im in batch.images] == [size, size] and batch.seeds == [11, 12]
    # progress: every step reported, with live previews, ending at the total
    assert progress.updates and progress.updates[-1] == progress.total and progress.previews >= 1
    assert progress.message.startswith("Done: 2 image(s)")
    # same seed, same pixels; image k of a batch is seed + k on its own (batched arithmetic may round)
    again = run_task(p, batch_size=2, save=False)
    assert all(np.array_equal(px(a), px(b)) for a, b in zip(batch.images, again.images, strict=True))
    alone = run_task(p, seed=12, save=False)
    assert np.abs(px(alone.images[0]) - px(batch.images[1])).max() <= 2
    other = run_task(p, seed=99, save=False)
    assert np.abs(px(other.images[0]) - px(batch.images[0])).mean() > 0.5, "the seed must change the image"
    # saved with the task's infotext, which names the task's keys
    assert len(batch.paths) == 2 and all(path.parent.name == p.task for path in batch.paths)
    info = parse_infotext(read_infotext(batch.paths[1]))
    assert info.settings["Seed"] == "12" and info.settings["Batch pos"] == "1"
    assert type(params_from_infotext(read_infotext(batch.paths[1]))) is type(p)
    # Stop after the first step: the half-done batch is dropped, nothing is saved, the message says so
    stop = threading.Event()
    stopped_progress = Recorder(stop, stop_at=1)
    stopped = run_task(p, batch_count=2, stop=stop, progress=stopped_progress)
    assert stopped.interrupted and not stopped.images and not stopped.paths
    assert stopped_progress.updates == [1] and stopped_progress.message.startswith("Stopped after 0 of 2 image(s)")


def test_inpainting_keeps_every_unmasked_pixel(sources) -> None:
    p = _params("sd15 inpaint (base model)", sources)
    out = px(run_task(p, mask_blur=0, save=False).images[0])
    source = px(Image.open(sources["image"]))
    keep = np.asarray(Image.open(sources["mask"])) == 0
    assert np.array_equal(out[keep], source[keep])
    assert np.abs(out[~keep] - source[~keep]).mean() > 1  # the masked part was repainted
    inverted = px(run_task(p, mask_blur=0, mask_mode="Inpaint not masked", save=False).images[0])
    assert np.array_equal(inverted[~keep], source[~keep])
    only = px(run_task(p, mask_blur=0, inpaint_area="Only masked", padding=4, save=False).images[0])
    assert np.array_equal(only[keep], source[keep])


def test_img2img_strength_decides_the_steps_run(sources) -> None:
    p = _params("sd15 img2img", sources)
    for strength, steps in ((1.0, 3), (0.7, 2), (0.34, 1)):
        progress = Recorder()
        run_task(p, strength=strength, save=False, progress=progress, preview_every=0)
        assert progress.total == steps == len(progress.updates)
    with pytest.raises(SdnbError, match="at least one step"):
        run_task(p, strength=0.2, save=False)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_controlnet_pipelines_run_through_the_engine(family: str, sources) -> None:
    net = f"{family}-canny"
    pipe = load_pipeline(family, task="txt2img", controlnet=net)
    assert "ControlNet" in type(pipe).__name__
    assert load_pipeline(family, task="txt2img", controlnet=net) is pipe  # attached once, then reused
    p = Txt2ImgParams(prompt="a red fox", steps=STEPS, seed=5, width=64, height=64, model=family).validate()
    edges = Image.open(sources["image"]).convert("RGB")
    blank = Image.new("RGB", (64, 64))
    noise = (pipe.unet.config.in_channels, 8, 8)

    progress = Recorder()

    def run(control: Image.Image, stop: threading.Event | None = None) -> engine.Result:
        inputs = Inputs(args={"image": control, "height": 64, "width": 64}, noise=noise)
        return render(p, pipe, inputs, folder=None, stop=stop, progress=Recorder(stop, stop_at=1) if stop else progress)

    a, b, c = run(edges), run(edges), run(blank)
    assert progress.updates[:STEPS] == list(range(1, STEPS + 1))
    assert np.array_equal(px(a.images[0]), px(b.images[0]))
    assert np.abs(px(a.images[0]) - px(c.images[0])).mean() > 0.5, "the control image must steer the image"
    stopped = run(edges, threading.Event())
    assert stopped.interrupted and not stopped.images


def test_controlnet_with_img2img_and_several_units(sources) -> None:
    pipe = load_pipeline("sd15", task="img2img", controlnet=["sd15-canny", "sd15-depth"])
    assert type(pipe).__name__ == "StableDiffusionControlNetImg2ImgPipeline"
    p = Img2ImgParams(prompt="a fox", steps=STEPS, seed=3, width=64, height=64, image=sources["image"]).validate()
    control = Image.open(sources["image"]).convert("RGB")
    inputs = Inputs(args={"image": Image.open(sources["image"]).convert("RGB"), "control_image": [control, control],
                          "strength": 0.9, "controlnet_conditioning_scale": [1.0, 0.5]})
    result = render(p, pipe, inputs, folder=None)
    assert result.images[0].size == (64, 64)


def test_a_second_task_on_the_same_model_does_not_reload_it(monkeypatch: pytest.MonkeyPatch) -> None:
    models.clear_cache()
    loads: list[str] = []
    real = models._from_source

    def counting(cls, *args, **kwargs):
        loads.append(cls.__name__)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(models, "_from_source", counting)
    base = load_pipeline("sd15")
    pipes = [load_pipeline("sd15", task=task) for task in ("img2img", "inpaint", "txt2img", "img2img")]
    assert loads == ["StableDiffusionPipeline"]  # the weights were read once
    assert pipes[2] is base and pipes[3] is pipes[0]  # each task's pipeline is made once
    assert all(p.unet is base.unet and p.vae is base.vae and p.text_encoder is base.text_encoder for p in pipes)
    load_pipeline("sd15", task="txt2img", controlnet="sd15-canny")
    assert loads == ["StableDiffusionPipeline"]  # a ControlNet is attached, the base is not reloaded
    load_pipeline("sdxl")
    assert loads == ["StableDiffusionPipeline", "StableDiffusionXLPipeline"]  # another model replaces it


def test_an_input_the_pipeline_does_not_declare_is_an_error(pipe, sources) -> None:
    import torch

    img2img = load_pipeline("sd15", task="img2img")
    with pytest.raises(SdnbError, match="does not take 'latents'") as err:
        call_pipeline(img2img, {"latents": torch.zeros(1, 4, 8, 8), "prompt": "a cat"})
    assert "strength" in err.value.hint  # lists what it does take
    with pytest.raises(SdnbError, match="does not take 'image', 'strength'"):
        run_task(Img2ImgParams(image=sources["image"], steps=2), pipe=pipe)  # a txt2img pipeline


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: load_pipeline("sd15", task="paint"), "Unknown task 'paint'"),
        (lambda s: run_task(Depth2ImgParams(model="sd15", image=s["image"])), "'sd15' cannot run depth2img"),
        (lambda s: load_pipeline("sd15", task="depth2img"), "(?s)cannot run depth2img.*sd2-depth"),
        (lambda s: load_pipeline("sd15-inpainting", task="txt2img"), "cannot run txt2img"),
        (lambda s: run_task(Img2ImgParams(image=123)), "give the path of an image file"),
        (lambda s: run_task(Img2ImgParams(image="")), "give the path of an image file"),
        (lambda s: run_task(Img2ImgParams(image=s["image"], resize_mode="Squash")), "Resize mode must be one of"),
        (lambda s: run_task(InpaintParams(image=s["image"], mask="missing.png", steps=2)), "no such file"),
        (lambda s: run_task(UpscaleParams(image=s["small"], width=48)), "multiple of 32"),
        (lambda s: run_task(Txt2ImgParams(), strength=0.5), "has no parameter 'strength'"),
        (lambda s: run_task("a cat"), "needs task parameters"),
        (lambda s: load_pipeline("sd15", task="txt2img", controlnet="sdxl-canny"), "made for sdxl"),
    ],
)
def test_bad_input_is_one_clear_paragraph_and_writes_nothing(call, message: str, sources, _outputs: Path) -> None:
    with pytest.raises(SdnbError, match=message):
        call(sources)
    assert not _outputs.exists() or not any(p.is_file() for p in _outputs.rglob("*"))


@pytest.mark.parametrize("case", ["sd15 img2img", "sd15 inpaint (base model)", "sd2-depth depth2img",
                                  "x4-upscaler upscale"])
def test_regenerate_remakes_image_tasks_given_their_sources(case: str, sources) -> None:
    p = _params(case, sources)
    first = run_task(p, batch_size=2)
    with pytest.raises(SdnbError, match="Pass image=<path> to") if p.task != "inpaint" else pytest.raises(
            SdnbError, match="image=<path> and mask=<path>"):
        regenerate(first.paths[1])
    again = regenerate(first.paths[1], **{k: getattr(p, k) for k in ("image", "mask") if hasattr(p, k)})
    assert again.seeds == [12] and len(again.paths) == 1  # only the requested image is saved
    assert np.array_equal(px(again.images[0]), px(first.images[1]))


def test_infotext_round_trips_every_task(sources) -> None:
    for case in CASES:
        p = _params(case, sources).validate()
        text = to_infotext(p, p.seed)
        back = params_from_infotext(text)
        assert type(back) is type(p), case
        ours = dataclasses.asdict(p) | {"schedule_type": resolve_schedule(p.sampler, p.schedule_type)}
        theirs = dataclasses.asdict(back)
        for source in ("image", "mask"):  # files are not stored in the text
            ours.pop(source, None)
            theirs.pop(source, None)
        assert theirs == {**ours, "batch_count": 1}, case


def test_webui_keys_pick_the_task() -> None:
    head = "a castle\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512"
    assert type(params_from_infotext(head + ", Model: v1-5-pruned-emaonly")) is Txt2ImgParams
    img = params_from_infotext(head + ", Denoising strength: 0.6")
    assert type(img) is Img2ImgParams and img.strength == 0.6
    inp = params_from_infotext(head + ", Denoising strength: 0.6, Mask blur: 8, Inpaint area: Only masked, "
                                      "Masked area padding: 48")
    assert type(inp) is InpaintParams and (inp.mask_blur, inp.inpaint_area, inp.padding) == (8, "Only masked", 48)
    assert type(params_from_infotext(head + ", Model: sd2-depth, Denoising strength: 0.6")) is Depth2ImgParams


def test_regenerate_lists_the_settings_it_cannot_honour(pipe, tmp_path: Path) -> None:
    from sdnb.images import save_image

    p = Txt2ImgParams(prompt="a cat", steps=2, width=64, height=64)
    text = to_infotext(p, 5, extra={"Clip skip": 2, "Token merging ratio": 0.5})
    png = save_image(Image.new("RGB", (64, 64)), tmp_path, infotext=text)
    with pytest.warns(UserWarning, match="cannot honour .*: Token merging ratio") as caught:  # Clip skip is honoured
        regenerate(png, save=False)
    assert not any("Clip skip" in str(w.message) for w in caught)


def test_the_kernels_stop_button_ends_a_render_with_one_line(pipe, _outputs: Path) -> None:
    """A KeyboardInterrupt (Ctrl-C, Jupyter's stop button) inside the second image: the first is kept."""
    from sdnb.errors import Interrupted

    class InterruptSecondImage(Recorder):
        def update(self, done: int, preview: Image.Image | None = None) -> None:
            super().update(done, preview)
            if done > STEPS:
                raise KeyboardInterrupt

    progress = InterruptSecondImage()
    with pytest.raises(Interrupted) as err:
        run_task(Txt2ImgParams(prompt="a cat", steps=STEPS, seed=4), batch_count=3, progress=progress)
    assert isinstance(err.value, KeyboardInterrupt)  # Run All still stops at this cell
    lines = err.value._render_traceback_()
    assert len(lines) == 1 and "after 1 of 3 image(s)" in lines[0] and "run it again" in lines[0]
    assert [p.name for p in err.value.result.paths] == ["00000-4.png"]
    assert sorted(p.name for p in (_outputs / "txt2img").iterdir()) == ["00000-4.png"]  # nothing half-written
    assert progress.message.startswith("Stopped after 1 of 3")
