"""Pictures for the lessons: the pipeline diagram, tokens, guidance, latents and slerp norms.

Each function returns a matplotlib Figure (or a PIL image), so a notebook cell is one call. Each first calls
:func:`sdnb.fonts.use_in_matplotlib`, so Chinese, Japanese and Korean text in a figure draws as written.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from PIL import Image

from .fonts import use_in_matplotlib

__all__ = ["pipeline_diagram", "token_table", "guidance_arrows", "latent_channels", "slerp_norms", "strength_schedule",
           "resize_modes", "estimate_depth", "depth_figure"]


def pipeline_diagram() -> Figure:
    """Prompt → CLIP text encoder → UNet denoising loop (with CFG) → VAE decoder → image."""
    use_in_matplotlib()
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.set_xlim(0, 11.5)
    ax.set_ylim(0, 3.4)
    ax.axis("off")
    w, gap, y, h = 1.8, 0.5, 0.9, 1.4
    boxes = [
        ("Prompt\n\"a lighthouse\nat dawn\"", "#eeeeee"),
        ("CLIP text encoder\nwords → tokens\n→ 77 vectors", "#cfe2ff"),
        ("UNet + sampler\nremove predicted noise,\nguided by text (CFG)", "#ffe5b4"),
        ("VAE decoder\n64×64×4 latents\n→ 512×512 pixels", "#d1f2d1"),
        ("Image", "#eeeeee"),
    ]
    xs = [0.2 + i * (w + gap) for i in range(len(boxes))]
    for x, (text, color) in zip(xs, boxes, strict=True):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=color, ec="#333333"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)
    for x in xs[:-1]:
        ax.add_patch(FancyArrowPatch((x + w + 0.06, y + h / 2), (x + w + gap - 0.06, y + h / 2), arrowstyle="-|>",
                                     mutation_scale=15))
    unet = xs[2]
    ax.add_patch(FancyArrowPatch((unet + w * 0.8, y + h + 0.05), (unet + w * 0.2, y + h + 0.05),
                                 connectionstyle="arc3,rad=0.8", arrowstyle="-|>", mutation_scale=12))
    ax.text(unet + w / 2, y + h + 0.75, "repeat for each step", ha="center", fontsize=8)
    ax.annotate("random noise\n(from the seed)", xy=(unet + w / 2, y), xytext=(unet + w / 2, 0.05), ha="center",
                fontsize=8, arrowprops={"arrowstyle": "-|>"})
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
    return fig


def token_table(pipe: Any, prompt: str, limit: int = 16) -> Figure:
    """How CLIP sees a prompt: its tokens, and the first dimensions of the vector each becomes."""
    tok = pipe.tokenizer
    ids = tok(prompt, truncation=True, max_length=tok.model_max_length).input_ids[:limit]
    words = [_readable_token(tok, i) for i in ids]
    with torch.no_grad():
        vectors = pipe.text_encoder(torch.tensor([ids], device=pipe.text_encoder.device))[0][0]
    vec = vectors[:, :48].float().cpu().numpy()
    use_in_matplotlib()
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(ids) + 1))
    ax.imshow(vec, aspect="auto", cmap="coolwarm")
    ax.set_yticks(range(len(ids)), [f"{w}  (id {i})" for w, i in zip(words, ids, strict=True)], fontsize=8)
    ax.set_xlabel(f"first {vec.shape[1]} of {vectors.shape[1]} numbers per token")
    ax.set_title(f"{len(ids)} tokens → {len(ids)} vectors (padded to {tok.model_max_length})")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
    return fig


def _readable_token(tok: Any, token_id: int) -> str:
    """A token as text: a word piece in quotes, a special token by name, and a piece of a non-English
    character (CLIP's vocabulary is English, so such text is split into bytes) as "byte piece"."""
    if token_id in tok.all_special_ids:
        return tok.convert_ids_to_tokens(token_id)
    text = tok.decode([token_id])
    if "\ufffd" in text or not text.strip():
        return "(byte piece of a non-English character)"
    return repr(text.strip())


def guidance_arrows(scales: tuple[float, ...] = (3.0, 7.0)) -> Figure:
    """Classifier-free guidance as arrows: guided = uncond + scale × (cond − uncond)."""
    uncond, cond = np.array([1.0, 0.4]), np.array([1.6, 1.2])
    use_in_matplotlib()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.annotate("", xy=uncond, xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": "gray"})
    ax.text(*uncond, "  without prompt", color="gray", va="center")
    ax.annotate("", xy=cond, xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": "tab:blue"})
    ax.text(*cond, "  with prompt (= CFG 1)", color="tab:blue", va="center")
    for s in scales:
        guided = uncond + s * (cond - uncond)
        ax.annotate("", xy=guided, xytext=uncond, arrowprops={"arrowstyle": "-|>", "color": "tab:orange", "alpha": 0.7})
        ax.text(*guided, f"  CFG {s:g}", color="tab:orange", va="center")
    ax.set_xlim(-0.2, 7.5)
    ax.set_ylim(-0.2, 6.5)
    ax.set_title("Guidance: go past the prompt's prediction,\nscale × (with − without)", fontsize=10)
    ax.set_aspect("equal")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
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
    use_in_matplotlib()
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
    plt.close(fig)  # shown once, as the cell's result
    return fig


def slerp_norms(shape: tuple[int, ...] = (4, 64, 64), seeds: tuple[int, int] = (1, 2), points: int = 41) -> Figure:
    """Why noise is interpolated spherically: a straight mix of two noises loses norm in the middle."""
    from .seeds import initial_noise, slerp

    a, b = initial_noise(list(seeds), shape)
    ts = np.linspace(0, 1, points)
    lin = [float(torch.lerp(a, b, float(t)).norm()) for t in ts]
    sph = [float(slerp(a, b, float(t)).norm()) for t in ts]
    use_in_matplotlib()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(ts, lin, label="linear mix (lerp)")
    ax.plot(ts, sph, label="spherical (slerp)")
    ax.axhline(float(a.norm()), color="gray", ls=":", label="norm of one noise sample")
    ax.set_xlabel("t (0 = seed A, 1 = seed B)")
    ax.set_ylabel("norm of the noise")
    ax.set_title(f"lerp sags to {min(lin) / lin[0]:.0%} in the middle; slerp stays put")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
    return fig


def strength_schedule(pipe: Any, steps: int = 20, strengths: tuple[float, ...] = (0.3, 0.6, 0.9),
                      sampler: str = "DPM++ 2M", schedule_type: str = "Automatic") -> Figure:
    """What denoising strength does: the noise level at each step of ``sampler`` on ``pipe``'s model, and for
    each strength the steps img2img skips (the image is noised straight to the level where its run starts)."""
    from .samplers import make_scheduler

    scheduler = make_scheduler(dict(pipe.scheduler.config), sampler, schedule_type)
    scheduler.set_timesteps(steps)
    alphas = scheduler.alphas_cumprod.float()
    timesteps = scheduler.timesteps[:: scheduler.order][:steps].long().clamp(0, len(alphas) - 1)
    sigma = ((1 - alphas[timesteps]) / alphas[timesteps]).sqrt().numpy()
    use_in_matplotlib()
    fig, axes = plt.subplots(1, len(strengths), figsize=(3.6 * len(strengths), 3.2), sharey=True)
    x = np.arange(1, len(sigma) + 1)
    for ax, strength in zip(np.atleast_1d(axes), strengths, strict=True):
        run = min(int(steps * strength), steps)
        skip = steps - run
        ax.bar(x[:skip], sigma[:skip], color="#ced4da", label=f"skipped ({skip})")
        ax.bar(x[skip:], sigma[skip:], color="#1c7ed6", label=f"run ({run})")
        ax.set_yscale("log")
        ax.set_title(f"strength {strength:g}: {run} of {steps} steps", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("noise level (σ, log scale)")
    fig.suptitle(f"{sampler}: img2img adds noise up to the first step it runs, then denoises from there", fontsize=10)
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
    return fig


def resize_modes(image: Image.Image, width: int, height: int) -> Image.Image:
    """The WebUI's three resize modes side by side: ``image`` fitted to ``width`` x ``height`` by each."""
    from .images import fit_image, image_grid
    from .params import RESIZE_MODES

    fitted = [fit_image(image.convert("RGB"), width, height, mode) for mode in RESIZE_MODES]
    shown = image.convert("RGB")
    shown.thumbnail((max(width, height), max(width, height)))
    return image_grid([shown, *fitted], col_labels=[f"source {image.width}x{image.height}", *RESIZE_MODES])


def estimate_depth(pipe: Any, image: Image.Image) -> np.ndarray:
    """The depth map a depth-to-image pipeline's own estimator (DPT) sees in ``image``: 0 = far, 1 = near."""
    pixels = pipe.feature_extractor(images=image.convert("RGB"), return_tensors="pt").pixel_values
    estimator = pipe.depth_estimator
    with torch.no_grad():
        depth = estimator(pixels.to(estimator.device, estimator.dtype)).predicted_depth
    depth = torch.nn.functional.interpolate(depth[:, None].float(), size=image.size[::-1], mode="bicubic")[0, 0]
    low, high = float(depth.min()), float(depth.max())
    return ((depth - low) / (high - low if high > low else 1.0)).cpu().numpy()


def depth_figure(image: Image.Image, depth: np.ndarray | Image.Image, title: str = "depth map") -> Figure:
    """An image beside its depth map, drawn with a colour map and a colour bar (near = bright)."""
    values = np.asarray(depth.convert("L"), dtype=np.float32) / 255.0 if isinstance(depth, Image.Image) else depth
    use_in_matplotlib()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    axes[0].imshow(image)
    axes[0].set_title(f"image {image.width}×{image.height}", fontsize=9)
    shown = axes[1].imshow(values, cmap="inferno", vmin=0, vmax=1)
    axes[1].set_title(title, fontsize=9)
    fig.colorbar(shown, ax=axes[1], shrink=0.75, pad=0.04, label="far (0) → near (1)")
    for a in axes:
        a.axis("off")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
    return fig


def controlnet_diagram() -> Figure:
    """ControlNet: a trainable copy of the UNet's encoder reads the control map; its outputs join the locked
    UNet through zero convolutions, so at the start of training it adds exactly nothing."""
    use_in_matplotlib()
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.4)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, color: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=color, ec="#333333"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)

    def arrow(a: tuple[float, float], b: tuple[float, float], text: str = "") -> None:
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14))
        if text:
            ax.text((a[0] + b[0]) / 2 + 0.08, (a[1] + b[1]) / 2, text, fontsize=8, va="center")

    box(0.2, 2.9, 1.8, 1.0, "noisy latents\n+ prompt", "#eeeeee")
    box(2.6, 2.9, 2.4, 1.0, "UNet encoder\n(locked: weights frozen)", "#cfe2ff")
    box(5.6, 2.9, 2.4, 1.0, "UNet decoder\n(locked)", "#cfe2ff")
    box(8.6, 2.9, 2.0, 1.0, "predicted noise", "#eeeeee")
    box(0.2, 0.4, 1.8, 1.0, "control map\n(edges, depth, pose)", "#eeeeee")
    box(2.6, 0.4, 2.4, 1.0, "trainable copy\nof the encoder", "#ffe5b4")
    box(5.75, 1.55, 2.1, 0.7, "zero convolution\n(weights start at 0)", "#d1f2d1")
    arrow((2.05, 3.4), (2.55, 3.4))
    arrow((5.05, 3.4), (5.55, 3.4))
    arrow((8.05, 3.4), (8.55, 3.4))
    arrow((2.05, 0.9), (2.55, 0.9))
    arrow((1.1, 2.85), (2.9, 1.45), "latents too")
    arrow((5.05, 0.9), (6.2, 1.5))
    arrow((6.8, 2.3), (6.8, 2.85), "+ weight × output")
    ax.text(5.5, 0.15, "At first the zero convolutions output 0, so the model is unharmed; training grows them only as "
            "far as the control helps.", ha="center", fontsize=8.5)
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
    return fig


def control_grid(photo: Image.Image, pose: Image.Image | None = None, *, low: int = 100, high: int = 200) -> Image.Image:
    """What each kind of ControlNet sees in one photo: the photo, its canny edges, depth map, line art and
    scribble, and (when given) a pose skeleton."""
    from .control import canny, depth_map, lineart, scribble
    from .images import image_grid

    rgb = photo.convert("RGB")
    lines = lineart(rgb)
    images = [rgb, canny(rgb, low, high), depth_map(rgb), lines, scribble(lines)]
    labels = ["photo", f"canny {low}/{high}", "depth (DPT)", "line art", "scribble (bold strokes)"]
    if pose is not None:
        images.append(pose.convert("RGB").resize(rgb.size))
        labels.append("pose (OpenPose)")
    return image_grid(images, col_labels=labels)


__all__ += ["controlnet_diagram", "control_grid"]
