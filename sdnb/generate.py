"""Every image task over the one engine: text to image, image to image, inpainting, depth to image and the
SD x4 upscaler, plus :func:`regenerate`, which remakes any of them from a PNG's parameters.

A task is its params class (:mod:`sdnb.params`) plus one function here that turns validated params into the
pipeline's inputs (:class:`sdnb.engine.Inputs`); :func:`run_task` does the rest for all of them: validate,
resolve the seed, load the model's pipeline for the task, and hand both to :func:`sdnb.engine.render`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

from .control import control_map, control_source, preprocess
from .controlmode import control_mode_hooks
from .engine import Inputs, Result, render
from .errors import Interrupted, SdnbError
from .images import as_image, fit_image, parse_infotext, read_infotext, save_image, writable_folder
from .latentfill import LATENT_CONTENT, replacing_hole_latents
from .masks import check_mask, crop_region, fill_masked
from .models import load_pipeline
from .params import (
    HIRES_ESRGAN,
    HIRES_LATENT,
    ControlNetImg2ImgParams,
    ControlNetInpaintParams,
    ControlNetParams,
    ControlUnits,
    Depth2ImgParams,
    GenParams,
    HiresParams,
    Img2ImgParams,
    InpaintParams,
    Txt2ImgParams,
    UpscaleParams,
    infotext_keys,
    params_from_infotext,
    to_infotext,
)
from .progress import Progress
from .seeds import resolve_seed
from .settings import output_dir
from .upscalers import upscale_image
from .walk import remake_frame

__all__ = ["TASKS", "image_hash", "run_task", "txt2img", "img2img", "inpaint", "depth2img", "upscale", "hires_fix", "controlnet",
           "controlnet_img2img", "controlnet_inpaint", "regenerate"]


def _txt2img_inputs(p: Txt2ImgParams, pipe: Any) -> Inputs:
    scale = pipe.vae_scale_factor
    noise = (pipe.unet.config.in_channels, p.height // scale, p.width // scale)
    variation = (p.variation_seed, p.variation_strength) if p.variation_strength else None
    return Inputs(args={"height": p.height, "width": p.width}, noise=noise, variation=variation)


def _source(p: Img2ImgParams | UpscaleParams, width: int, height: int) -> Image.Image:
    return fit_image(as_image(p.image), width, height, p.resize_mode)


def image_hash(image: Image.Image) -> str:
    """A short hash of an image's pixels (as fitted for the run), written into the PNG as ``Source hash`` so
    that :func:`regenerate` can tell whether it was given the same source image."""
    digest = hashlib.sha256(f"{image.mode} {image.width}x{image.height} ".encode() + image.tobytes())
    return digest.hexdigest()[:12]


def _img2img_inputs(p: Img2ImgParams, pipe: Any) -> Inputs:
    image = _source(p, p.width, p.height)
    return Inputs(args={"image": [image] * p.batch_size, "strength": p.strength}, steps=_steps_run(p),
                  infotext={"Source hash": image_hash(image)})


def _mask(p: InpaintParams, size: tuple[int, int] | None) -> Image.Image:
    """The mask at the image's own size (``size`` None) or fitted like the image to ``size``: white = repaint;
    inverted for "Inpaint not masked"; blurred.

    A mask whose size differs from the image's is resized with a notice; an empty or full mask is refused.
    """
    mask = as_image(p.mask, mode="L")
    own = as_image(p.image).size
    if mask.size != own:
        warnings.warn(f"The mask is {mask.width}x{mask.height} but the image is {own[0]}x{own[1]}: the mask was "
                      "stretched to the image's size, so check the overlay.", stacklevel=4)
        mask = mask.resize(own, Image.LANCZOS)
    if size is not None:
        mask = fit_image(mask, *size, p.resize_mode)
    if p.mask_mode == "Inpaint not masked":
        mask = ImageOps.invert(mask)
    check_mask(mask)
    return mask.filter(ImageFilter.GaussianBlur(p.mask_blur)) if p.mask_blur else mask


def _inpaint_region(p: InpaintParams) -> tuple[Image.Image, Image.Image, tuple[int, int, int, int]]:
    """For Only masked: the whole picture, its mask at the picture's own size, and the crop box around the mask."""
    whole, whole_mask = as_image(p.image).convert("RGB"), _mask(p, None)
    return whole, whole_mask, crop_region(whole_mask, p.padding, p.width, p.height)


