"""Text to image: the function the notebook's Generate button and its plain cell both call."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .errors import SdnbError
from .images import format_infotext, image_grid, parse_infotext, read_infotext, save_image, writable_folder
from .models import explain_error, load_pipeline, pipeline_lock
from .params import Txt2ImgParams
from .preview import latents_to_rgb
from .progress import NullProgress, Progress
from .prompts import encode_prompt
from .samplers import set_sampler
from .seeds import resolve_seed, seeded_noise
from .settings import output_dir

__all__ = ["Txt2ImgResult", "txt2img", "regenerate", "infotext_for", "run_pipeline", "main"]


@dataclass
class Txt2ImgResult:
    """Images with their seeds, saved paths and infotexts; ``interrupted`` when Stop ended the run early."""

    params: Txt2ImgParams
    images: list[Image.Image] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)
    interrupted: bool = False
    flagged: list[int] = field(default_factory=list)  # indices the safety checker flagged
    steps_seen: dict[int, Image.Image] = field(default_factory=dict)

    def grid(self) -> Image.Image:
        """All images in one labelled grid (seed under each)."""
        if not self.images:
            raise SdnbError("No image was finished, so there is nothing to show.", hint="Run Generate again.")
        return image_grid(self.images, col_labels=[f"seed {s}" for s in self.seeds])

    def _repr_png_(self) -> bytes | None:
        import io

        if not self.images:
            return None
        buf = io.BytesIO()
        self.grid().save(buf, "PNG")
        return buf.getvalue()


def infotext_for(p: Txt2ImgParams, seed: int, batch_pos: int = 0) -> str:
    """The WebUI ``parameters`` text for one image of ``p`` (batch keys only when batch size > 1, as the WebUI)."""
    batch = {"Batch size": p.batch_size, "Batch pos": batch_pos} if p.batch_size > 1 else {}
    return format_infotext(
        p.prompt,
        p.negative_prompt,
        {
            "Steps": p.steps,
            "Sampler": p.sampler,
            "CFG scale": f"{p.cfg_scale:g}",
            "Seed": seed,
            "Size": f"{p.width}x{p.height}",
            "Model": p.model,
            **batch,
            "Version": "sdnb",
        },
    )


def run_pipeline(
    pipe: Any,
    *,
    embeds: Any,
    latents: torch.Tensor,
    steps: int,
    cfg_scale: float,
    stop: threading.Event | None = None,
    on_step: Any = None,
    generators: list[torch.Generator] | None = None,
) -> tuple[list[Image.Image], list[bool], bool]:
    """One batched denoising run from given latents and embeddings: (images, nsfw flags, interrupted).

    ``generators`` (one per image, from :func:`sdnb.seeds.seeded_noise`) feed samplers that add noise.

    ``on_step(i, latents)`` is called after every step; a set ``stop`` event ends the loop after the
    current step (diffusers' ``_interrupt`` flag).
    """

    def callback(pipeline: Any, i: int, t: Any, kwargs: dict) -> dict:
        if on_step is not None:
            on_step(i, kwargs["latents"])
        if stop is not None and stop.is_set():
            pipeline._interrupt = True
        return kwargs

    b, _, h, w = latents.shape
    scale = pipe.vae_scale_factor
    extra: dict[str, Any] = {}
    if getattr(pipe, "text_encoder_2", None) is not None:
        extra["original_size"] = extra["target_size"] = (h * scale, w * scale)
    try:
        with pipeline_lock(pipe):
            out = pipe(
                **embeds.as_kwargs(),
                latents=latents.to(pipe._execution_device, pipe.unet.dtype),
                height=h * scale,
                width=w * scale,
                num_inference_steps=steps,
                guidance_scale=cfg_scale,
                callback_on_step_end=callback,
                generator=generators,
                output_type="pil",
                **extra,
            )
            interrupted = bool(getattr(pipe, "_interrupt", False))
    except torch.cuda.OutOfMemoryError as exc:
        raise explain_error(exc, getattr(pipe, "sdnb_model", "this model")) from exc
    nsfw = list(getattr(out, "nsfw_content_detected", None) or [False] * b)
    return list(out.images), nsfw, interrupted


def txt2img(
    params: Txt2ImgParams | None = None,
    *,
    pipe: Any = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    save: bool = True,
    folder: str | Path | None = None,
    capture_steps: tuple[int, ...] = (),
    preview_every: int = 5,
    batches: Sequence[int] | None = None,
    **overrides: Any,
) -> Txt2ImgResult:
    """Generate ``batch_count`` x ``batch_size`` images from ``params`` and save each as a PNG.

    Image ``k`` uses seed ``seed + k`` (the WebUI's rule), so any single image can be regenerated.
    ``capture_steps`` keeps the VAE-decoded image at those step numbers of the first batch, for teaching.
    ``batches`` renders only those batch numbers (of ``range(batch_count)``), with the seeds they have in
    the whole run: how :func:`sdnb.distributed.txt2img_distributed` shares a job between processes.
    Stop (the ``stop`` event) ends after the current step and keeps the images already finished.
    """
    p = dataclasses.replace(params or Txt2ImgParams(), **overrides).validate()
    base_seed = resolve_seed(p.seed)
    p = dataclasses.replace(p, seed=base_seed)
    if batches is not None and any(not 0 <= k < p.batch_count for k in batches):
        raise SdnbError(f"Batch numbers must be from 0 to {p.batch_count - 1} (got {list(batches)}).")
    folder = writable_folder(folder or output_dir() / "txt2img") if save else None
    pipe = pipe or load_pipeline(p.model)
    with pipeline_lock(pipe):  # one run at a time per pipeline: the sampler is swapped below
        return _render(p, pipe, folder, stop, progress or NullProgress(), capture_steps, preview_every,
                       range(p.batch_count) if batches is None else batches)


def _render(
    p: Txt2ImgParams,
    pipe: Any,
    folder: Path | None,
    stop: threading.Event | None,
    progress: Progress,
    capture_steps: tuple[int, ...],
    preview_every: int,
    batches: Sequence[int],
) -> Txt2ImgResult:
    base_seed = p.seed
    set_sampler(pipe, p.sampler)
    family = getattr(pipe, "sdnb_family", "sd15")
    embeds = encode_prompt(pipe, p.prompt, p.negative_prompt).repeat(p.batch_size)
    scale = pipe.vae_scale_factor
    shape = (pipe.unet.config.in_channels, p.height // scale, p.width // scale)
    result = Txt2ImgResult(params=p)
    total = p.steps * len(batches)
    progress.start(total, "Steps")
    for nth, batch in enumerate(batches):
        seeds = [base_seed + batch * p.batch_size + i for i in range(p.batch_size)]

        def on_step(i: int, latents: torch.Tensor, batch: int = batch, nth: int = nth) -> None:
            done = nth * p.steps + i + 1
            preview = latents_to_rgb(latents, family) if preview_every and (i + 1) % preview_every == 0 else None
            progress.update(done, preview)
            if batch == 0 and i + 1 in capture_steps:
                result.steps_seen[i + 1] = decode_latents(pipe, latents[:1])

        latents, generators = seeded_noise(seeds, shape)
        images, nsfw, interrupted = run_pipeline(
            pipe, embeds=embeds, latents=latents, steps=p.steps, cfg_scale=p.cfg_scale, stop=stop,
            on_step=on_step, generators=generators,
        )
        if interrupted:  # a half-denoised batch is not what its parameters say: keep only finished ones
            result.interrupted = True
            break
        for pos, (seed, image, flagged) in enumerate(zip(seeds, images, nsfw, strict=True)):
            if flagged:
                result.flagged.append(len(result.images))
            text = infotext_for(p, seed, pos)
            result.images.append(image)
            result.seeds.append(seed)
            result.infotexts.append(text)
            if folder is not None:
                result.paths.append(save_image(image, folder, infotext=text, stem=str(seed)))
    done = len(result.images)
    flagged = f"; the safety checker blacked out image(s) {result.flagged}" if result.flagged else ""
    progress.finish(f"{'Stopped' if result.interrupted else 'Done'}: {done} image(s), seeds {result.seeds}{flagged}")
    return result


def decode_latents(pipe: Any, latents: torch.Tensor) -> Image.Image:
    """Decode (partly denoised) latents with the VAE: what the image looks like at that step."""
    vae = pipe.vae
    with torch.no_grad():
        scaled = latents.to(vae.dtype) / vae.config.scaling_factor
        image = vae.decode(scaled, return_dict=False)[0]
    return pipe.image_processor.postprocess(image.float(), output_type="pil")[0]


def regenerate(png: str | Path, **overrides: Any) -> Txt2ImgResult:
    """Read the ``parameters`` of any PNG (sdnb's or the WebUI's) and make the same image again.

    An image that was part of a batch is remade inside the same batch (``Batch size``/``Batch pos``),
    because batched arithmetic can differ from a single image's in the last bit.
    """
    text = read_infotext(png)
    if not text:
        raise SdnbError(
            f"{png} has no generation parameters (no 'parameters' text chunk).",
            hint="Use a PNG saved by sdnb or by the AUTOMATIC1111 WebUI with metadata enabled.",
        )
    params = Txt2ImgParams.from_infotext(text)
    pos = int(parse_infotext(text).settings.get("Batch pos", 0))
    if not 0 <= pos < params.batch_size or params.seed < pos:
        raise SdnbError(f"{png} has inconsistent batch parameters (Batch pos {pos}).")
    result = txt2img(dataclasses.replace(params, seed=params.seed - pos, batch_count=1), **overrides)
    if result.interrupted or len(result.images) <= pos:
        return result
    keep = slice(pos, pos + 1)
    result.images, result.seeds, result.infotexts = result.images[keep], result.seeds[keep], result.infotexts[keep]
    result.paths = result.paths[keep]
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m sdnb.generate --prompt "a cat" --batch-count 4``; ``--help`` lists all flags.

    Under ``accelerate launch --num_processes N`` the batches are shared between N processes (GPUs).
    """
    from .cli import params_parser, parse_params, run_cli
    from .distributed import launched, txt2img_distributed
    from .progress import ConsoleProgress

    parser = params_parser(Txt2ImgParams, "python -m sdnb.generate", "Generate images from a prompt; each is saved as a "
                     "PNG with its parameters. Under `accelerate launch --num_processes N` the batches are shared "
                     "between N processes (GPUs).")
    _, params = parse_params(parser, Txt2ImgParams, argv)
    run = txt2img_distributed if launched() else txt2img
    result, code = run_cli(lambda: run(params, progress=ConsoleProgress()), "the images finished so far are saved.")
    if code is not None:
        return code
    for seed, path in zip(result.seeds, result.paths, strict=True):
        print(f"seed {seed}: {path}")
    return 1 if result.interrupted else 0


if __name__ == "__main__":
    raise SystemExit(main())
