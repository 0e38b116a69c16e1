"""WebUI sampler names mapped to diffusers schedulers, so "DPM++ 2M Karras" means the same everywhere."""

from __future__ import annotations

from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
)

from .errors import SdnbError

__all__ = ["SAMPLERS", "WALK_SAMPLERS", "set_sampler", "sampler_from_infotext"]

#: WebUI name -> (diffusers scheduler class, config overrides). Order is the form's order.
SAMPLERS: dict[str, tuple[type, dict[str, Any]]] = {
    "DPM++ 2M Karras": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "DPM++ 2M": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False}),
    "Euler a": (EulerAncestralDiscreteScheduler, {}),
    "Euler": (EulerDiscreteScheduler, {}),
    "DDIM": (DDIMScheduler, {}),
    "UniPC": (UniPCMultistepScheduler, {}),
    "Heun": (HeunDiscreteScheduler, {}),
    "LMS": (LMSDiscreteScheduler, {}),
}


#: Samplers whose result depends only on the starting noise. Ancestral and SDE samplers add fresh
#: noise at every step, so neighbouring frames would flicker.
WALK_SAMPLERS: tuple[str, ...] = tuple(
    name for name, (cls, _) in SAMPLERS.items() if not any(w in cls.__name__ for w in ("Ancestral", "SDE"))
)


def set_sampler(pipe: Any, name: str) -> None:
    """Swap the pipeline's scheduler for the WebUI sampler ``name``, keeping the model's noise schedule."""
    if name not in SAMPLERS:
        raise SdnbError(f"Unknown sampler {name!r}.", hint=f"Choose one of: {', '.join(SAMPLERS)}.")
    cls, overrides = SAMPLERS[name]
    config = dict(pipe.scheduler.config)
    if "use_karras_sigmas" not in overrides and cls is not DPMSolverMultistepScheduler:
        config.pop("use_karras_sigmas", None)
    pipe.scheduler = cls.from_config(config, **overrides)


def sampler_from_infotext(settings: dict[str, str]) -> str:
    """The sampler named by WebUI infotext settings, folding the newer ``Schedule type: Karras`` key in."""
    name = settings.get("Sampler", "").strip()
    schedule = settings.get("Schedule type", "").strip()
    if schedule.lower() == "karras" and not name.endswith("Karras"):
        name = f"{name} Karras"
    if name not in SAMPLERS:
        raise SdnbError(
            f"The image was made with sampler {name!r}, which sdnb does not offer.",
            hint=f"Pick the closest of: {', '.join(SAMPLERS)}.",
        )
    return name