def _inpaint_inputs(p: InpaintParams, pipe: Any,
                    region: tuple[Image.Image, Image.Image, tuple[int, int, int, int]] | None = None) -> Inputs:
    """Whole picture: the image and mask fitted to the run's size, the kept pixels pasted back afterwards.

    Only masked (the WebUI's "inpaint at full resolution"): the image keeps its own size; a crop around the mask
    (with the padding, shaped like the run) is inpainted at the run's size, scaled back and pasted in, blended
    through the blurred mask, so the result is the whole picture at its own size. Masked content is applied to
    what the model sees (after the crop): fill paints the hole from its edges; latent noise and latent nothing
    replace the hole's latents with the image's seeded noise or zeros, as the WebUI does. ``region`` is
    :func:`_inpaint_region`'s result when the caller has it already.
    """
    if p.inpaint_area == "Only masked":
        whole, whole_mask, box = region or _inpaint_region(p)
        source = fit_image(whole.crop(box), p.width, p.height, "Resize and fill")
        mask = fit_image(whole_mask.crop(box), p.width, p.height, "Resize and fill")

        def finish(result: Image.Image) -> Image.Image:
            pasted = whole.copy()
            pasted.paste(fit_image(result.convert("RGB"), box[2] - box[0], box[3] - box[1], "Crop and resize"),
                         box[:2])
            return Image.composite(pasted, whole, whole_mask)

        hashes = {"Source hash": image_hash(whole), "Mask hash": image_hash(whole_mask)}
    else:
        source, mask = _source(p, p.width, p.height), _mask(p, (p.width, p.height))

        def finish(result: Image.Image) -> Image.Image:
            """The VAE round trip changes every pixel a little: paste the kept part of the source back."""
            return Image.composite(result.convert("RGB"), source, mask)

        hashes = {"Source hash": image_hash(source), "Mask hash": image_hash(mask)}
    image = fill_masked(source, mask) if p.masked_content == "fill" else source
    # one per image, so image k's encoding noise comes from its own generator
    args = {"image": [image] * p.batch_size, "mask_image": [mask] * p.batch_size, "strength": p.strength,
            "height": p.height, "width": p.width}
    during = None
    if p.masked_content in LATENT_CONTENT:
        def during(pipe: Any) -> AbstractContextManager[None]:
            return replacing_hole_latents(pipe, mask, p.masked_content)
    return Inputs(args=args, finish=finish, steps=_steps_run(p), infotext=hashes, during=during)


def _depth_map(p: Depth2ImgParams) -> torch.Tensor:
    """A greyscale depth image (white = near, as the DPT estimator's output) as the pipeline's ``depth_map``."""
    grey = fit_image(as_image(p.depth_map, mode="L"), p.width, p.height, p.resize_mode)
    low, high = grey.getextrema()
    if low == high:
        raise SdnbError("The depth map is one flat grey, so it holds no depth to keep.",
                        hint="Use a greyscale image where near things are lighter, or leave Depth map empty to "
                        "estimate it from the image.")
    return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)[None]


def _depth2img_inputs(p: Depth2ImgParams, pipe: Any) -> Inputs:
    image = _source(p, p.width, p.height)
    args = {"image": [image] * p.batch_size, "strength": p.strength}
    infotext = {"Source hash": image_hash(image)}
    if p.depth_map:
        depth = _depth_map(p)
        args["depth_map"] = depth
        infotext["Depth map hash"] = image_hash(Image.fromarray((depth[0].numpy() * 255).astype(np.uint8)))
    return Inputs(args=args, steps=_steps_run(p), infotext=infotext)


