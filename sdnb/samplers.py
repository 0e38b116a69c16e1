"""WebUI samplers and schedule types, mapped to diffusers schedulers, so "DPM++ 2M" + "Karras" means the same here.

Since WebUI 1.9 a sampler ("DPM++ 2M") and a schedule type ("Karras") are two settings; the old combined names
("DPM++ 2M Karras") are still read. Every sampler and schedule listed here runs as the WebUI runs it (the
k-diffusion samplers' diffusers ports, the same sigmas). WebUI samplers and schedules that diffusers cannot run
faithfully are not offered; asking for one is a clear error that names the closest choices. "Automatic" is
the sampler's own default schedule, as in the WebUI (Karras for DPM++ 2M, Exponential for the SDE samplers,
Uniform for Euler). Nothing here imports diffusers until a scheduler is built, so forms and ``--help`` stay quick.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from .errors import SdnbError

__all__ = [
    "SAMPLERS",
    "SCHEDULES",
    "WALK_SAMPLERS",
    "Sampler",
    "schedules_for",
    "resolve_schedule",
    "check_sampler",
    "split_sampler_name",
    "make_scheduler",
    "set_sampler",
    "sampler_from_infotext",
]

_DPM = "DPMSolverMultistepScheduler"


@dataclass(frozen=True)
class Sampler:
    """One WebUI sampler: the diffusers scheduler class that runs it, its settings and its automatic schedule.

    ``stochastic`` samplers add fresh noise at every step (ancestral, SDE, LCM): fine for images, but they
    make neighbouring frames of a walk flicker. ``sigmas``: it takes Karras/Exponential/Beta sigma schedules;
    ``own_timesteps``: it keeps the model's own timestep spacing and has no schedule types (DDIM, PLMS, ...).
    """

    cls: str
    config: dict[str, Any] = field(default_factory=dict)
    automatic: str = "Uniform"
    stochastic: bool = False
    sigmas: bool = True
    own_timesteps: bool = False


#: WebUI name -> how diffusers runs it. Order is the form's order (the WebUI's, less what cannot run).
SAMPLERS: dict[str, Sampler] = {
    "DPM++ 2M": Sampler(_DPM, {"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint"},
                        automatic="Karras"),
    "DPM++ 2M SDE": Sampler(_DPM, {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "midpoint"},
                            automatic="Exponential", stochastic=True),
    "DPM++ 2M SDE Heun": Sampler(_DPM, {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "heun"},
                                 automatic="Exponential", stochastic=True),
    "DPM++ 3M SDE": Sampler(_DPM, {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}, automatic="Exponential",
                            stochastic=True),
    "Euler a": Sampler("EulerAncestralDiscreteScheduler", stochastic=True, sigmas=False),
    "Euler": Sampler("EulerDiscreteScheduler"),
    "LMS": Sampler("LMSDiscreteScheduler"),
    "Heun": Sampler("HeunDiscreteScheduler"),
    "DPM2": Sampler("KDPM2DiscreteScheduler", automatic="Karras"),
    "DPM2 a": Sampler("KDPM2AncestralDiscreteScheduler", automatic="Karras", stochastic=True),
    "DDIM": Sampler("DDIMScheduler", automatic="Automatic", sigmas=False, own_timesteps=True),
    "PLMS": Sampler("PNDMScheduler", {"skip_prk_steps": True}, automatic="Automatic", sigmas=False,
                    own_timesteps=True),
    "UniPC": Sampler("UniPCMultistepScheduler", automatic="Automatic", sigmas=False, own_timesteps=True),
    "LCM": Sampler("LCMScheduler", automatic="Automatic", stochastic=True, sigmas=False, own_timesteps=True),
}

#: WebUI schedule type -> diffusers scheduler settings ("Automatic": the sampler's own default).
SCHEDULES: dict[str, dict[str, Any]] = {
    "Automatic": {},
    "Uniform": {"timestep_spacing": "linspace"},  # k-diffusion's get_sigmas(n): timesteps evenly from 999 to 0
    "Karras": {"use_karras_sigmas": True},
    "Exponential": {"use_exponential_sigmas": True},
    "SGM Uniform": {"timestep_spacing": "trailing"},
    "Beta": {"use_beta_sigmas": True},
}

#: WebUI samplers and schedules diffusers cannot run faithfully -> the closest that it can.
_NOT_OFFERED: dict[str, str] = {
    "DPM++ SDE": "DPM++ 2M SDE (DPM++ SDE needs torchsde's Brownian-tree noise, not seeded per image here)",
    "DPM++ 2S a": "DPM++ 2M SDE or Euler a",
    "DPM fast": "DPM++ 2M",
    "DPM adaptive": "DPM++ 2M with more steps",
    "Restart": "DPM++ 2M or Heun",
    "DDIM CFG++": "DDIM",
    "Polyexponential": "Exponential",
    "KL Optimal": "Karras",
    "Align Your Steps": "Karras or Exponential",
    "Simple": "Uniform",
    "Normal": "Uniform",
    "Karras Exponential": "Karras",
}

#: Samplers whose result depends only on the starting noise: what a walk may use (no flicker between frames).
WALK_SAMPLERS: tuple[str, ...] = tuple(name for name, s in SAMPLERS.items() if not s.stochastic)

_ALL_CONFIG_KEYS = {key for s in SAMPLERS.values() for key in s.config} | {k for s in SCHEDULES.values() for k in s}
_SUFFIXES = {"Karras": "Karras", "Exponential": "Exponential"}


def schedules_for(sampler: str) -> tuple[str, ...]:
    """The schedule types ``sampler`` can run ("Automatic" always)."""
    s = SAMPLERS[sampler]
    if s.own_timesteps:
        return ("Automatic",)
    return tuple(name for name, cfg in SCHEDULES.items()
                 if s.sigmas or not any(k.startswith("use_") for k in cfg))


def resolve_schedule(sampler: str, schedule: str) -> str:
    """"Automatic" as the sampler's own schedule ("DPM++ 2M" -> "Karras"); other names unchanged."""
    return SAMPLERS[sampler].automatic if schedule == "Automatic" else schedule


