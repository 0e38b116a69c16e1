"""Real-ESRGAN through spandrel on the tiny stand-ins: loading (names, files, the weights-only rule), tiling without
seams, alpha, odd image modes, progress, Stop, and one clear error for each bad input."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sdnb.upscalers as up
from sdnb.errors import Interrupted, SdnbError
from sdnb.registry import UPSCALERS, get_upscaler
from sdnb.tiny import UPSCALER_ARCHITECTURES, tiny_upscaler_file

ARCHS = {"RealESRGAN_x4plus": "ESRGAN", "RealESRGAN_x4plus_anime_6B": "ESRGAN", "realesr-general-x4v3": "Compact"}


def picture(width: int = 120, height: int = 90, mode: str = "RGB") -> Image.Image:
    """Smooth random colours: detail the network sees, no flat areas that hide seams."""
    rng = np.random.default_rng(0)
    small = Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8))
    return small.resize((width, height), Image.Resampling.BICUBIC).convert(mode)


class Recorder:
    """A Progress that records every call; sets ``stop`` once ``stop_after`` tiles are done."""

    def __init__(self, stop: threading.Event | None = None, stop_after: int = 1) -> None:
        self.stop, self.stop_after = stop, stop_after
        self.total, self.what, self.done, self.previews, self.messages = 0, "", [], [], []

    def start(self, total: int, what: str) -> None:
        self.total, self.what = total, what

    def update(self, done: int, preview: Image.Image | None = None) -> None:
        self.done.append(done)
        if preview is not None:
            self.previews.append(preview)
        if self.stop is not None and done >= self.stop_after:
            self.stop.set()

    def finish(self, message: str) -> None:
        self.messages.append(message)


# ---------------------------------------------------------------------------------------------
# Registry and tiny files


def test_registry_entries_are_complete() -> None:
    assert set(UPSCALERS) == set(ARCHS)
    for key, spec in UPSCALERS.items():
        assert spec.key == key and spec.scale == 4 and spec.architecture == ARCHS[key]
        assert spec.architecture in UPSCALER_ARCHITECTURES
        assert spec.repo.count("/") == 1 and spec.filename.endswith((".safetensors", ".pth"))
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert spec.upstream.startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/")
        assert spec.upstream.endswith(Path(spec.filename).stem + ".pth")
        assert "BSD-3-Clause" in spec.license and spec.source.strip()
    with pytest.raises(SdnbError, match="Unknown upscaler") as err:
        get_upscaler("4x-UltraSharp")
    assert all(key in err.value.hint for key in UPSCALERS)


@pytest.mark.parametrize("arch", UPSCALER_ARCHITECTURES)
def test_tiny_files_are_detected_as_4x(arch: str) -> None:
    import spandrel

    path = tiny_upscaler_file(arch)
    assert path.suffix == ".safetensors" and path.stat().st_size < 1_000_000
    assert tiny_upscaler_file(arch) == path  # built once
    model = spandrel.ModelLoader().load_from_file(path)
    assert (model.architecture.id, model.scale, model.purpose) == (arch, 4, "SR")


def test_unknown_tiny_architecture() -> None:
    with pytest.raises(SdnbError, match="Unknown tiny upscaler"):
        tiny_upscaler_file("SwinIR")


# ---------------------------------------------------------------------------------------------
# Loading


@pytest.mark.parametrize("name", list(ARCHS))
def test_load_by_registry_name_in_tiny_mode(name: str) -> None:
    model = up.load_upscaler(name)
    assert (model.name, model.scale, model.architecture) == (name, 4, ARCHS[name])
    assert model.dtype == (torch.float16 if torch.cuda.is_available() else torch.float32)
    assert up.load_upscaler(name) is model  # cached per file
    assert name in repr(model)


def test_cache_is_cleared() -> None:
    first = up.load_upscaler("realesr-general-x4v3")
    up.clear_upscalers()
    assert up.load_upscaler("realesr-general-x4v3") is not first


def test_load_a_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "my-upscaler.safetensors"
    shutil.copy(tiny_upscaler_file("ESRGAN"), path)
    model = up.load_upscaler(path)
    assert (model.name, model.path, model.architecture, model.scale) == ("my-upscaler.safetensors", path, "ESRGAN", 4)
    assert up.load_upscaler(str(path)) is model


def test_load_a_plain_state_dict_pth_with_the_weights_only_loader(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    path = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": load_file(tiny_upscaler_file("ESRGAN"))}, path)  # the layout Real-ESRGAN ships
    model = up.load_upscaler(path)
    assert (model.architecture, model.scale) == ("ESRGAN", 4)
    assert up.upscale_image(picture(16, 12), model).size == (64, 48)


class Custom:
    """A class a weights-only loader does not know: unpickling it needs this module's code."""

    def __init__(self) -> None:
        self.weight = torch.zeros(3)


