"""Typed task parameters. One dataclass per task feeds the function defaults and the form alike.

Each field carries a :class:`Spec` in its metadata (label, bounds, choices) so the widgets module
can build the form from it and :meth:`Txt2ImgParams.validate` can check the same bounds.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import SdnbError
from .registry import MODELS, native_size, size_limits
from .samplers import SAMPLERS, sampler_from_infotext
from .seeds import MAX_SEED, check_seed

__all__ = [
    "Spec",
    "spec_of",
    "check_fields",
    "check_size",
    "base_type",
    "item_type",
    "with_native_size",
    "Txt2ImgParams",
]


@dataclass(frozen=True)
class Spec:
    """How a parameter is shown and checked: label, help text, bounds, step and choices."""

    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    multiline: bool = False


def _f(default: Any, label: str, **kw: Any) -> Any:
    return field(default=default, metadata={"spec": Spec(label, **kw)})


def spec_of(params_cls: type, name: str) -> Spec:
    """The :class:`Spec` of one field of a params dataclass."""
    for f in dataclasses.fields(params_cls):
        if f.name == name:
            return f.metadata["spec"]
    raise SdnbError(f"{params_cls.__name__} has no parameter {name!r}.")


def _check_range(errors: list[str], name: str, value: float, spec: Spec) -> None:
    if spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
        errors.append(f"{spec.label} must be between {spec.min:g} and {spec.max:g} (got {value}).")


def check_fields(params: Any, names: Sequence[str], errors: list[str]) -> None:
    """Check the named fields of a params object against their :class:`Spec`: one of the choices, or a
    number within the bounds. Problems are appended to ``errors`` (so one message can list them all)."""
    for name in names:
        value = getattr(params, name)
        spec = spec_of(type(params), name)
        if spec.choices:
            if value not in spec.choices:
                errors.append(f"{spec.label} must be one of {', '.join(spec.choices)} (got {value!r}).")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{spec.label} must be a number (got {value!r}).")
        else:
            _check_range(errors, name, value, spec)


def check_size(model: str, width: Any, height: Any, errors: list[str]) -> None:
    """Width and height must be multiples of 8 within the model's limits (not checked for an unknown model)."""
    if model not in MODELS:
        return
    lo, hi = size_limits(model)
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value % 8:
            errors.append(f"{name.title()} must be a multiple of 8 (got {value}); try {_round8(value)}.")
        elif not lo <= value <= hi:
            errors.append(f"{name.title()} must be between {lo} and {hi} for {model} (got {value}).")


def base_type(hint: Any) -> Any:
    """The type a field holds, with ``| None`` removed (``int | None`` -> ``int``); tuple types stay as they are."""
    if item_type(hint) is not None:
        return hint
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def item_type(hint: Any) -> Any:
    """``str`` for a ``tuple[str, ...]`` field, ``int`` for ``tuple[int, ...]``; ``None`` for any other type."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def with_native_size(params: Any) -> Any:
    """A copy of a params object with empty ``width``/``height`` filled in from its model's native size."""
    size = native_size(params.model) if params.model in MODELS else 512
    return dataclasses.replace(params, width=params.width or size, height=params.height or size)


@dataclass
class Txt2ImgParams:
    """Everything that decides a text-to-image result; the WebUI infotext holds the same values."""

    prompt: str = _f(
        "a watercolor painting of a lighthouse at dawn, soft light, detailed",
        "Prompt",
        help="What you want to see.",
        multiline=True,
    )
    negative_prompt: str = _f("blurry, low quality", "Negative prompt", help="What to steer away from.",
                              multiline=True)
    model: str = _f("sd15", "Model", choices=tuple(MODELS))
    sampler: str = _f("DPM++ 2M Karras", "Sampler", choices=tuple(SAMPLERS))
    steps: int = _f(20, "Steps", help="Denoising steps.", min=1, max=150, step=1)
    cfg_scale: float = _f(7.0, "CFG scale", help="How strongly to follow the prompt.", min=0.0, max=30.0,
                          step=0.5)
    width: int | None = _f(None, "Width", help="Multiple of 8; empty = the model's native size.", step=8)
    height: int | None = _f(None, "Height", help="Multiple of 8; empty = the model's native size.", step=8)
    seed: int = _f(-1, "Seed", help="-1 = random; the seed used is always shown.", min=-1, max=MAX_SEED)
    batch_size: int = _f(1, "Batch size", help="Images per pass (uses more memory).", min=1, max=16, step=1)
    batch_count: int = _f(1, "Batch count", help="Passes, one after another.", min=1, max=100, step=1)

    def resolved(self) -> Txt2ImgParams:
        """A copy with width/height filled in from the model's native size."""
        return with_native_size(self)

    def validate(self) -> Txt2ImgParams:
        """Check every value; raise one :class:`SdnbError` listing all problems. Returns the resolved copy."""
        p = self.resolved()
        errors: list[str] = []
        if not isinstance(p.prompt, str):
            errors.append("Prompt must be text.")
        check_fields(p, ("model", "sampler", "steps", "cfg_scale", "batch_size", "batch_count"), errors)
        check_size(p.model, p.width, p.height, errors)
        try:
            check_seed(p.seed)
        except SdnbError as exc:
            errors.append(exc.message)
        if errors:
            raise SdnbError("These settings need fixing: " + " ".join(errors))
        return p

    @classmethod
    def from_infotext(cls, text: str) -> Txt2ImgParams:
        """Parameters from a WebUI-style ``parameters`` text, as written into every PNG sdnb saves."""
        from .images import parse_infotext

        info = parse_infotext(text)
        s = info.settings
        try:
            width, height = (int(v) for v in s["Size"].lower().split("x"))
            return cls(
                prompt=info.prompt,
                negative_prompt=info.negative_prompt,
                model=_guess_model(s.get("Model", "sd15")),
                sampler=sampler_from_infotext(s),
                steps=int(s["Steps"]),
                cfg_scale=float(s["CFG scale"]),
                width=width,
                height=height,
                seed=int(s["Seed"]),
                batch_size=int(s.get("Batch size", 1)),
            )
        except (KeyError, ValueError) as exc:
            raise SdnbError(
                f"These parameters lack a usable {exc} value, so the image cannot be regenerated.",
                hint="Regenerate from a PNG written by sdnb or the AUTOMATIC1111 WebUI.",
            ) from exc


def _guess_model(name: str) -> str:
    """A registry key for a WebUI checkpoint name ("sd_xl_base_1.0" -> "sdxl"); SD 1.5 when unsure."""
    if name in MODELS:
        return name
    low = name.lower()
    if "xl" in low:
        return "sdxl"
    if any(k in low for k in ("v2-1", "2.1", "2-1", "768-v", "v2")):
        return "sd21"
    return "sd15"


def _round8(value: Any) -> int:
    try:
        return max(8, int(round(float(value) / 8)) * 8)
    except (TypeError, ValueError):
        return 512
