"""4x upscaling with Real-ESRGAN through spandrel, tiled so any size fits, and Lanczos as the baseline.

The ``realesrgan``/``basicsr`` packages no longer import on today's torchvision; spandrel loads the same weight
files and detects their architecture (RRDBNet, SRVGGNetCompact) from the tensors. :func:`load_upscaler` takes a
registry name (:data:`sdnb.registry.UPSCALERS`; in tiny mode a tiny random-weight stand-in), a ``.safetensors``
file, or a ``.pth`` file loaded with PyTorch's weights-only unpickler, which cannot run code: a file that needs
more than tensors and plain containers is refused, never unpickled.

:func:`upscale_image` runs the network on overlapping tiles and blends them: in each overlap a tile's outer
quarter, whose pixels lack context, is dropped, and the middle half fades linearly from one tile to the next, so
no seam shows. Memory is bounded by the tile (on a GPU a tile that runs out of memory is halved and the run
restarted) and by the finished bands of the result, one tile row at a time. The alpha channel is enlarged with
Lanczos, not through the network (which was trained on photographs, not masks).
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from .errors import Interrupted, SdnbError
from .images import load_image
from .progress import NullProgress, Progress
from .registry import UPSCALERS, UpscalerSpec
from .settings import is_tiny, models_dir

__all__ = [
    "DEFAULT_OVERLAP",
    "Upscaler",
    "clear_upscalers",
    "default_tile",
    "lanczos_upscale",
    "load_upscaler",
    "upscale_image",
]

#: Pixels (of the input) that neighbouring tiles share: a quarter on each side is dropped, the middle blended.
DEFAULT_OVERLAP = 32

#: Weight files loaded with the weights-only unpickler; ``.safetensors`` is read directly.
_PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
_MIN_TILE = 32
_PREVIEW_SIZE = 512


@dataclass(frozen=True)
class Upscaler:
    """A loaded super-resolution network: spandrel's model descriptor plus where it came from."""

    name: str  # the registry name, or the file name
    path: Path
    model: Any  # spandrel.ImageModelDescriptor, already on its device and dtype
    scale: int
    architecture: str  # spandrel's id: "ESRGAN", "Compact", ...

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def __repr__(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return f"Upscaler({self.name!r}: {self.architecture} {self.scale}x on {self.device.type}, {dtype})"


_CACHE: dict[tuple, Upscaler] = {}
_LOCK = threading.RLock()
_VERIFIED: set[tuple[str, str]] = set()  # (path, sha256) already checked


def clear_upscalers() -> None:
    """Forget every loaded upscaler (frees its memory once nothing else holds it)."""
    with _LOCK:
        _CACHE.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# Loading


def load_upscaler(ref: str | os.PathLike[str] | Upscaler, *, scale: int | None = 4) -> Upscaler:
    """A super-resolution model from a registry name or a ``.safetensors``/``.pth`` file, loaded once per file.

    ``scale`` is the factor the model must have (None accepts any). On a CUDA GPU the model runs in float16
    when its architecture supports it, otherwise in float32.
    """
    if isinstance(ref, Upscaler):
        return ref
    if not isinstance(ref, (str, os.PathLike)) or not os.fspath(ref).strip():
        raise SdnbError(
            f"An upscaler must be a registry name or the path of a weight file, not {ref!r}.",
            hint=f"Use one of: {', '.join(UPSCALERS)}; or a .safetensors or .pth file.",
        )
    text = os.fspath(ref).strip()
    spec = UPSCALERS.get(text)
    path = _spec_file(spec) if spec is not None else _local_file(text)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    stat = path.stat()
    name = spec.key if spec else path.name
    key = (name, str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(device))  # tiny names share a file
    with _LOCK:
        loaded = _CACHE.get(key)
        if loaded is None:
            loaded = _CACHE[key] = _load(path, name, spec, device)
    if scale is not None and loaded.scale != scale:
        raise SdnbError(
            f"{path.name} is a {loaded.scale}x upscaler ({loaded.architecture}), not {scale}x.",
            hint=f"Pass scale={loaded.scale} (or scale=None) to use it at {loaded.scale}x, or choose a {scale}x file.",
        )
    return loaded


def _local_file(text: str) -> Path:
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", *_PICKLE_SUFFIXES):
        if not path.exists() and "/" not in text and os.sep not in text:
            raise SdnbError(
                f"Unknown upscaler {text!r}.",
                hint=f"Choose one of: {', '.join(UPSCALERS)}; or pass a local .safetensors or .pth weight file.",
            )
        raise SdnbError(
            f"{path.name} is not a weight file sdnb can load as an upscaler (it takes .safetensors and .pth).",
            hint="Pass the .safetensors or .pth file itself (not a folder or an archive).",
        )
    if not path.is_file():
        raise SdnbError(f"The upscaler file {path} does not exist.", hint="Check the folder and the file name.")
    return path


def _spec_file(spec: UpscalerSpec) -> Path:
    """The registered file: the tiny stand-in in tiny mode, else ``SDNB_MODELS_DIR/<file>`` or the hub's copy."""
    if is_tiny():
        from .tiny import tiny_upscaler_file

        return tiny_upscaler_file(spec.architecture)
    local = models_dir() / spec.filename if models_dir() else None
    if local is not None and local.is_file():
        return local
    from huggingface_hub import hf_hub_download

    try:
        path = Path(hf_hub_download(spec.repo, spec.filename))
    except Exception as exc:
        raise _download_error(exc, spec) from exc
    _check_sha256(path, spec)
    return path


def _download_error(exc: BaseException, spec: UpscalerSpec) -> SdnbError:
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    from .models import explain_error

    def missing(e: BaseException) -> bool:  # on the server; LocalEntryNotFoundError: not cached while offline
        return isinstance(e, (RepositoryNotFoundError, EntryNotFoundError)) and not isinstance(
            e, LocalEntryNotFoundError)

    gone: BaseException | None = exc
    while gone is not None and not missing(gone):
        gone = gone.__cause__ or gone.__context__
    if gone is None:
        return explain_error(exc, spec.repo)
    what = "repo" if isinstance(gone, RepositoryNotFoundError) else f"file {spec.filename} in the repo"
    return SdnbError(
        f"The Hugging Face {what} {spec.repo} is gone, so {spec.key} cannot be downloaded from there.",
        hint=f"Download the authors' original from {spec.upstream} and pass its path to load_upscaler "
        f"(or put it in SDNB_MODELS_DIR as {spec.filename}).",
    )


def _check_sha256(path: Path, spec: UpscalerSpec) -> None:
    if (str(path), spec.sha256) in _VERIFIED:
        return
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != spec.sha256:
        raise SdnbError(
            f"The {spec.filename} downloaded from {spec.repo} is not the file sdnb was checked against "
            f"(sha256 {digest.hexdigest()[:12]}..., expected {spec.sha256[:12]}...): the repo changed it.",
            hint=f"Download the authors' original from {spec.upstream} and pass its path to load_upscaler.",
        )
    _VERIFIED.add((str(path), spec.sha256))


def _state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a weight file: safetensors as is, pickle files only through the weights-only unpickler."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise SdnbError(
                f"{path.name} is damaged or not a safetensors file ({exc}).",
                hint="Download it again; if it came from a converter, convert it again.",
            ) from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None:
            raise SdnbError(
                f"{path.name} is damaged or not a PyTorch weight file.", hint="Download it again."
            ) from exc
        raise SdnbError(
            f"{path.name} needs more than a weights-only load: besides tensors it stores a pickled Python object "
            f"({found.group(1)}), and unpickling one can run code hidden in the file, so sdnb does not load it.",
            hint="Use a .safetensors copy of these weights, or convert the file once on a machine you trust: "
            "load it there and write its state dict with safetensors.torch.save_file.",
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise SdnbError(
            f"{path.name} is damaged, cut off or not a PyTorch weight file ({_first_line(exc)}).",
            hint="Download it again; a TorchScript (.pt) archive cannot be loaded either: use a state dict.",
        ) from exc
    if not isinstance(state, dict):
        raise SdnbError(
            f"{path.name} holds a {type(state).__name__}, not a state dict of tensors.",
            hint="Pass the weight file of an upscaler (e.g. RealESRGAN_x4plus.pth).",
        )
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160] if text else ''}".strip()


