"""The one denoising engine below every task: one pipeline call, and the batch loop written once.

:func:`call_pipeline` runs any diffusers pipeline the course uses (txt2img, img2img, inpaint, depth2img, the
x4 upscaler, ControlNet, and their SDXL versions) with every input passed explicitly. Several of these
pipelines accept ``**kwargs`` and silently drop what they do not know (img2img has no ``latents``), so an
argument the pipeline's signature does not declare is an error here, never ignored. Stop ends the run after
the current step and ``on_step`` sees every step, through ``callback_on_step_end`` or, for pipelines that
only have the older ``callback`` (the x4 upscaler), through that.

:func:`render` is the batch loop every task shares, as the WebUI's ``process_images_inner`` serves txt2img
and img2img alike: image ``k`` uses seed ``seed + k``, each image has its own generator (so a seed gives the
same pixels whatever the batch size, for every task), Stop keeps the finished images, progress comes with
live previews, chosen steps are captured for teaching, and every image is saved through the one save path
with its infotext. A task is a params class plus a function that prepares its :class:`Inputs`.
"""

from __future__ import annotations

import inspect
import io
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .errors import Interrupted, SdnbError
from .images import image_grid, save_image
from .lora import prompt_loras
from .models import explain_error, pipeline_lock
from .params import GenParams, to_infotext
from .preview import latents_to_rgb
from .progress import NullProgress, Progress
from .prompts import encode_prompt
from .samplers import set_sampler
from .seeds import seeded_noise

__all__ = ["Inputs", "Result", "accepted_inputs", "call_pipeline", "decode_latents", "render"]


class _Stopped(Exception):
    """Raised inside a step callback to end the pipeline's loop after the current step."""


