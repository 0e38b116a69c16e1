"""Seeds, initial noise and spherical interpolation.

Noise is always drawn on the CPU from a per-image generator, so the same seed gives the same
starting latents on CPU, CUDA and MPS, and image ``i`` of a batch does not depend on the batch size.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import SdnbError

if TYPE_CHECKING:  # torch loads only when noise is made, so forms and --help stay quick
    import torch

__all__ = ["MAX_SEED", "resolve_seed", "check_seed", "initial_noise", "seeded_noise", "slerp", "webui_slerp"]

MAX_SEED = 2**32 - 1


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is -1 (random) or in 0..2**32-1, else raise a clear error."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SdnbError(f"Seed must be a whole number, got {seed!r}.")
    if seed != -1 and not 0 <= seed <= MAX_SEED:
        raise SdnbError(f"Seed {seed} is outside 0..{MAX_SEED}.", hint="Use -1 for a random seed.")
    return seed


def resolve_seed(seed: int, images: int = 1) -> int:
    """-1 becomes a fresh random seed, low enough that ``images`` images (seed + k) all stay valid seeds;
    any other valid seed is returned unchanged."""
    return secrets.randbelow(MAX_SEED + 2 - max(1, images)) if check_seed(seed) == -1 else seed


def initial_noise(seeds: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """Unit Gaussian latents, one ``shape`` tensor per seed, stacked on the batch axis (float32, CPU)."""
    import torch

    return torch.stack(
        [torch.randn(tuple(shape), generator=torch.Generator("cpu").manual_seed(int(s))) for s in seeds]
    )


def seeded_noise(
    seeds: Sequence[int],
    shape: Sequence[int],
    variation_seeds: Sequence[int] = (),
    variation_strength: float = 0.0,
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Initial latents as :func:`initial_noise`, plus each image's generator advanced past that draw.

    Passing the generators to the pipeline makes the sampler's own noise (ancestral samplers such as
    "Euler a") come from the same per-image stream, so every sampler is reproducible image by image.
    With a ``variation_strength`` above 0, each image's noise is mixed with the noise of its variation seed
    exactly as the WebUI mixes them (:func:`webui_slerp`): its "Variation seed" / "Variation seed strength".
    """
    import torch

    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    noise = [torch.randn(tuple(shape), generator=g) for g in gens]
    if variation_strength:
        sub = initial_noise(variation_seeds, shape)
        noise = [webui_slerp(variation_strength, n, s) for n, s in zip(noise, sub, strict=True)]
    return torch.stack(noise), gens


def webui_slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """The WebUI's variation-seed mix of two noise tensors, reproduced exactly (``modules/rng.py``'s slerp).

    It normalises along dimension 1 (the rows of each channel) rather than over the whole tensor, and its
    near-parallel fallback weights the two the other way round; both are kept, so WebUI images remake exactly.
    :func:`slerp` is the textbook version the walks use.
    """
    import torch

    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, dot_threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation between two noise tensors: keeps their norm where a plain mix would sag.

    ``t=0`` returns ``a`` and ``t=1`` returns ``b`` exactly. Nearly parallel inputs fall back to lerp.
    """
    import torch

    if a.shape != b.shape:
        raise SdnbError(f"Cannot interpolate tensors of shapes {tuple(a.shape)} and {tuple(b.shape)}.")
    if t <= 0:
        return a.clone()
    if t >= 1:
        return b.clone()
    a64, b64 = a.double(), b.double()
    dot = (a64 * b64).sum() / (a64.norm() * b64.norm())
    if dot.abs() > dot_threshold:
        out = (1 - t) * a64 + t * b64
    else:
        theta = torch.arccos(dot.clamp(-1, 1))
        out = (torch.sin((1 - t) * theta) * a64 + torch.sin(t * theta) * b64) / torch.sin(theta)
    return out.to(a.dtype)
