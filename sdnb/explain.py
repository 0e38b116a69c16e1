"""Pictures for the lessons: the pipeline diagram, tokens, guidance, latents and slerp norms.

Each function returns a matplotlib Figure (or a PIL image), so a notebook cell is one call.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from PIL import Image

__all__ = ["pipeline_diagram", "token_table", "guidance_arrows", "latent_channels", "slerp_norms"]


def pipeline_diagram() -> Figure:
    """Prompt → CLIP text encoder → UNet denoising loop (with CFG) → VAE decoder → image."""
    fig, ax = plt.subplots(figsize=(11, 2.8))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 3)
    ax.axis("off")
    boxes = [
        (0.1, "Prompt\n\"a lighthouse\nat dawn\"", "#eeeeee"),
        (2.2, "CLIP text encoder\nwords → 77 tokens\n→ 77 vectors", "#cfe2ff"),
        (4.6, "UNet, N steps\npredicts the noise,\nguided by the text (CFG)", "#ffe5b4"),
        (7.0, "VAE decoder\n64×64×4 latents\n→ 512×512 pixels", "#d1f2d1"),
        (9.3, "Image", "#eeeeee"),
    ]
    for x, text, color in boxes:
        ax.add_patch(FancyBboxPatch((x, 0.8), 1.6 if x > 9 else 2.0, 1.5, boxstyle="round,pad=0.05", fc=color,
                                    ec="#333333"))
        ax.text(x + (0.8 if x > 9 else 1.0), 1.55, text, ha="center", va="center", fontsize=9)
    for x0, x1 in ((1.75, 2.2), (4.25, 4.6), (6.65, 7.0), (9.05, 9.3)):
        ax.add_patch(FancyArrowPatch((x0, 1.55), (x1, 1.55), arrowstyle="-|>", mutation_scale=15))
    ax.annotate("random noise\n(from the seed)", xy=(5.6, 0.8), xytext=(5.6, 0.15), ha="center", fontsize=8,
                arrowprops={"arrowstyle": "-|>"})
    ax.annotate("", xy=(5.0, 2.35), xytext=(6.2, 2.35), arrowprops={"arrowstyle": "<-", "connectionstyle": "arc3,rad=-0.6"})
    ax.text(5.6, 2.85, "repeat N times", ha="center", fontsize=8)
    fig.tight_layout()
    return fig


def token_table(pipe: Any, prompt: str, limit: int = 16) -> Figure:
    """How CLIP sees a prompt: its tokens, and the first dimensions of the vector each becomes."""
    tok = pipe.tokenizer
    ids = tok(prompt, truncation=True, max_length=tok.model_max_length).input_ids[:limit]
    words = [tok.convert_ids_to_tokens(i).replace("</w>", "") for i in ids]
    with torch.no_grad():
        vectors = pipe.text_encoder(torch.tensor([ids], device=pipe.text_encoder.device))[0][0]
    vec = vectors[:, :48].float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(ids) + 1))
    ax.imshow(vec, aspect="auto", cmap="coolwarm")
    ax.set_yticks(range(len(ids)), [f"{w!r}  (id {i})" for w, i in zip(words, ids)], fontsize=8)
    ax.set_xlabel(f"first {vec.shape[1]} of {vectors.shape[1]} numbers per token")
    ax.set_title(f"{len(ids)} tokens → {len(ids)} vectors (padded to {tok.model_max_length})")
    fig.tight_layout()
    return fig


def guidance_arrows(scales: tuple[float, ...] = (1.0, 3.0, 7.0)) -> Figure:
    """Classifier-free guidance as arrows: guided = uncond + scale × (cond − uncond)."""
    uncond, cond = np.array([1.0, 0.4]), np.array([1.6, 1.2])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.annotate("", xy=uncond, xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": "gray"})
    ax.text(*uncond, "  without prompt", color="gray", va="center")
    ax.annotate("", xy=cond, xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": "tab:blue"})
    ax.text(*cond, "  with prompt", color="tab:blue", va="center")
    for s in scales:
        guided = uncond + s * (cond - uncond)
        ax.annotate("", xy=guided, xytext=uncond, arrowprops={"arrowstyle": "-|>", "color": "tab:orange", "alpha": 0.7})
        ax.text(*guided, f"  CFG {s:g}", color="tab:orange", va="center")
    ax.set_xlim(-0.2, 6.0)
    ax.set_ylim(-0.2, 6.5)
    ax.set_title("Each step predicts noise twice; CFG pushes past the prompt's prediction")
    ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def latent_channels(pipe: Any, image: Image.Image) -> Figure:
    """The VAE's view: an image encoded to 4 latent channels (8x smaller) and decoded back."""
    processor, vae = pipe.image_processor, pipe.vae
    pixels = processor.preprocess(image).to(vae.device, vae.dtype)
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
        decoded = vae.decode(latents, return_dict=False)[0]
    back = processor.postprocess(decoded.float(), output_type="pil")[0]
    lat = latents[0].float().cpu().numpy()
    fig, axes = plt.subplots(1, 2 + lat.shape[0], figsize=(2.2 * (2 + lat.shape[0]), 2.6))
    axes[0].imshow(image)
    axes[0].set_title(f"image {image.width}×{image.height}", fontsize=8)
    for c in range(lat.shape[0]):
        axes[c + 1].imshow(lat[c], cmap="gray")
        axes[c + 1].set_title(f"latent ch {c} ({lat.shape[2]}×{lat.shape[1]})", fontsize=8)
    axes[-1].imshow(back)
    axes[-1].set_title("decoded again", fontsize=8)
    for a in axes:
        a.axis("off")
    fig.tight_layout()
    return fig


def slerp_norms(shape: tuple[int, ...] = (4, 64, 64), seeds: tuple[int, int] = (1, 2), points: int = 41) -> Figure:
    """Why noise is interpolated spherically: a straight mix of two noises loses norm in the middle."""
    from .seeds import initial_noise, slerp

    a, b = initial_noise(list(seeds), shape)
    ts = np.linspace(0, 1, points)
    lin = [float(torch.lerp(a, b, float(t)).norm()) for t in ts]
    sph = [float(slerp(a, b, float(t)).norm()) for t in ts]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(ts, lin, label="linear mix (lerp)")
    ax.plot(ts, sph, label="spherical (slerp)")
    ax.axhline(float(a.norm()), color="gray", ls=":", label="norm of one noise sample")
    ax.set_xlabel("t (0 = seed A, 1 = seed B)")
    ax.set_ylabel("norm of the noise")
    ax.set_title(f"lerp sags to {min(lin) / lin[0]:.0%} in the middle; slerp stays put")
    ax.legend()
    fig.tight_layout()
    return fig