def accepted_inputs(pipe: Any) -> frozenset[str]:
    """The keyword arguments ``pipe(...)`` declares (``**kwargs`` excluded)."""
    params = inspect.signature(type(pipe).__call__).parameters.values()
    return frozenset(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self")


def call_pipeline(
    pipe: Any,
    args: Mapping[str, Any],
    *,
    stop: threading.Event | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[list[Image.Image], list[bool], bool]:
    """Call ``pipe(**args)`` once: (PIL images, safety-checker flags, interrupted).

    Every key of ``args`` must be an argument ``pipe`` declares; otherwise one clear error names it and lists
    what the pipeline takes, before anything runs. ``on_step(i, latents)`` is called after every step; a set
    ``stop`` ends the loop after the current step.
    """
    accepted = accepted_inputs(pipe)
    unknown = sorted(set(args) - accepted)
    if unknown:
        raise SdnbError(
            f"{type(pipe).__name__} does not take {', '.join(map(repr, unknown))}: it would silently ignore "
            f"{'it' if len(unknown) == 1 else 'them'}.",
            hint=f"Pass only what this pipeline declares: {', '.join(sorted(accepted))}.",
        )
    def step(i: int, latents: torch.Tensor) -> None:
        if on_step is not None:
            on_step(i, latents)
        if stop is not None and stop.is_set():
            raise _Stopped  # not every pipeline checks diffusers' _interrupt flag (depth2img does not)

    def step_end(pipeline: Any, i: int, t: Any, kwargs: dict) -> dict:
        step(i, kwargs["latents"])
        return kwargs

    hooks: dict[str, Any] = {"output_type": "pil"}
    if "callback_on_step_end" in accepted:
        hooks["callback_on_step_end"] = step_end
    elif "callback" in accepted:  # the older hook (the x4 upscaler has only this one)
        hooks |= {"callback": lambda i, t, latents: step(i, latents), "callback_steps": 1}
    try:
        with pipeline_lock(pipe), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "In CPU autocast")  # depth2img asks for float32 autocast on CPUs
            out = pipe(**args, **hooks)
    except _Stopped:
        return [], [], True
    except torch.cuda.OutOfMemoryError as exc:
        raise explain_error(exc, getattr(pipe, "sdnb_model", "this model")) from exc
    images = list(out.images)
    nsfw = list(getattr(out, "nsfw_content_detected", None) or [False] * len(images))
    return images, nsfw, False


def decode_latents(pipe: Any, latents: torch.Tensor) -> Image.Image:
    """Decode (partly denoised) latents with the VAE: what the image looks like at that step."""
    vae = pipe.vae
    with torch.no_grad():
        scaled = latents.to(vae.device, vae.dtype) / vae.config.scaling_factor
        image = vae.decode(scaled, return_dict=False)[0]
    return pipe.image_processor.postprocess(image.float(), output_type="pil")[0]


@dataclass
class Inputs:
    """What a task hands the engine: its own pipeline arguments, and how its images are finished.

    ``args`` are passed to every batch's pipeline call as they are (``image``, ``mask_image``, ``strength``,
    ...; per-image lists already ``batch_size`` long). With ``noise`` set (a latent shape, channels first),
    the engine draws each image's starting latents from its seed and passes ``latents`` (text to image);
    without it the pipeline draws its noise from the per-image generators. ``steps`` is how many steps a
    batch really runs when that is not ``params.steps`` (image to image runs strength x steps).
    ``finish(image)`` runs on each finished image (inpainting pastes the kept pixels back); ``infotext``
    adds task-specific keys. ``variation`` (first variation seed, strength) mixes a second noise into the
    starting latents as the WebUI's variation seeds do (image k: variation seed + k). ``during(pipe)`` is a
    context every batch of the run is rendered in (ControlNet's per-unit control modes hook the pipeline's
    ControlNets there; inpainting's latent masked content wraps the pipeline's ``prepare_latents``).
    ``save_inputs(folder)`` saves inputs the PNGs' parameters cannot hold beside the images (ControlNet's
    control images), once per run that saves, and returns the infotext keys that name them.
    """

    args: dict[str, Any] = field(default_factory=dict)
    noise: tuple[int, int, int] | None = None
    variation: tuple[int, float] | None = None
    steps: int | None = None
    finish: Callable[[Image.Image], Image.Image] | None = None
    infotext: dict[str, Any] = field(default_factory=dict)
    during: Callable[[Any], AbstractContextManager[Any]] | None = None
    save_inputs: Callable[[Path], dict[str, Any]] | None = None


@dataclass
class Result:
    """Images with their seeds, saved paths and infotexts; ``interrupted`` when Stop ended the run early."""

    params: GenParams
    images: list[Image.Image] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)
    interrupted: bool = False
    flagged: list[int] = field(default_factory=list)  # indices the safety checker flagged
    steps_seen: dict[int, Image.Image] = field(default_factory=dict)
    #: Each finished image's last latents, before the VAE decoded them (what hires fix's latent modes enlarge).
    latents: list[torch.Tensor] = field(default_factory=list, repr=False)

    def grid(self) -> Image.Image:
        """All images in one labelled grid (seed under each)."""
        if not self.images:
            raise SdnbError("No image was finished, so there is nothing to show.", hint="Run Generate again.")
        return image_grid(self.images, col_labels=[f"seed {s}" for s in self.seeds])

    def _repr_png_(self) -> bytes | None:
        if not self.images:
            return None
        buf = io.BytesIO()
        self.grid().save(buf, "PNG")
        return buf.getvalue()


def render(
    p: GenParams,
    pipe: Any,
    inputs: Inputs,
    *,
    folder: Path | None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    capture_steps: tuple[int, ...] = (),
    preview_every: int = 5,
    batches: Sequence[int] | None = None,
    save_only: int | None = None,
) -> Result:
    """Render ``batches`` (default all ``p.batch_count``) of ``p.batch_size`` images with ``pipe``.

    ``p`` is validated with its seed resolved. Image ``k`` of the whole run has seed ``p.seed + k``. Each
    finished image is saved to ``folder`` (unless None) with its infotext; ``save_only`` saves just that
    image of the run (regenerating one batch member). ``capture_steps`` keeps the VAE-decoded image at those
    step numbers of the first batch.
    """
    progress = progress or NullProgress()
    batches = range(p.batch_count) if batches is None else batches
    result = Result(params=p)
    try:
        _render_batches(p, pipe, inputs, result, folder, stop, progress, capture_steps, preview_every, batches,
                        save_only)
    except KeyboardInterrupt:  # Ctrl-C or the notebook's stop button: one line, the finished images kept
        result.interrupted = True
        where = f", saved in {folder}" if result.paths else ""
        message = (f"after {len(result.images)} of {p.batch_count * p.batch_size} image(s){where}; "
                   "run it again to make the rest (same seeds, same images).")
        progress.finish(f"Stopped {message}")
        raise Interrupted(message, result) from None
    done = len(result.images)
    flagged = f"; the safety checker blacked out image(s) {result.flagged}" if result.flagged else ""
    if result.interrupted:
        state = f"Stopped after {done} of {len(batches) * p.batch_size} image(s)"
        state += ": the batch under way was dropped (a half-denoised image is not what its settings say)"
    else:
        state = f"Done: {done} image(s)"
    progress.finish(f"{state}; seeds {result.seeds or 'none'}{flagged}")
    return result