class RunsCode:
    """Unpickling this would call ``Path.touch`` on the marker: code run by merely loading the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pth_that_needs_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "custom.pth"
    torch.save({"model": Custom(), "params": {"conv.weight": torch.zeros(1)}}, path)
    with pytest.raises(SdnbError, match="needs more than a weights-only load") as err:
        up.load_upscaler(path)
    assert "Custom" in err.value.message and "safetensors" in err.value.hint

    marker = tmp_path / "code-ran"
    path = tmp_path / "runs-code.pth"
    torch.save({"x": RunsCode(marker)}, path)
    with pytest.raises(SdnbError, match="weights-only"):
        up.load_upscaler(path)
    assert not marker.exists()


def test_unknown_names_list_the_registry() -> None:
    with pytest.raises(SdnbError, match="Unknown upscaler 'RealESRGAN_x8'") as err:
        up.load_upscaler("RealESRGAN_x8")
    assert all(key in err.value.hint for key in UPSCALERS)


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        (42, "registry name or the path"),
        (None, "registry name or the path"),
        ("", "registry name or the path"),
        ("missing/model.safetensors", "does not exist"),
        ("weights/model.onnx", "not a weight file sdnb can load"),
    ],
)
def test_bad_upscaler_references(ref: object, match: str) -> None:
    with pytest.raises(SdnbError, match=match):
        up.load_upscaler(ref)  # type: ignore[arg-type]


def test_files_that_are_not_upscalers(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    other = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.alpha": torch.ones(1), "lora_unet_down.lora_up.weight": torch.ones(4, 2)}, other)
    with pytest.raises(SdnbError, match="not a model spandrel recognises"):
        up.load_upscaler(other)

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(tiny_upscaler_file("ESRGAN").read_bytes()[:5000])
    with pytest.raises(SdnbError, match="damaged"):
        up.load_upscaler(broken)

    broken_pth = tmp_path / "broken.pth"
    broken_pth.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(SdnbError, match="damaged"):
        up.load_upscaler(broken_pth)

    two_x = tmp_path / "2x.safetensors"
    from spandrel.architectures.Compact import Compact

    save_file(Compact(num_feat=8, num_conv=2, upscale=2).state_dict(), two_x)
    with pytest.raises(SdnbError, match="is a 2x upscaler") as err:
        up.load_upscaler(two_x)
    assert "scale=2" in err.value.hint
    assert up.load_upscaler(two_x, scale=None).scale == 2
    assert up.upscale_image(picture(10, 8), two_x).size == (20, 16)

    cut = tmp_path / "cut.safetensors"
    state = load_file(tiny_upscaler_file("ESRGAN"))
    save_file({k: v for k, v in state.items() if not k.startswith("model.10.")}, cut)
    with pytest.raises(SdnbError, match="tensors do not fit"):
        up.load_upscaler(cut)


def test_real_mode_uses_models_dir_and_checks_the_architecture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    monkeypatch.setenv("SDNB_TINY", "0")
    monkeypatch.setenv("SDNB_MODELS_DIR", str(tmp_path))
    shutil.copy(tiny_upscaler_file("ESRGAN"), tmp_path / "RealESRGAN_x4plus.safetensors")
    torch.save({"params": load_file(tiny_upscaler_file("Compact"))}, tmp_path / "realesr-general-x4v3.pth")
    assert up.load_upscaler("RealESRGAN_x4plus").path == tmp_path / "RealESRGAN_x4plus.safetensors"
    assert up.load_upscaler("realesr-general-x4v3").architecture == "Compact"
    shutil.copy(tiny_upscaler_file("Compact"), tmp_path / "RealESRGAN_x4plus.safetensors")
    with pytest.raises(SdnbError, match="holds a Compact network"):
        up.load_upscaler("RealESRGAN_x4plus")


def test_real_mode_offline_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("SDNB_TINY", "0")
    monkeypatch.delenv("SDNB_MODELS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(SdnbError, match="HF_HUB_OFFLINE is set") as err:
        up.load_upscaler("RealESRGAN_x4plus_anime_6B")
    assert "amd/realesrgan-x4plus-anime-6b" in err.value.message


def test_real_mode_download_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    monkeypatch.setenv("SDNB_TINY", "0")
    monkeypatch.delenv("SDNB_MODELS_DIR", raising=False)
    changed = tmp_path / "RealESRGAN_x4plus.safetensors"
    shutil.copy(tiny_upscaler_file("ESRGAN"), changed)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo, filename: str(changed))
    with pytest.raises(SdnbError, match="not the file sdnb was checked against") as err:
        up.load_upscaler("RealESRGAN_x4plus")
    assert get_upscaler("RealESRGAN_x4plus").upstream in err.value.hint

    def gone(repo: str, filename: str) -> str:
        raise EntryNotFoundError(f"{filename} not in {repo}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gone)
    with pytest.raises(SdnbError, match="is gone") as err:
        up.load_upscaler("realesr-general-x4v3")
    assert get_upscaler("realesr-general-x4v3").upstream in err.value.hint


# ---------------------------------------------------------------------------------------------
# Upscaling


@pytest.mark.parametrize("name", ["RealESRGAN_x4plus", "realesr-general-x4v3"])
def test_tiled_matches_untiled(name: str) -> None:
    image = picture(120, 90)
    whole = np.asarray(up.upscale_image(image, name, tile=0), dtype=int)
    tiled = np.asarray(up.upscale_image(image, name, tile=48, overlap=16), dtype=int)  # 3 x 4 tiles
    diff = np.abs(tiled - whole)
    assert whole.shape == (360, 480, 3)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # rounding only (measured: max 1 level, <0.01% pixels)
    seams = np.abs(np.asarray(up.upscale_image(image, name, tile=48, overlap=0), dtype=int) - whole)
    assert seams.max() >= 20  # without overlap the tile borders show: the comparison can see seams


def test_output_is_4x_and_lanczos_is_the_baseline() -> None:
    image = picture(37, 23)
    assert up.upscale_image(image, "realesr-general-x4v3").size == (148, 92)
    base = up.lanczos_upscale(image)
    assert (base.size, base.mode) == ((148, 92), "RGB")
    assert up.lanczos_upscale(image, scale=2).size == (74, 46)
    for bad in (0, 2.5, True, "4"):
        with pytest.raises(SdnbError, match="scale"):
            up.lanczos_upscale(image, scale=bad)  # type: ignore[arg-type]


def test_alpha_is_kept() -> None:
    image = picture(40, 30, "RGBA")
    alpha = Image.linear_gradient("L").resize((40, 30))
    image.putalpha(alpha)
    out = up.upscale_image(image, "RealESRGAN_x4plus", tile=32, overlap=8)
    assert (out.mode, out.size) == ("RGBA", (160, 120))
    expected = alpha.resize((160, 120), Image.Resampling.LANCZOS)  # alpha: Lanczos, not through the network
    assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(expected))
    rgb = up.upscale_image(image.convert("RGB"), "RealESRGAN_x4plus", tile=32, overlap=8)
    assert np.array_equal(np.asarray(out.convert("RGB")), np.asarray(rgb))


def test_greyscale_palette_and_16_bit_inputs_are_converted(tmp_path: Path) -> None:
    grey = picture(24, 20, "L")
    assert up.upscale_image(grey, "realesr-general-x4v3").mode == "RGB"
    palette = picture(24, 20).convert("P", palette=Image.Palette.ADAPTIVE)
    assert up.upscale_image(palette, "realesr-general-x4v3").mode == "RGB"
    palette.info["transparency"] = 0
    assert up.upscale_image(palette, "realesr-general-x4v3").mode == "RGBA"
    assert up.upscale_image(Image.new("LA", (8, 8)), "realesr-general-x4v3").mode == "RGBA"
    assert up.upscale_image(Image.new("CMYK", (8, 8)), "realesr-general-x4v3").mode == "RGB"

    eight = np.asarray(grey)
    sixteen = Image.fromarray(eight.astype(np.uint16) * 257)  # the same picture in 16 bits
    path = tmp_path / "sixteen.png"
    sixteen.save(path)
    assert Image.open(path).mode.startswith("I")
    for source in (sixteen, path):
        out16 = np.asarray(up.upscale_image(source, "realesr-general-x4v3"), dtype=int)
        out8 = np.asarray(up.upscale_image(grey, "realesr-general-x4v3"), dtype=int)
        assert np.abs(out16 - out8).max() <= 1  # scaled to 8 bits, not clipped to white
    assert np.asarray(up.lanczos_upscale(sixteen)).mean() == pytest.approx(np.asarray(up.lanczos_upscale(grey)).mean(),
                                                                           abs=1)


def test_an_image_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    picture(20, 10).save(path)
    assert up.upscale_image(path, "realesr-general-x4v3").size == (80, 40)
    assert up.upscale_image(str(path), "realesr-general-x4v3").size == (80, 40)


def test_progress_counts_tiles_with_previews() -> None:
    record = Recorder()
    out = up.upscale_image(picture(120, 90), "realesr-general-x4v3", tile=48, overlap=16, progress=record)
    assert (record.total, record.what) == (12, "Tiles")
    assert record.done == list(range(1, 13))
    assert len(record.previews) == 3  # one per row of tiles
    assert record.previews[-1].size == out.size  # at most 512 px: the whole result here
    assert np.array_equal(np.asarray(record.previews[-1]), np.asarray(out))
    assert record.messages[-1].startswith("Done: 120x90 -> 480x360 in 12 tile(s)")


def test_stop_ends_after_the_first_tile() -> None:
    stop = threading.Event()
    record = Recorder(stop=stop, stop_after=1)
    with pytest.raises(Interrupted, match="after tile 1 of 12") as err:
        up.upscale_image(picture(120, 90), "RealESRGAN_x4plus", tile=48, overlap=16, progress=record, stop=stop)
    assert record.done == [1]
    assert record.messages == [f"Stopped {err.value.message}"]
    assert "again" in err.value.message


def test_ctrl_c_during_a_tile_is_one_line() -> None:
    class Interrupting(Recorder):
        def update(self, done: int, preview: Image.Image | None = None) -> None:
            super().update(done, preview)
            if done == 2:
                raise KeyboardInterrupt

    record = Interrupting()
    with pytest.raises(Interrupted, match="after tile 2 of 12"):
        up.upscale_image(picture(120, 90), "realesr-general-x4v3", tile=48, overlap=16, progress=record)
    assert record.messages[-1].startswith("Stopped after tile 2")


def test_running_out_of_memory_halves_the_tile(monkeypatch: pytest.MonkeyPatch) -> None:
    real = up.load_upscaler("realesr-general-x4v3")

    class SmallMemory:
        """Runs the real model, but tiles over 32 px do not fit."""

        device, dtype = real.model.device, real.model.dtype

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            if max(x.shape[-2:]) > 32:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return real.model(x)

    small = up.Upscaler("small", real.path, SmallMemory(), 4, "Compact")
    record = Recorder()
    out = up.upscale_image(picture(70, 50), small, tile=128, overlap=32, progress=record)
    assert out.size == (280, 200)
    assert "tile(s) of 32 px" in record.messages[-1]
    whole = up.upscale_image(picture(70, 50), real, tile=0)
    assert np.abs(np.asarray(out, dtype=int) - np.asarray(whole, dtype=int)).max() <= 1


def test_a_result_too_large_for_memory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    class Memory:  # as if a 10000x10000 input (40000x40000 out, about 12 GB) met 2 GB free, scaled by 1/25
        available = 2 * 2**30 // 25

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory())
    huge = Image.new("RGB", (2000, 2000))
    with pytest.raises(SdnbError, match=r"8000x8000 result \(64 megapixels\) needs about 0\.5 GB") as err:
        up.upscale_image(huge, "realesr-general-x4v3")
    assert "crop" in err.value.hint
    with pytest.raises(SdnbError, match="needs about"):
        up.lanczos_upscale(huge)


@pytest.mark.parametrize(
    ("image", "options", "match"),
    [
        (42, {}, "PIL image or an image file's path, not int"),
        (None, {}, "not NoneType"),
        (np.zeros((4, 4, 3), dtype=np.uint8), {}, "not ndarray"),
        (Image.new("RGB", (0, 0)), {}, r"empty \(0x0 pixels\)"),
        (Image.new("RGB", (5, 0)), {}, "empty"),
        ("no-such-image.png", {}, "no such file"),
        (picture(8, 8), {"tile": "big"}, "tile must be a whole number"),
        (picture(8, 8), {"tile": True}, "tile must be a whole number"),
        (picture(8, 8), {"tile": -1}, "tile must be a whole number"),
        (picture(8, 8), {"tile": 8}, "too small"),
        (picture(8, 8), {"overlap": 1.5}, "overlap must be a whole number"),
        (picture(8, 8), {"tile": 64, "overlap": 40}, "more than half"),
    ],
)
def test_bad_inputs_give_one_clear_error(image: object, options: dict, match: str) -> None:
    with pytest.raises(SdnbError, match=match):
        up.upscale_image(image, "realesr-general-x4v3", **options)  # type: ignore[arg-type]


def test_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(SdnbError, match="not an image file"):
        up.upscale_image(text, "realesr-general-x4v3")
    with pytest.raises(SdnbError, match="not an image file"):
        up.lanczos_upscale(text)


def test_tiny_images_upscale() -> None:
    for name in ("RealESRGAN_x4plus", "realesr-general-x4v3"):
        assert up.upscale_image(Image.new("RGB", (1, 1), "red"), name).size == (4, 4)
        assert up.upscale_image(Image.new("RGB", (1, 7), "red"), name).size == (4, 28)


# ---------------------------------------------------------------------------------------------
# Side by side (sdnb.compare)


def test_comparison_grid_and_table_measure_each_method() -> None:
    from sdnb.compare import compare_upscalers

    small = picture(32, 32)
    comparison = compare_upscalers(small, {"Lanczos": lambda: up.lanczos_upscale(small, 4),
                                           "Real-ESRGAN": lambda: up.upscale_image(small, "RealESRGAN_x4plus")})
    assert [m.name for m in comparison.results] == ["Lanczos", "Real-ESRGAN"]
    assert all(m.image.size == (128, 128) and m.seconds > 0 and m.peak_bytes >= 0 for m in comparison.results)
    grid = comparison.grid()
    assert grid.width > 2 * 128 and grid.height > 2 * 128  # two columns, whole and zoomed rows, labels
    table = comparison.table()
    assert "Real-ESRGAN" in table and "128x128" in table and "<table>" in comparison._repr_html_()
    zoomed = np.asarray(comparison.grid(box=(0, 0, 32, 32)))
    assert not np.array_equal(zoomed, np.asarray(grid))  # another crop, another bottom row


def test_comparison_refuses_mixed_sizes_and_a_box_outside() -> None:
    from sdnb.compare import compare_upscalers

    small = picture(32, 32)
    with pytest.raises(SdnbError, match="different sizes"):
        compare_upscalers(small, {"x4": lambda: up.lanczos_upscale(small, 4), "x2": lambda: up.lanczos_upscale(small, 2)})
    comparison = compare_upscalers(small, {"x4": lambda: up.lanczos_upscale(small, 4)})
    with pytest.raises(SdnbError, match="not inside"):
        comparison.grid(box=(100, 100, 200, 200))


# ---------------------------------------------------------------------------------------------
# 4x walk videos (WalkParams.upscaler)


def test_walk_upscaled_4x_streams_resumes_and_keeps_frames_remakeable(pipe) -> None:
    import imageio_ffmpeg

    from sdnb.generate import regenerate
    from sdnb.images import read_infotext
    from sdnb.params import WalkParams
    from sdnb.video import check_video
    from sdnb.walk import render_walk

    def decoded(path: Path) -> list[bytes]:
        reader = imageio_ffmpeg.read_frames(str(path))
        next(reader)
        return list(reader)

    walk = WalkParams(prompts=("a red fox", "a lighthouse"), seeds=(1, 2), frames=(4,), steps=2, batch_size=2,
                      width=32, height=32, upscaler="RealESRGAN_x4plus")
    whole = render_walk(walk, name="whole")
    assert check_video(whole.video, 5, (128, 128)).startswith("✓")
    assert Image.open(whole.frames[1]).size == (32, 32)  # the frame PNG keeps the rendered size ...
    again = regenerate(whole.frames[1], save=False)  # ... and what regenerate needs
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(Image.open(whole.frames[1]).convert("RGB")))
    assert "Walk t" in read_infotext(whole.frames[1])

    stop = threading.Event()

    class StopAfterTwo:
        def start(self, total: int, what: str) -> None: ...
        def update(self, done: int, preview: Image.Image | None = None) -> None:
            if preview is None and done >= 2:
                stop.set()
        def finish(self, message: str) -> None: ...

    cut = render_walk(walk, name="cut", stop=stop, progress=StopAfterTwo())
    assert cut.interrupted and check_video(cut.video, 2, (128, 128)).startswith("✓")
    resumed = render_walk(walk, name="cut")
    assert resumed.complete and decoded(resumed.video) == decoded(whole.video)

    plain = render_walk(walk, name="plain", upscaler="None")
    assert check_video(plain.video, 5, (32, 32)).startswith("✓")
    with pytest.raises(SdnbError, match="Upscale video must be one of"):
        render_walk(walk, upscaler="RealESRGAN_x2")


def test_esrgan_benchmark_reports_both_paths_their_ratio_and_memory_by_tile() -> None:
    import re

    from benchmarks.esrgan import main

    out = main(["--tiny", "--size", "48", "--tile", "32", "--tiles", "32", "48"])
    rows = {name: line for line in out.splitlines() for name in ("RealESRGANer-style loop", "sdnb tiled")
            if line.startswith(f"| {name}")}
    assert set(rows) == {"RealESRGANer-style loop", "sdnb tiled"}, out
    assert all(float(line.strip("|").split("|")[1]) > 0 for line in rows.values())
    assert re.search(r"ratio \(loop seconds / sdnb seconds\): \d+\.\d+x", out)
    assert re.search(r"^\| 32 \| ", out, re.M) and re.search(r"^\| 48 \| ", out, re.M)
    assert "device:" in out and "date:" in out and "48x48 -> 192x192" in out


def test_realesrganer_loop_matches_sdnb_on_one_tile() -> None:
    from benchmarks.esrgan import realesrganer_loop

    image = picture(40, 40)
    upscaler = up.load_upscaler("RealESRGAN_x4plus")
    ours, theirs = np.asarray(up.upscale_image(image, upscaler, tile=0)), np.asarray(realesrganer_loop(image, upscaler, 64))
    assert ours.shape == theirs.shape == (160, 160, 3)
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1  # the same network, rounded the same way
