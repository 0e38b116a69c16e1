"""Every image task over the one engine: text to image, image to image, inpainting, depth to image and the
SD x4 upscaler, plus :func:`regenerate`, which remakes any of them from a PNG's parameters.

A task is its params class (:mod:`sdnb.params`) plus one function here that turns validated params into the
pipeline's inputs (:class:`sdnb.engine.Inputs`); :func:`run_task` does the rest for all of them: validate,
resolve the seed, load the model's pipeline for the task, and hand both to :func:`sdnb.engine.render`.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps

from .engine import Inputs, Result, render
from .errors import SdnbError
from .images import as_image, fit_image, parse_infotext, read_infotext, writable_folder
from .models import load_pipeline
from .params import (
    Depth2ImgParams,
    GenParams,
    Img2ImgParams,
    InpaintParams,
    Txt2ImgParams,
    UpscaleParams,
    infotext_keys,
    params_from_infotext,
)
from .progress import Progress
from .seeds import resolve_seed
from .settings import output_dir
from .walk import remake_frame

__all__ = ["TASKS", "run_task", "txt2img", "img2img", "inpaint", "depth2img", "upscale", "regenerate"]


def _txt2img_inputs(p: Txt2ImgParams, pipe: Any) -> Inputs:
    scale = pipe.vae_scale_factor
    noise = (pipe.unet.config.in_channels, p.height // scale, p.width // scale)
    variation = (p.variation_seed, p.variation_strength) if p.variation_strength else None
    return Inputs(args={"height": p.height, "width": p.width}, noise=noise, variation=variation)


def _source(p: Img2ImgParams | UpscaleParams, width: int, height: int) -> Image.Image:
    return fit_image(as_image(p.image), width, height, p.resize_mode)


def _img2img_inputs(p: Img2ImgParams, pipe: Any) -> Inputs:
    image = _source(p, p.width, p.height)
    return Inputs(args={"image": [image] * p.batch_size, "strength": p.strength}, steps=_steps_run(p))


def _mask(p: InpaintParams) -> Image.Image:
    """The mask fitted like the image: white = repaint; inverted for "Inpaint not masked"; blurred."""
    mask = fit_image(as_image(p.mask, mode="L"), p.width, p.height, p.resize_mode)
    if p.mask_mode == "Inpaint not masked":
        mask = ImageOps.invert(mask)
    return mask.filter(ImageFilter.GaussianBlur(p.mask_blur)) if p.mask_blur else mask


def _inpaint_inputs(p: InpaintParams, pipe: Any) -> Inputs:
    image, mask = _source(p, p.width, p.height), _mask(p)
    if p.inpaint_area == "Only masked":  # diffusers crops around the mask and pastes back; it takes one image
        args = {"image": image, "mask_image": mask, "padding_mask_crop": p.padding}
    else:  # one per image, so image k's encoding noise comes from its own generator
        args = {"image": [image] * p.batch_size, "mask_image": [mask] * p.batch_size}
    args |= {"strength": p.strength, "height": p.height, "width": p.width}

    def keep_unmasked(result: Image.Image) -> Image.Image:
        """The VAE round trip changes every pixel a little: paste the kept part of the source back."""
        return Image.composite(result.convert("RGB"), image, mask)

    return Inputs(args=args, finish=keep_unmasked, steps=_steps_run(p))


def _depth2img_inputs(p: Depth2ImgParams, pipe: Any) -> Inputs:
    image = _source(p, p.width, p.height)
    return Inputs(args={"image": [image] * p.batch_size, "strength": p.strength}, steps=_steps_run(p))


def _upscale_inputs(p: UpscaleParams, pipe: Any) -> Inputs:
    image = _source(p, p.width // 4, p.height // 4)
    return Inputs(args={"image": [image] * p.batch_size, "noise_level": p.noise_level})


def _steps_run(p: Img2ImgParams) -> int:
    """The steps an image-to-image run really takes: strength x steps (diffusers' and the WebUI's rule)."""
    return min(int(p.steps * p.strength), p.steps)


#: task name -> the function that turns its validated params into the pipeline's inputs.
TASKS: dict[str, Callable[[Any, Any], Inputs]] = {
    "txt2img": _txt2img_inputs,
    "img2img": _img2img_inputs,
    "inpaint": _inpaint_inputs,
    "depth2img": _depth2img_inputs,
    "upscale": _upscale_inputs,
}


def run_task(
    params: GenParams,
    *,
    pipe: Any = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    save: bool = True,
    folder: str | Path | None = None,
    capture_steps: tuple[int, ...] = (),
    preview_every: int = 5,
    batches: Sequence[int] | None = None,
    save_only: int | None = None,
    **overrides: Any,
) -> Result:
    """Run the task ``params`` describe (``params.task``) and save each image as a PNG with its parameters.

    ``overrides`` replace fields of ``params`` (``steps=4``). Image ``k`` uses seed ``seed + k`` (the WebUI's
    rule), so any single image can be regenerated. ``capture_steps`` keeps the VAE-decoded image at those
    step numbers of the first batch, for teaching. ``batches`` renders only those batch numbers (of
    ``range(batch_count)``) with the seeds they have in the whole run: how
    :func:`sdnb.distributed.run_task_distributed` shares a job. Stop (the ``stop`` event) ends after the
    current step and keeps the images already finished. ``pipe`` defaults to the model's pipeline for
    the task (loaded once per model, see :func:`sdnb.models.load_pipeline`).
    """
    if not isinstance(params, GenParams):
        raise SdnbError(f"run_task needs task parameters (e.g. Img2ImgParams(...)), not {type(params).__name__}.")
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise SdnbError(f"{type(params).__name__} has no parameter {', '.join(map(repr, unknown))}.",
                        hint=f"Use one of: {', '.join(sorted(fields))}.")
    p = dataclasses.replace(params, **overrides).validate()
    p = dataclasses.replace(p, seed=resolve_seed(p.seed, p.images()))
    if getattr(p, "variation_strength", 0):  # the variation seed used is written into every PNG
        p = dataclasses.replace(p, variation_seed=resolve_seed(p.variation_seed, p.images()))
    if batches is not None and any(not 0 <= k < p.batch_count for k in batches):
        raise SdnbError(f"Batch numbers must be from 0 to {p.batch_count - 1} (got {list(batches)}).")
    target = writable_folder(folder or output_dir() / p.task) if save else None
    pipe = pipe if pipe is not None else load_pipeline(p.model, task=p.task)
    inputs = TASKS[p.task](p, pipe)
    return render(p, pipe, inputs, folder=target, stop=stop, progress=progress, capture_steps=capture_steps,
                  preview_every=preview_every, batches=batches, save_only=save_only)


def txt2img(params: Txt2ImgParams | None = None, **options: Any) -> Result:
    """Text to image. ``options``: any :func:`run_task` keyword, or any field of ``params`` to change."""
    return run_task(params or Txt2ImgParams(), **options)


def img2img(params: Img2ImgParams | None = None, **options: Any) -> Result:
    """Image to image: ``params.image`` noised by ``strength``, then denoised towards the prompt."""
    return run_task(params or Img2ImgParams(), **options)


def inpaint(params: InpaintParams | None = None, **options: Any) -> Result:
    """Inpainting: repaint the white part of ``params.mask``; the rest of ``params.image`` is kept exactly."""
    return run_task(params or InpaintParams(), **options)


def depth2img(params: Depth2ImgParams | None = None, **options: Any) -> Result:
    """Depth to image: a new picture with the depth (shapes, layout) of ``params.image``."""
    return run_task(params or Depth2ImgParams(), **options)


def upscale(params: UpscaleParams | None = None, **options: Any) -> Result:
    """The SD x4 upscaler: ``params.image`` at a quarter of width x height in, width x height out."""
    return run_task(params or UpscaleParams(), **options)


_SOURCES = {"image": "source image", "mask": "mask"}
#: Keys every task reads or that do not change the pixels (the rest come from the params' fields).
_HONOURED = frozenset({"Seed", "Batch size", "Batch pos", "Schedule type", "Model hash", "Version", "RNG"})


def regenerate(png: str | Path, **overrides: Any) -> Result:
    """Read the ``parameters`` of any PNG (sdnb's or the WebUI's) and make the same image again.

    The task comes from the keys found (``Denoising strength``: image to image; mask keys: inpainting; a
    depth or upscaler model: that task). Tasks that start from an image need it again: pass
    ``image=`` (and ``mask=``), since a PNG's parameters do not hold them. An image that was part of a
    batch is remade inside the same batch (``Batch size``/``Batch pos``), because batched arithmetic can
    differ from a single image's in the last bit; only that image is saved.
    """
    text = read_infotext(png)
    if not text:
        raise SdnbError(
            f"{png} has no generation parameters (no 'parameters' text chunk).",
            hint="Use a PNG saved by sdnb or by the AUTOMATIC1111 WebUI with metadata enabled.",
        )
    settings = parse_infotext(text).settings
    if "Walk frame" in settings:  # a frame of an interpolation walk: between two prompts and two seeds
        return remake_frame(text, **overrides)
    params = params_from_infotext(text)
    if settings.get("Version", "") != "sdnb" and settings.get("RNG", "GPU") != "CPU":
        warnings.warn(f"{Path(png).name} was made with the WebUI's GPU noise (its default RNG); sdnb draws noise "
                      "on the CPU, as the WebUI does with RNG: CPU, so the new image will differ.", stacklevel=2)
    ignored = [key for key in settings if key not in _HONOURED and key not in infotext_keys(type(params))]
    if ignored:
        warnings.warn(f"regenerate cannot honour these settings of {Path(png).name} yet, so the new image may "
                      f"differ from it: {', '.join(ignored)}.", stacklevel=2)
    missing = [what for name, what in _SOURCES.items() if hasattr(params, name) and name not in overrides]
    if missing:
        raise SdnbError(
            f"{png} was made by {params.task} from a {' and a '.join(missing)}, which its parameters do not hold.",
            hint=f"Pass {' and '.join(f'{n}=<path>' for n in _SOURCES if hasattr(params, n))} to regenerate(): "
            "the same file(s) it was made from.",
        )
    raw = settings.get("Batch pos", "0")
    pos = int(raw) if raw.isdigit() else -1
    if not 0 <= pos < params.batch_size or params.seed < pos:
        raise SdnbError(f"{png} has inconsistent batch parameters (Batch pos {raw!r}).")
    first = dataclasses.replace(params, seed=params.seed - pos, batch_count=1)
    if getattr(first, "variation_strength", 0):  # image k of a batch also has variation seed + k
        first = dataclasses.replace(first, variation_seed=first.variation_seed - pos)
    result = run_task(first, save_only=pos, **overrides)
    if result.interrupted or len(result.images) <= pos:
        return result
    keep = slice(pos, pos + 1)  # its paths hold only this image already (save_only)
    result.images, result.seeds, result.infotexts = result.images[keep], result.seeds[keep], result.infotexts[keep]
    result.flagged = [0] if pos in result.flagged else []
    return result