def _closest(name: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(str(name), choices, n=3, cutoff=0.4)
    return ", ".join(near) if near else ", ".join(choices)


def check_sampler(sampler: Any, schedule: Any) -> list[str]:
    """Problems with a sampler and schedule type, each one sentence that names the closest choices."""
    if sampler not in SAMPLERS:
        if sampler in _NOT_OFFERED:
            return [f"Sampler {sampler!r} cannot be run faithfully here; use {_NOT_OFFERED[sampler]} instead."]
        return [f"Sampler {sampler!r} cannot be run faithfully here. Closest choices: "
                f"{_closest(sampler, list(SAMPLERS))}."]
    able = schedules_for(sampler)
    if schedule not in able:
        why = f" (closest: {_NOT_OFFERED[schedule]})" if schedule in _NOT_OFFERED else ""
        return [f"Schedule type {schedule!r} does not work with sampler {sampler}{why}; choose one of: "
                f"{', '.join(able)}."]
    return []


def split_sampler_name(name: str, schedule: str = "Automatic") -> tuple[str, str]:
    """A pre-1.9 WebUI name ("DPM++ 2M Karras") as (sampler, schedule type); other names unchanged."""
    for suffix, sched in _SUFFIXES.items():
        if name.endswith(" " + suffix) and name.removesuffix(" " + suffix) in SAMPLERS and schedule == "Automatic":
            return name.removesuffix(" " + suffix), sched
    return name, schedule


def make_scheduler(model_config: dict[str, Any], sampler: str, schedule: str = "Automatic") -> Any:
    """The diffusers scheduler for ``sampler`` with ``schedule``, on the model's own noise schedule.

    ``model_config`` is the config of the model's original scheduler (its betas, prediction type, spacing).
    """
    import diffusers

    problems = check_sampler(sampler, schedule)
    if problems:
        raise SdnbError(problems[0])
    spec = SAMPLERS[sampler]
    config = {k: v for k, v in model_config.items() if k not in _ALL_CONFIG_KEYS or k == "timestep_spacing"}
    overrides = dict(spec.config)
    if not spec.own_timesteps:
        overrides |= SCHEDULES[resolve_schedule(sampler, schedule)]
        overrides.setdefault("timestep_spacing", "linspace")  # sigma schedules ignore it; Uniform needs linspace
    return getattr(diffusers, spec.cls).from_config(config, **overrides)


def set_sampler(pipe: Any, sampler: str, schedule: str = "Automatic") -> None:
    """Swap ``pipe``'s scheduler for the WebUI sampler and schedule type, keeping the model's noise schedule."""
    original = pipe.__dict__.setdefault("sdnb_scheduler_config", dict(pipe.scheduler.config))
    pipe.scheduler = make_scheduler(original, sampler, schedule)


def sampler_from_infotext(settings: dict[str, str]) -> tuple[str, str]:
    """(sampler, schedule type) from WebUI infotext settings: ``Schedule type`` or an old combined name.

    Names are returned as written, so overrides can replace them before validation names the closest choices.
    """
    name = settings.get("Sampler", "").strip()
    schedule = settings.get("Schedule type", "").strip() or "Automatic"
    return split_sampler_name(name, schedule)