def _load(path: Path, name: str, spec: UpscalerSpec | None, device: torch.device) -> Upscaler:
    import spandrel

    state = spandrel.canonicalize_state_dict(_state_dict(path))
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SdnbError(f"{path.name} holds no tensors to load.", hint="Pass the weight file of an upscaler.")
    try:
        model = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError as exc:
        raise SdnbError(
            f"{path.name} is not a model spandrel recognises (it is no Real-ESRGAN, ESRGAN, Compact, SwinIR ... "
            "network; a Stable Diffusion checkpoint or a LoRA is not an upscaler).",
            hint="Pass an upscaler's weight file, e.g. a registry name: " + ", ".join(UPSCALERS) + ".",
        ) from exc
    except Exception as exc:  # a known architecture whose tensors do not fit (cut-down or edited file)
        raise SdnbError(
            f"{path.name} looks like a known architecture but its tensors do not fit it ({_first_line(exc)}).",
            hint="The file is probably incomplete or edited; download it again.",
        ) from exc
    arch = model.architecture.id
    if not isinstance(model, spandrel.ImageModelDescriptor) or model.purpose != "SR":
        raise SdnbError(
            f"{path.name} is a {arch} model for {getattr(model, 'purpose', 'another task')}, not an upscaler.",
            hint="Pass a super-resolution model, e.g. " + ", ".join(UPSCALERS) + ".",
        )
    if model.input_channels != 3 or model.output_channels != 3:
        raise SdnbError(
            f"{path.name} works on {model.input_channels}-channel images; sdnb upscales RGB pictures.",
            hint="Pass an RGB upscaler, e.g. " + ", ".join(UPSCALERS) + ".",
        )
    if spec is not None and arch != spec.architecture:
        raise SdnbError(
            f"{path} holds a {arch} network, but {spec.key} is {spec.architecture}: it is some other model.",
            hint=f"Replace that file with {spec.key}'s own weights (the original: {spec.upstream}).",
        )
    model = model.to(device).eval()
    if device.type == "cuda" and model.supports_half:
        model = model.half()
    return Upscaler(name, path, model, model.scale, arch)


