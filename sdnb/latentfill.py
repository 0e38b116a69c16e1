"""The WebUI's "latent noise" and "latent nothing" masked content, for every inpainting pipeline.

The WebUI encodes the picture, then replaces the latents under the mask (the hole) by the image's seeded noise
("latent noise") or by zeros ("latent nothing") before the denoising strength's noise is added. diffusers'
inpainting pipelines (SD, SDXL, and their ControlNet versions) encode the picture inside ``prepare_latents`` and
take ready latents there instead (a 4-channel ``image``). :func:`replacing_hole_latents` wraps that method of one
pipeline for a run: it encodes the picture exactly as the pipeline would (same VAE call, same per-image
generators, so the noise drawn after it is unchanged), replaces the hole, and hands the latents on. Everything
else, the masked picture a 9-channel UNet reads included, still comes from the pixels.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from PIL import Image

from .seeds import initial_noise

__all__ = ["LATENT_CONTENT", "hole_latents", "replacing_hole_latents"]

#: The masked-content choices made in latent space.
LATENT_CONTENT: tuple[str, ...] = ("latent noise", "latent nothing")


def hole_latents(latents: torch.Tensor, mask: Image.Image, seeds: list[int], content: str) -> torch.Tensor:
    """``latents`` (one per seed) with the hole replaced: by each image's seeded noise, or by zeros. The hole is
    the mask shrunk to the latents' size and rounded, as the WebUI makes its latent mask."""
    if content not in LATENT_CONTENT:
        raise ValueError(f"unknown latent masked content {content!r}")
    shape = tuple(latents.shape[1:])
    small = mask.convert("L").resize((shape[2], shape[1]), Image.BICUBIC)
    hole = torch.from_numpy(np.round(np.asarray(small, dtype=np.float32) / 255.0)).to(latents)
    kept = latents * (1 - hole)
    if content == "latent noise":
        return kept + initial_noise(seeds, shape).to(latents) * hole
    return kept


@contextmanager
def replacing_hole_latents(pipe: Any, mask: Image.Image, content: str) -> Iterator[None]:
    """For the calls made inside: ``pipe`` starts its inpainting from the picture's latents with the hole
    replaced (see :func:`hole_latents`); the seeds are read from the per-image generators the engine passes."""
    original = pipe.prepare_latents
    signature = inspect.signature(original)

    def prepare_latents(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        values = bound.arguments
        image = values.get("image")
        encodes = values.get("return_image_latents") or (values.get("latents") is None
                                                         and not values.get("is_strength_max"))
        if image is not None and image.shape[1] != 4 and encodes:
            generators = values["generator"]
            generators = generators if isinstance(generators, list) else [generators]
            pixels = image.to(device=values["device"], dtype=values["dtype"])
            with torch.no_grad():
                latents = pipe._encode_vae_image(image=pixels, generator=generators)
            seeds = [g.initial_seed() for g in generators]
            values["image"] = hole_latents(latents, mask, seeds, content)
        return original(*bound.args, **bound.kwargs)

    pipe.prepare_latents = prepare_latents
    try:
        yield
    finally:
        del pipe.prepare_latents  # the class's own method again
