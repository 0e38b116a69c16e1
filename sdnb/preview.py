"""Cheap live previews: latents to RGB with one small matrix, no VAE call (as the WebUI's "Approx NN")."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["latents_to_rgb"]

# Linear latent->RGB factors fitted for SD 1.x/2.x and SDXL VAEs (the widely used "latent_rgb_factors").
_FACTORS = {
    "sd": (
        [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]],
        [0.0, 0.0, 0.0],
    ),
    "sdxl": (
        [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]],
        [0.1084, -0.0175, -0.0011],
    ),
}


def latents_to_rgb(latents: torch.Tensor, family: str = "sd15", scale: int = 8) -> Image.Image:
    """A rough RGB picture of the first latent in a batch, upscaled ``scale`` times (nearest)."""
    weights, bias = _FACTORS["sdxl" if family == "sdxl" else "sd"]
    lat = latents[0].detach().float().cpu()  # (4, h, w)
    rgb = torch.einsum("chw,cr->hwr", lat, torch.tensor(weights)) + torch.tensor(bias)
    arr = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    img = Image.fromarray(np.ascontiguousarray(arr), "RGB")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)