def _render_batches(
    p: GenParams,
    pipe: Any,
    inputs: Inputs,
    result: Result,
    folder: Path | None,
    stop: threading.Event | None,
    progress: Progress,
    capture_steps: tuple[int, ...],
    preview_every: int,
    batches: Sequence[int],
    save_only: int | None,
) -> None:
    # one run at a time per model: the sampler is swapped here, the prompt's LoRAs applied for this run only
    during = inputs.during(pipe) if inputs.during is not None else nullcontext()
    with pipeline_lock(pipe), prompt_loras(pipe, p.prompt) as lora_info, during:
        saved = inputs.save_inputs(folder) if folder is not None and inputs.save_inputs is not None else {}
        set_sampler(pipe, p.sampler, p.schedule_type)
        embeds = encode_prompt(pipe, p.prompt, p.negative_prompt, p.clip_skip).repeat(p.batch_size)
        family = getattr(pipe, "sdnb_family", "sd15")
        steps = inputs.steps or p.steps
        total = steps * len(batches)
        progress.start(total, "Steps")
        for nth, batch in enumerate(batches):
            seeds = [p.seed + batch * p.batch_size + i for i in range(p.batch_size)]

            last: list[torch.Tensor] = []

            def on_step(i: int, latents: torch.Tensor, batch: int = batch, nth: int = nth,
                        last: list[torch.Tensor] = last) -> None:
                last[:] = [latents]
                show = preview_every and (i + 1) % preview_every == 0
                progress.update(min(nth * steps + i + 1, total),
                                latents_to_rgb(latents, family, pipe.vae_scale_factor) if show else None)
                if batch == 0 and i + 1 in capture_steps:
                    result.steps_seen[i + 1] = decode_latents(pipe, latents[:1])

            args = {**embeds.as_kwargs(), **inputs.args, "num_inference_steps": p.steps,
                    "guidance_scale": p.cfg_scale}
            if inputs.noise is not None:
                first, strength = inputs.variation or (0, 0.0)
                subseeds = [first + batch * p.batch_size + i for i in range(p.batch_size)]
                latents, generators = seeded_noise(seeds, inputs.noise, subseeds, strength)
                args["latents"] = latents.to(pipe._execution_device, pipe.unet.dtype)
            else:
                generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
            images, nsfw, interrupted = call_pipeline(pipe, args | {"generator": generators}, stop=stop,
                                                      on_step=on_step)
            if interrupted:  # a half-denoised batch is not what its parameters say: keep only finished ones
                result.interrupted = True
                break
            if last:
                result.latents += list(last[0].detach().float().cpu())
            for pos, (seed, image, flagged) in enumerate(zip(seeds, images, nsfw, strict=True)):
                if inputs.finish is not None:
                    image = inputs.finish(image)
                if flagged:
                    result.flagged.append(len(result.images))
                extra = dict(inputs.infotext) | saved | lora_info
                if inputs.variation is not None:
                    extra["Variation seed"] = subseeds[pos]
                text = to_infotext(p, seed, pos, extra)
                result.images.append(image)
                result.seeds.append(seed)
                result.infotexts.append(text)
                if folder is not None and save_only in (None, batch * p.batch_size + pos):
                    result.paths.append(save_image(image, folder, infotext=text, stem=str(seed)))