def _upscale_inputs(p: UpscaleParams, pipe: Any) -> Inputs:
    image = _source(p, p.width // 4, p.height // 4)
    return Inputs(args={"image": [image] * p.batch_size, "noise_level": p.noise_level})


def _hires_inputs(p: HiresParams, pipe: Any, low: Result, stop: threading.Event | None) -> Inputs:
    """The second pass of a hires fix: the first pass's images enlarged, then image to image.

    Like the WebUI, the second pass runs exactly ``hires_steps`` steps: the last ones of a schedule of
    ``hires_steps / denoising_strength`` steps (diffusers would otherwise run strength x steps). The schedule's
    length is returned in ``infotext["num_inference_steps"]`` for the caller to take out.
    """
    if p.hires_upscaler in HIRES_LATENT:
        image: Any = _enlarge_latents(p, pipe, low.latents)
    else:
        image = [_enlarge_pixels(p, picture, stop) for picture in low.images]
    run = p.hires_steps_run()
    schedule = max(run, int(run / min(p.denoising_strength, 0.999)))
    strength = min(1.0, (run + 0.5) / schedule)  # int(schedule x strength) == run, whatever the rounding
    return Inputs(args={"image": image, "strength": strength}, steps=run, infotext={"num_inference_steps": schedule})


def _enlarge_latents(p: HiresParams, pipe: Any, low: Sequence[torch.Tensor]) -> torch.Tensor:
    """The first pass's own latents (as the sampler left them, before the VAE), enlarged with the WebUI's latent
    mode, then cropped to the target: what the WebUI's latent hires fix does."""
    tw, th, cw, ch = p.hires_size()
    scale = pipe.vae_scale_factor
    mode, antialias = HIRES_LATENT[p.hires_upscaler]
    with torch.no_grad():
        latents = torch.nn.functional.interpolate(torch.stack(list(low)).float(), size=(ch // scale, cw // scale),
                                                  mode=mode, antialias=antialias)
    cut_y, cut_x = (ch - th) // scale, (cw - tw) // scale  # the WebUI's crop when both resize values are set
    return latents[:, :, cut_y // 2: ch // scale - (cut_y + 1) // 2, cut_x // 2: cw // scale - (cut_x + 1) // 2]


def _enlarge_pixels(p: HiresParams, image: Image.Image, stop: threading.Event | None) -> Image.Image:
    """One first-pass image enlarged in pixels (Real-ESRGAN as often as needed, then Lanczos), cropped to fill."""
    tw, th, cw, ch = p.hires_size()
    if p.hires_upscaler in HIRES_ESRGAN:
        while image.width < cw or image.height < ch:
            image = upscale_image(image, HIRES_ESRGAN[p.hires_upscaler], stop=stop)
    resample = Image.Resampling.NEAREST if p.hires_upscaler == "Nearest" else Image.Resampling.LANCZOS
    return ImageOps.fit(image, (tw, th), resample)


def _run_hires(
    p: HiresParams,
    folder: Path | None,
    *,
    stop: threading.Event | None,
    progress: Progress | None,
    capture_steps: tuple[int, ...],
    preview_every: int,
    batches: Sequence[int] | None,
    save_only: int | None,
) -> Result:
    """Hires fix, batch by batch: text to image at the first pass's size, then the enlarged images repainted by
    image to image, both through the engine. Each final image is saved with the hires-fix infotext."""
    first = p.first_pass()
    result = Result(params=p)
    for batch in range(p.batch_count) if batches is None else batches:
        base = batch * p.batch_size
        try:
            txt2img_pipe = load_pipeline(p.model, task="txt2img")
            low = render(first, txt2img_pipe, _txt2img_inputs(first, txt2img_pipe), folder=None, stop=stop,
                         progress=progress, capture_steps=capture_steps, preview_every=preview_every,
                         batches=[batch])
            result.steps_seen |= low.steps_seen
            if low.interrupted:
                result.interrupted = True
                break
            img2img_pipe = load_pipeline(p.model, task="img2img")
            inputs = _hires_inputs(p, img2img_pipe, low, stop)
            schedule = inputs.infotext.pop("num_inference_steps")
            high = render(dataclasses.replace(first, steps=schedule), img2img_pipe, inputs, folder=None, stop=stop,
                          progress=progress, preview_every=preview_every, batches=[batch])
        except Interrupted:
            kept = f", saved in {folder}" if result.paths else ""
            raise Interrupted(f"after {len(result.images)} of {p.images()} image(s){kept}; run it again to make the "
                              "rest (same seeds, same images).", result) from None
        for pos, (seed, image) in enumerate(zip(high.seeds, high.images, strict=True)):
            extra = {"Variation seed": p.variation_seed + base + pos} if p.variation_strength else {}
            text = to_infotext(p, seed, pos, extra)
            if pos in high.flagged:
                result.flagged.append(len(result.images))
            result.images.append(image)
            result.seeds.append(seed)
            result.infotexts.append(text)
            if folder is not None and save_only in (None, base + pos):
                result.paths.append(save_image(image, folder, infotext=text, stem=str(seed)))
        if high.interrupted:
            result.interrupted = True
            break
    return result


def _with_units(p: ControlUnits, inputs: Inputs, key: str, maps: list[Image.Image] | None = None,
                size: tuple[int, int] | None = None) -> Inputs:
    """A task's inputs with its ControlNet units added: each unit's control map (under ``key``, the name the
    task's ControlNet pipeline gives it; ``maps`` when the caller made them, else from each unit's image at the
    run's size), weight, start and end (lists with several units), its control mode hooked in for the run, and
    its control images saved beside the results (fitted to ``size``, default the run's)."""
    units = p.units()
    per_unit = {
        key: maps if maps is not None else [control_map(unit, p.width, p.height) for unit in units],
        "controlnet_conditioning_scale": [float(unit.weight) for unit in units],
        "control_guidance_start": [float(unit.start) for unit in units],
        "control_guidance_end": [float(unit.end) for unit in units],
    }  # one ControlNet takes single values, a MultiControlNet one per unit
    inputs.args |= {name: values[0] if len(units) == 1 else values for name, values in per_unit.items()}
    task_during, modes = inputs.during, [unit.mode for unit in units]

    @contextmanager
    def during(pipe: Any) -> Iterator[None]:  # the task's own (latent masked content), then the control modes
        with task_during(pipe) if task_during is not None else nullcontext(), control_mode_hooks(pipe, modes):
            yield

    inputs.during = during
    inputs.save_inputs = lambda folder: _save_control_images(p, folder, size)
    return inputs


def _controlnet_inputs(p: ControlNetParams, pipe: Any) -> Inputs:
    """Text to image with ControlNet units (the pipeline calls the control maps ``image``)."""
    return _with_units(p, _txt2img_inputs(p, pipe), "image")


def _controlnet_img2img_inputs(p: ControlNetImg2ImgParams, pipe: Any) -> Inputs:
    """Image to image with ControlNet units (``image`` is the source, ``control_image`` the maps)."""
    return _with_units(p, _img2img_inputs(p, pipe), "control_image")


def _controlnet_inpaint_inputs(p: ControlNetInpaintParams, pipe: Any) -> Inputs:
    """Inpainting with ControlNet units (``image`` and ``mask_image`` as inpainting has them). With Only masked,
    each control picture is fitted to the whole picture and cut with the same crop as it, as the WebUI's
    ControlNet extension does, so the map lines up with what is repainted."""
    if p.inpaint_area != "Only masked":
        return _with_units(p, _inpaint_inputs(p, pipe), "control_image")
    region = _inpaint_region(p)
    size, box = region[0].size, region[2]
    maps = [preprocess(unit.module, fit_image(control_source(unit, *size).crop(box), p.width, p.height,
                                              "Resize and fill"), unit.low, unit.high) for unit in p.units()]
    return _with_units(p, _inpaint_inputs(p, pipe, region), "control_image", maps, size)


def _save_control_images(p: ControlUnits, folder: Path, size: tuple[int, int] | None = None) -> dict[str, str]:
    """Save each unit's control image as the run fits it (before preprocessing; at ``size``, default the run's)
    beside the results; the infotext keys (``ControlNet N Image``) that name them, so :func:`regenerate` can
    remake the image."""
    width, height = size or (p.width, p.height)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resize notice was given when the inputs were prepared
        sources = [control_source(unit, width, height) for unit in p.units()]
    return {f"ControlNet {n} Image": save_image(image, folder, stem=f"control{n}").name
            for n, image in enumerate(sources)}


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
    "controlnet": _controlnet_inputs,
    "controlnet-img2img": _controlnet_img2img_inputs,
    "controlnet-inpaint": _controlnet_inpaint_inputs,
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
    if isinstance(p, HiresParams):  # two passes, each through the engine: the second starts from the first's images
        if pipe is not None:
            raise SdnbError("The hires fix loads its two pipelines (text to image, image to image) itself.",
                            hint="Leave pipe out; choose the model with model=...")
        return _run_hires(p, target, stop=stop, progress=progress, capture_steps=capture_steps,
                          preview_every=preview_every, batches=batches, save_only=save_only)
    pipe = pipe if pipe is not None else load_pipeline(p.model, **p.load_options())
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


def controlnet(params: ControlNetParams | None = None, **options: Any) -> Result:
    """Text to image steered by ControlNet units; each unit's control image is saved beside the results."""
    return run_task(params or ControlNetParams(), **options)


def controlnet_img2img(params: ControlNetImg2ImgParams | None = None, **options: Any) -> Result:
    """Image to image steered by ControlNet units (the WebUI extension on the img2img tab)."""
    return run_task(params or ControlNetImg2ImgParams(), **options)


def controlnet_inpaint(params: ControlNetInpaintParams | None = None, **options: Any) -> Result:
    """Inpainting steered by ControlNet units: the masked part is repainted following the control maps."""
    return run_task(params or ControlNetInpaintParams(), **options)


def upscale(params: UpscaleParams | None = None, **options: Any) -> Result:
    """The SD x4 upscaler: ``params.image`` at a quarter of width x height in, width x height out."""
    return run_task(params or UpscaleParams(), **options)


def hires_fix(params: HiresParams | None = None, **options: Any) -> Result:
    """Hires fix: generate at width x height, enlarge by ``hires_upscale`` (latent or pixels), repaint detail."""
    return run_task(params or HiresParams(), **options)


_SOURCES = {"image": "source image", "mask": "mask"}
#: Keys every task reads or that do not change the pixels (the rest come from the params' fields).
_HONOURED = frozenset({"Seed", "Batch size", "Batch pos", "Schedule type", "Model hash", "Version", "RNG",
                       "Source hash", "Mask hash", "Depth map hash", "Lora hashes"})


def _check_sources(png: str | Path, params: GenParams, settings: dict[str, str], given: dict[str, Any]) -> None:
    """The image (mask, depth map) given to :func:`regenerate` must be the one the PNG was made from: compare
    the hashes its parameters hold with those of the given files, fitted as the run fits them."""
    if "Depth map hash" in settings and not given.get("depth_map"):
        raise SdnbError(f"{png} was made with a depth map of your own, which its parameters do not hold.",
                        hint="Pass depth_map=<path> to regenerate(): the same greyscale image it was made with.")
    written = {key: settings[key] for key in ("Source hash", "Mask hash", "Depth map hash") if key in settings}
    if not written:
        return
    p = dataclasses.replace(params, **{k: v for k, v in given.items() if k in ("image", "mask", "depth_map")})
    p = p.validate()
    hashes = TASKS[p.task](p, None).infotext  # the same hashes the run itself writes
    wrong = [key for key, value in written.items() if hashes.get(key) != value]
    if wrong:
        names = {"Source hash": "image", "Mask hash": "mask", "Depth map hash": "depth map"}
        which = " and ".join(names[key] for key in wrong)
        raise SdnbError(f"The {which} given is not the one {png} was made from (its pixels, fitted to "
                        f"{p.width}x{p.height}, have another hash than the PNG's parameters record), so the "
                        "new image would differ.",
                        hint=f"Pass the same {which} file(s) it was made from; to make a new picture from this "
                        "one instead, use img2img.")


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
    if isinstance(params, ControlUnits):  # its control images were saved beside it
        params = params.with_images_in(Path(png).parent)
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
    _check_sources(png, params, settings, overrides)
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

