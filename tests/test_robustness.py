"""The robustness table: bad inputs and injected faults, each with its promised behaviour.

Every case checks three promises: a clear SdnbError (one paragraph, no traceback wall) or the documented
result; nothing half-written (no temp or empty files); no existing output changed or lost. The counts are
reported in one line at the end of the test run (see tests/conftest.py).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from sdnb.errors import SdnbError
from sdnb.generate import regenerate, txt2img
from sdnb.images import load_image, save_image
from sdnb.models import load_pipeline
from sdnb.params import Txt2ImgParams
from sdnb.progress import NullProgress

STATS: Counter = Counter()
FAST = Txt2ImgParams(prompt="a lighthouse", steps=2, seed=7)
CASES: dict[str, tuple[str, Callable[[Path], object], str | None]] = {}


def case(kind: str, name: str, expect: str | None = None):
    """Register a case: ``kind`` is "input" or "fault"; ``expect`` is the error text, None for success."""

    def register(fn):
        CASES[name] = (kind, fn, expect)
        return fn

    return register


class InterruptAt(NullProgress):
    """A progress reporter that presses Ctrl-C once ``at`` units (steps or frames) are done."""

    def __init__(self, at: int) -> None:
        self.at = at

    def update(self, done: int, preview=None) -> None:
        if done >= self.at:
            raise KeyboardInterrupt


# --- prompts and parameters (inputs) --------------------------------------------------------------

case("input", "empty prompt makes an image")(lambda out: txt2img(FAST, prompt=""))
case("input", "prompt over 77 tokens is chunked, not cut")(lambda out: txt2img(FAST, prompt="a red cat, " * 60))
case("input", "unicode and emoji prompt")(lambda out: txt2img(FAST, prompt="🐱 一只猫, café au lait ☕"))
case("input", "prompt that is not text", "must be text")(lambda out: txt2img(FAST, prompt=42))
for _name, _change, _msg in [
    ("width not a multiple of 8", {"width": 100}, "multiple of 8"),
    ("height not a multiple of 8", {"height": 65}, "multiple of 8"),
    ("zero steps", {"steps": 0}, "Steps must be between"),
    ("huge steps", {"steps": 100_000}, "Steps must be between"),
    ("CFG below 0", {"cfg_scale": -0.5}, "CFG scale must be between"),
    ("batch size 0", {"batch_size": 0}, "Batch size must be between"),
    ("seed above 32 bits", {"seed": 2**32}, "outside 0..4294967295"),
    ("negative seed other than -1", {"seed": -7}, "outside"),
    ("unknown sampler", {"sampler": "Euler z"}, "'Euler z' cannot be run faithfully.*Euler a"),
    ("WebUI sampler diffusers cannot run", {"sampler": "DPM++ SDE"}, "use DPM\\+\\+ 2M SDE"),
    ("schedule the sampler cannot take", {"sampler": "Euler a", "schedule_type": "Karras"}, "does not work with"),
    ("CFG scale NaN", {"cfg_scale": float("nan")}, "CFG scale must be a finite number"),
    ("CFG scale infinite", {"cfg_scale": float("inf")}, "CFG scale must be a finite number"),
    ("width 0", {"width": 0}, "Width must be between"),
    ("width as text", {"width": "64"}, "Width must be a whole number of pixels \\(got '64'\\)"),
    ("last image's seed past 2^32-1", {"seed": 2**32 - 1, "batch_size": 2}, "too large for 2 images"),
    ("prompt line that would become the negative prompt", {"prompt": "a cat\nNegative prompt: dogs"},
     "starts with 'Negative prompt:'"),
    ("deleted hub id as the model, any case", {"model": "RunwayML/Stable-Diffusion-v1-5"},
     "deleted.*stable-diffusion-v1-5/stable-diffusion-v1-5"),
    ("WebUI checkpoint name as the model", {"model": "deliberate_v2"}, "not a registry name"),
]:
    case("input", _name, _msg)(lambda out, c=_change: txt2img(FAST, **c))


def _infotext_png(out: Path, text: str) -> Path:
    return save_image(Image.new("RGB", (64, 64)), out.parent, infotext=text)


_HEAD = "a cat\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 5, "
case("input", "infotext Size with three numbers", "Size '64x64x64', not WIDTHxHEIGHT")(
    lambda out: regenerate(_infotext_png(out, _HEAD + "Size: 64x64x64, Model: sd15, Version: sdnb")))
case("input", "infotext Batch pos that is not a number", "inconsistent batch parameters")(
    lambda out: regenerate(_infotext_png(out, _HEAD + "Size: 64x64, Batch size: 2, Batch pos: abc, Version: sdnb")))
case("input", "infotext naming a model sdnb does not know", "'deliberate_v2' is not a registry name")(
    lambda out: regenerate(_infotext_png(out, _HEAD + "Size: 64x64, Model: deliberate_v2, Version: sdnb")))
case("input", "hostile 1 MB parameters chunk", "lack Steps, Size, Seed, CFG scale")(
    lambda out: regenerate(_infotext_png(out, "a\na" + " " * 1_000_000 + "b: c")))
case("input", "img2img PNG regenerated without its source image", "Pass image=<path>")(
    lambda out: regenerate(_infotext_png(out, _HEAD + "Size: 64x64, Denoising strength: 0.5, Version: sdnb")))


# --- image files (inputs) ---------------------------------------------------------------------


def _png(path: Path) -> Path:
    Image.new("RGB", (32, 32), "teal").save(path)
    return path


def _bad_file(kind: str) -> Callable[[Path], Path]:
    def make(out: Path) -> Path:
        path = out.parent / f"bad-{kind}.png"
        if kind == "zero-byte":
            path.write_bytes(b"")
        elif kind == "corrupt":
            path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
        elif kind == "truncated":
            data = _png(path).read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif kind == "wrong-format":
            path.write_text("prompt: a cat\n")
        return path

    return make


for _kind, _why in (("zero-byte", "empty"), ("corrupt", "damaged"), ("truncated", "damaged"),
                    ("wrong-format", "not an image")):
    case("input", f"{_kind} image file", f"Cannot read the image .*{_why}")(
        lambda out, k=_kind: load_image(_bad_file(k)(out))
    )
case("input", "missing image file", "no such file")(lambda out: load_image(out.parent / "nope.png"))
case("input", "mask that is not an image", "not an image")(lambda out: load_image(_bad_file("wrong-format")(out), mode="L"))
case("input", "regenerate from a corrupt PNG", "damaged")(lambda out: regenerate(_bad_file("corrupt")(out)))


# --- models (faults) ----------------------------------------------------------------------------


def _ckpt(out: Path) -> object:
    path = out.parent / "model.ckpt"
    path.write_bytes(b"\x80\x04pickle")
    return load_pipeline(path)


case("fault", "pickle .ckpt where safetensors are expected", "pickle")(_ckpt)
case("fault", "model id that does not exist, offline", "cannot be downloaded")(
    lambda out: load_pipeline("nobody/does-not-exist-xyz")
)


@case("fault", "gated model without a token", "gated")
def _gated(out: Path) -> object:
    import diffusers
    import httpx2
    from huggingface_hub.errors import GatedRepoError

    def refuse(*args, **kwargs):
        resp = httpx2.Response(401, request=httpx2.Request("GET", "https://huggingface.co/api/models/org/gated"))
        raise OSError("Cannot load model org/gated") from GatedRepoError("Access to model org/gated is restricted",
                                                                          response=resp)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(diffusers.StableDiffusionPipeline, "from_pretrained", refuse)
        return load_pipeline("org/gated")


@case("fault", "GPU out of memory during generation", "ran out of memory")
def _oom(out: Path) -> object:
    import torch

    pipe = load_pipeline("sd15")

    @functools.wraps(type(pipe).__call__)  # the same signature: the engine checks inputs against it
    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(pipe), "__call__", out_of_memory)
        return txt2img(FAST, pipe=pipe)


# --- disk and concurrency (faults) ----------------------------------------------------------------


@case("fault", "unwritable output folder, checked before rendering", "Cannot save images into the folder")
def _unwritable(out: Path) -> object:
    blocker = out.parent / "a-file"
    blocker.write_text("x")
    return txt2img(FAST, folder=blocker / "sub")


@case("fault", "SDNB_OUTPUT_DIR that cannot be created", "Cannot save images into the folder")
def _bad_output_env(out: Path) -> object:
    blocker = out.parent / "not-a-folder"
    blocker.write_text("x")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDNB_OUTPUT_DIR", str(blocker / "outputs"))
        return txt2img(FAST)


@case("fault", "disk full while saving", "No space left on device")
def _disk_full(out: Path) -> object:
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", full)
        return txt2img(FAST, batch_count=2)


@case("fault", "KeyboardInterrupt mid-run keeps finished images", "KeyboardInterrupt")
def _ctrl_c(out: Path) -> object:
    try:
        txt2img(FAST, batch_count=3, progress=InterruptAt(FAST.steps + 1))
    except KeyboardInterrupt:
        saved = sorted((out / "txt2img").glob("*-8.png"))
        assert len(saved) == 0 and len(list((out / "txt2img").glob("*-7.png"))) == 1
        raise SdnbError("KeyboardInterrupt") from None


@case("fault", "same run twice into one folder: nothing clobbered")
def _twice(out: Path) -> object:
    a, b = txt2img(FAST), txt2img(FAST)
    assert a.paths[0] != b.paths[0] and a.paths[0].exists() and b.paths[0].exists()


@case("fault", "two renders into one folder at once")
def _concurrent(out: Path) -> object:
    pipe = load_pipeline("sd15")
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(txt2img(FAST, batch_count=2, pipe=pipe)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    paths = [p for r in results for p in r.paths]
    assert len(paths) == len(set(paths)) == 4


# --- video renders (faults) ------------------------------------------------------------------

WALK = dict(prompts=("a cat", "a dog", "a fox"), seeds=(1, 2, 3), frames=(4,), steps=2, batch_size=2, name="walk")


def _walk_left_resumable(out: Path, stopped_after: int) -> None:
    """After a fault: the finished frames are valid, the partial MP4 plays them, and a rerun completes."""
    from sdnb.params import WalkParams
    from sdnb.video import probe_video
    from sdnb.walk import render_walk

    folder = out / "walks" / "walk"
    frames = sorted((folder / "frames").glob("*.png"))
    assert len(frames) >= stopped_after
    for f in frames:
        load_image(f)
    assert probe_video(folder / "walk.partial.mp4").frames == len(frames)
    done = render_walk(WalkParams(**WALK))
    assert done.complete and probe_video(done.video).frames == 9


@case("fault", "unwritable output folder before a video render", "Cannot save")
def _walk_unwritable(out: Path) -> object:
    from sdnb.params import WalkParams
    from sdnb.walk import render_walk

    blocker = out.parent / "a-file"
    blocker.write_text("x")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDNB_OUTPUT_DIR", str(blocker / "sub"))
        return render_walk(WalkParams(**WALK))


@case("fault", "disk full during a video render: frames and partial MP4 stay valid", "No space left on device")
def _walk_disk_full(out: Path) -> object:
    import os

    from sdnb.params import WalkParams
    from sdnb.walk import render_walk

    real, calls = os.fsync, []

    def fill_up(fd):
        calls.append(fd)
        if len(calls) > 4:  # a few frames fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "fsync", fill_up)
            render_walk(WalkParams(**WALK))
    except SdnbError:
        _walk_left_resumable(out, 2)
        raise


@case("fault", "KeyboardInterrupt mid-render: partial MP4 playable, render resumable", "KeyboardInterrupt")
def _walk_ctrl_c(out: Path) -> object:
    from sdnb.params import WalkParams
    from sdnb.walk import render_walk

    try:
        render_walk(WalkParams(**WALK), progress=InterruptAt(4))
    except KeyboardInterrupt:
        _walk_left_resumable(out, 4)
        raise SdnbError("KeyboardInterrupt") from None


@case("fault", "two renders of the same walk at once")
def _walk_twice_at_once(out: Path) -> object:
    from sdnb.params import WalkParams
    from sdnb.walk import render_walk

    results: list = []
    threads = [threading.Thread(target=lambda: results.append(render_walk(WalkParams(**WALK)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2 and all(r.complete for r in results)
    videos = {r.video for r in results}
    assert all(v.is_file() for v in videos)


def _snapshot(folder: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", list(CASES))
def test_robustness(name: str, _outputs: Path) -> None:
    kind, fn, expect = CASES[name]
    existing = save_image(Image.new("RGB", (64, 64), "navy"), _outputs / "txt2img", infotext=None, stem="existing")
    before = _snapshot(_outputs)
    STATS["inputs" if kind == "input" else "faults"] += 1
    if expect is None:
        fn(_outputs)
    else:
        with pytest.raises(SdnbError, match=expect) as err:
            fn(_outputs)
        text = str(err.value)
        assert "Traceback" not in text and len(text) < 900, "the message should be one short paragraph"
    after = _snapshot(_outputs)
    lost = [p for p, digest in before.items() if after.get(p) != digest]
    STATS["lost"] += len(lost)
    assert existing in after and not lost, f"existing outputs changed or lost: {lost}"
    half = [p for p in after if p.name.endswith((".part", ".probe")) or p.stat().st_size == 0]
    assert not half, f"half-written files left: {half}"


def test_running_a_notebook_twice_clobbers_nothing(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebook 01 run again into the same output folder: its earlier images stay, new ones are added."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(__file__).resolve().parents[1] / "notebooks" / "01_txt2img.ipynb"
    state = request.config.sdnb_nbval
    ran_before = path.name in state["notebooks"]
    folder = Path(state["output_dir"]) if ran_before else tmp_path / "outputs"
    monkeypatch.setenv("SDNB_OUTPUT_DIR", str(folder))

    def run(whole: bool = True) -> None:
        nb = nbformat.read(path, as_version=4)
        if not whole:  # the second run: up to the cell that generates and saves, which is what could clobber
            nb.cells = nb.cells[: next(i for i, c in enumerate(nb.cells) if "app.run(txt2img" in c.source) + 1]
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    if not ran_before:
        run()
    before = _snapshot(folder / "txt2img")
    assert before, "the first run wrote no images"
    run(whole=False)
    after = _snapshot(folder / "txt2img")
    STATS["faults"] += 1
    lost = [p for p, digest in before.items() if after.get(p) != digest]
    STATS["lost"] += len(lost)
    assert not lost and len(after) > len(before)