# ---------------------------------------------------------------------------------------------
# Images in


def _prepared(image: Image.Image | str | os.PathLike[str]) -> Image.Image:
    """The input as RGB, or RGBA when it has transparency; 16-bit and float greyscale scaled to 8 bits."""
    if isinstance(image, (str, os.PathLike)) and os.fspath(image):
        try:
            with Image.open(image) as peek:
                mode = peek.mode
        except Exception:
            mode = "RGB"  # let load_image say what is wrong with the file
        image = load_image(image, mode=mode)
    elif isinstance(image, Image.Image):
        image = ImageOps.exif_transpose(image)  # upright, as load_image and as_image make it
    if not isinstance(image, Image.Image):
        raise SdnbError(
            f"The image to upscale must be a PIL image or an image file's path, not {type(image).__name__}.",
            hint="Pass e.g. 'photo.png', or an image from PIL.Image.open(...).",
        )
    if image.width < 1 or image.height < 1:
        raise SdnbError(f"The image to upscale is empty ({image.width}x{image.height} pixels).",
                        hint="Pass an image at least 1x1 pixel large.")
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):  # 16-bit PNGs open as I;16 or I
        values = np.asarray(image, dtype=np.float32)
        top = float(values.max(initial=0))
        if image.mode == "F":
            peak = 1.0 if top <= 1 else 255.0  # float images hold 0..1, or 0..255
        else:  # I;16 is 16-bit; mode I holds 16-bit PNGs on older Pillow, else 8-bit values
            peak = 65535.0 if image.mode.startswith("I;16") or top > 255 else 255.0
        grey = np.clip(values * (255.0 / peak), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    try:
        return image.convert("RGBA" if transparent else "RGB")
    except ValueError as exc:
        raise SdnbError(f"Cannot convert an image of mode {image.mode} to RGB.",
                        hint="Re-save it as an ordinary RGB PNG or JPEG.") from exc


def lanczos_upscale(image: Image.Image | str | os.PathLike[str], scale: int = 4) -> Image.Image:
    """The baseline: ``image`` enlarged ``scale`` times with Lanczos resampling (RGB, or RGBA with transparency)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise SdnbError(f"scale must be a whole number of at least 1, not {scale!r}.", hint="Use scale=4.")
    image = _prepared(image)
    _check_memory(image.width * scale, image.height * scale, image.mode == "RGBA")
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)


def _check_memory(width: int, height: int, alpha: bool) -> None:
    """Refuse a result that cannot fit in RAM (about 8 bytes a pixel: the result array and the PIL image)."""
    import psutil

    need = width * height * (8 + 2 * alpha)
    free = psutil.virtual_memory().available
    if need > 0.8 * free:
        raise SdnbError(
            f"A {width}x{height} result ({width * height / 1e6:.0f} megapixels) needs about {need / 2**30:.1f} GB "
            f"of memory, and only {free / 2**30:.1f} GB is free.",
            hint="Upscale a crop or a smaller copy of the image (e.g. image.resize((w // 2, h // 2))), or free "
            "memory by restarting the runtime.",
        )


# ---------------------------------------------------------------------------------------------
# Tiled upscaling


def default_tile(upscaler: Upscaler) -> int:
    """Input tile size: 512 px on a GPU (float16 RRDBNet, 2048 px out, peaks well under a T4's 16 GB), 256 on a CPU."""
    return 512 if upscaler.device.type == "cuda" else 256


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis: a step of ``tile - overlap``, the last tile cut at the edge."""
    return [0] if size <= tile else list(range(0, size - overlap, tile - overlap))


def _ramp(length: int, start: int, stop: int, size: int, overlap: int) -> np.ndarray:
    """1-D blend weights of the tile [start, stop) of an axis of ``size`` (output pixels, overlap in output pixels).

    Toward a neighbour the weight is 0 over the outer quarter of the overlap, then rises linearly to 1 over its
    middle half; at the image border it stays 1. Neighbours' weights add up to 1 throughout.
    """
    weights = np.ones(length, dtype=np.float32)
    margin, fade = overlap // 4, max(1, overlap - 2 * (overlap // 4))
    rise = np.clip((np.arange(length, dtype=np.float32) - margin + 0.5) / fade, 0.0, 1.0)
    if start > 0:
        weights = np.minimum(weights, rise)
    if stop < size:
        weights = np.minimum(weights, rise[::-1])
    return weights


def upscale_image(
    image: Image.Image | str | os.PathLike[str],
    upscaler: Upscaler | str | os.PathLike[str] = "RealESRGAN_x4plus",
    *,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Image.Image:
    """``image`` enlarged by the upscaler's scale (4x), tile by tile; RGBA in gives RGBA out.

    ``tile`` is the input tile size (default :func:`default_tile`; 0 for the whole image at once) and ``overlap``
    the input pixels neighbouring tiles share. ``progress`` hears of every tile (with a preview of the result
    after each row of tiles); a set ``stop``, Ctrl-C or the notebook's stop button ends the run after the current
    tile with :class:`sdnb.errors.Interrupted`.
    """
    picture = _prepared(image)
    for name, value in (("tile", tile), ("overlap", overlap)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise SdnbError(f"{name} must be a whole number of pixels (0 or more), not {value!r}.",
                            hint=f"Leave tile out (512 on a GPU, 256 on a CPU) and use overlap={DEFAULT_OVERLAP}.")
    upscaler = load_upscaler(upscaler, scale=None)
    tile = default_tile(upscaler) if tile is None else tile
    if 0 < tile < _MIN_TILE:
        raise SdnbError(f"tile={tile} is too small to upscale well.",
                        hint=f"Use tile={_MIN_TILE} or more, or tile=0 for the whole image at once.")
    if tile and 2 * overlap > tile:
        raise SdnbError(f"overlap={overlap} is more than half of tile={tile}.",
                        hint=f"Use overlap={min(DEFAULT_OVERLAP, tile // 4)} or a larger tile.")
    tile = tile or max(picture.size)
    alpha = picture.getchannel("A") if picture.mode == "RGBA" else None
    rgb = np.array(picture.convert("RGB"))  # writable: torch.from_numpy warns on read-only arrays
    s = upscaler.scale
    _check_memory(picture.width * s, picture.height * s, alpha is not None)
    progress = progress or NullProgress()
    while True:
        try:
            out, tiles, seconds = _run_tiles(rgb, upscaler, tile, overlap, progress, stop)
            break
        except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if tile // 2 < _MIN_TILE:
                raise SdnbError(
                    f"The {upscaler.device.type.upper()} ran out of memory even on {tile} px tiles.",
                    hint="Free memory (clear_upscalers(), delete other pipelines, or restart the runtime) and "
                    "run again.",
                ) from None
            tile, overlap = tile // 2, min(overlap, tile // 4)
    result = Image.fromarray(out, "RGB")
    if alpha is not None:
        result.putalpha(alpha.resize(result.size, Image.Resampling.LANCZOS))
    progress.finish(f"Done: {picture.width}x{picture.height} -> {result.width}x{result.height} in {tiles} tile(s) "
                    f"of {tile} px, {seconds:.1f} s")
    return result


def _run_tiles(
    rgb: np.ndarray,
    upscaler: Upscaler,
    tile: int,
    overlap: int,
    progress: Progress,
    stop: threading.Event | None,
) -> tuple[np.ndarray, int, float]:
    """(the upscaled uint8 array, the number of tiles, seconds). Blends each row of tiles into a float band, then
    writes the rows no later tile touches into the result, so only about one band is kept in float32."""
    height, width = rgb.shape[:2]
    s = upscaler.scale
    rows, cols = _starts(height, tile, overlap), _starts(width, tile, overlap)
    total = len(rows) * len(cols)
    out = np.empty((height * s, width * s, 3), dtype=np.uint8)
    pixels = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)  # 1x3xHxW uint8, on the CPU
    carry = np.zeros((0, width * s, 4), dtype=np.float32)  # the finished rows' overlap with the next row
    done, t0 = 0, time.perf_counter()
    progress.start(total, "Tiles")
    try:
        for r, y0 in enumerate(rows):
            y1 = min(y0 + tile, height)
            band = np.zeros(((y1 - y0) * s, width * s, 4), dtype=np.float32)  # weighted RGB, weight
            wy = _ramp((y1 - y0) * s, y0, y1, height, overlap * s)
            for x0 in cols:
                x1 = min(x0 + tile, width)
                crop = pixels[..., y0:y1, x0:x1].to(upscaler.device, upscaler.dtype) / 255
                piece = upscaler.model(crop)[0].permute(1, 2, 0).float().cpu().numpy()
                weight = wy[:, None] * _ramp((x1 - x0) * s, x0, x1, width, overlap * s)[None, :]
                band[:, x0 * s:x1 * s, :3] += piece * weight[..., None]
                band[:, x0 * s:x1 * s, 3] += weight
                done += 1
                last_in_row = x0 == cols[-1]
                if not last_in_row:
                    progress.update(done)
                    _stop_check(stop, done, total)
            band[: len(carry)] += carry
            keep = (rows[r + 1] - y0) * s if r + 1 < len(rows) else len(band)  # rows the next band will not touch
            finished = band[:keep]
            out[y0 * s:y0 * s + keep] = np.clip(
                finished[..., :3] / np.maximum(finished[..., 3:], 1e-6) * 255 + 0.5, 0, 255).astype(np.uint8)
            carry = band[keep:]
            progress.update(done, _preview(out, (y0 * s + keep)))
            _stop_check(stop, done, total)
    except KeyboardInterrupt:  # Ctrl-C or the notebook's stop button
        raise _interrupted(done, total, progress) from None
    return out, total, time.perf_counter() - t0


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in text or "can't allocate" in text


def _stop_check(stop: threading.Event | None, done: int, total: int) -> None:
    if stop is not None and stop.is_set() and done < total:
        raise KeyboardInterrupt


def _interrupted(done: int, total: int, progress: Progress) -> Interrupted:
    message = (f"after tile {done} of {total}; a partly upscaled image is not kept. Run the cell again to "
               "upscale from the start.")
    progress.finish(f"Stopped {message}")
    return Interrupted(message)


def _preview(out: np.ndarray, rows: int) -> Image.Image:
    """The result so far (rows below ``rows`` still black), shrunk to at most 512 px by taking every k-th pixel."""
    step = max(1, math.ceil(max(out.shape[:2]) / _PREVIEW_SIZE))
    small = out[::step, ::step].copy()
    small[math.ceil(rows / step):] = 0
    return Image.fromarray(small, "RGB")
