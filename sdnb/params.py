"""Typed task parameters: one hierarchy, one dataclass per task, feeding function defaults, forms and infotext.

:class:`GenParams` holds the fields every task shares; each task adds its own (``Img2ImgParams`` adds the
source image and denoising strength, ``InpaintParams`` the mask, ...). Each field carries a :class:`Spec` in
its metadata (label, bounds, choices, WebUI infotext key), so the form (:mod:`sdnb.widgets`), the command
line (:mod:`sdnb.cli`), validation, :func:`to_infotext` and :meth:`GenParams.from_infotext` all read one place,
as the WebUI's single ``create_infotext`` serves every task.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .control import CONTROL_MODES, ControlUnit
from .control import MODULES as CONTROL_MODULES
from .errors import SdnbError
from .images import slug
from .registry import CONTROLNETS, MODELS, MOVED, UPSCALERS, models_for, native_size, size_limits
from .samplers import (
    SAMPLERS,
    SCHEDULES,
    WALK_SAMPLERS,
    check_sampler,
    resolve_schedule,
    sampler_from_infotext,
    split_sampler_name,
)
from .seeds import MAX_SEED, check_seed

__all__ = [
    "Spec",
    "spec_of",
    "check_fields",
    "check_size",
    "check_model",
    "check_prompt",
    "model_from_infotext",
    "base_type",
    "item_type",
    "with_native_size",
    "GenParams",
    "Txt2ImgParams",
    "Img2ImgParams",
    "InpaintParams",
    "Depth2ImgParams",
    "UpscaleParams",
    "ControlUnits",
    "ControlNetParams",
    "ControlNetImg2ImgParams",
    "ControlNetInpaintParams",
    "HiresParams",
    "HIRES_UPSCALERS",
    "HIRES_LATENT",
    "HIRES_ESRGAN",
    "PARAMS",
    "RESIZE_MODES",
    "MASKED_CONTENT",
    "to_infotext",
    "infotext_keys",
    "params_from_infotext",
    "task_of",
    "is_image_source",
    "EASINGS",
    "WalkParams",
    "as_tuples",
]

P = TypeVar("P", bound="GenParams")


@dataclass(frozen=True)
class Spec:
    """How a parameter is shown and checked: label, help text, bounds, step, choices, and its WebUI infotext
    key (empty: not written into the PNG's parameters)."""

    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    multiline: bool = False
    infotext: str = ""


def _f(default: Any, label: str, **kw: Any) -> Any:
    return field(default=default, metadata={"spec": Spec(label, **kw)})


def spec_of(params_cls: type, name: str) -> Spec:
    """The :class:`Spec` of one field of a params dataclass."""
    for f in dataclasses.fields(params_cls):
        if f.name == name:
            return f.metadata["spec"]
    raise SdnbError(f"{params_cls.__name__} has no parameter {name!r}.")


def _check_range(errors: list[str], name: str, value: float, spec: Spec) -> None:
    if not math.isfinite(value):
        errors.append(f"{spec.label} must be a finite number (got {value}).")
    elif spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
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
    """Width and height must be whole multiples of 8, within the model's limits when it is a registry model."""
    lo, hi = size_limits(model) if model in MODELS else (8, 8192)
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{name.title()} must be a whole number of pixels (got {value!r}).")
        elif value % 8:
            errors.append(f"{name.title()} must be a multiple of 8 (got {value}); try {_round8(value)}.")
        elif not lo <= value <= hi:
            limits = f" for {model}" if model in MODELS else ""
            errors.append(f"{name.title()} must be between {lo} and {hi}{limits} (got {value}).")


def check_model(model: Any, task: str, errors: list[str]) -> None:
    """A registry name that can run ``task``, or a hub id (``owner/name``), a local folder or ``.safetensors`` file.

    Deleted hub ids name their replacement; registry names are matched without regard to case.
    """
    choices = ", ".join(models_for(task))
    if not isinstance(model, str) or not model.strip():
        errors.append(f"Model must be a registry name ({choices}), a hub id, a folder or a .safetensors file "
                      f"(got {model!r}).")
        return
    moved = {k.lower(): v for k, v in MOVED.items()}.get(model.lower())
    if moved:
        errors.append(f"Model {model!r} was deleted from the hub; use {moved!r} (or a registry name: {choices}).")
    elif model in MODELS and task not in MODELS[model].tasks:
        errors.append(f"Model {model!r} cannot run {task}; choose one of: {choices}.")
    elif model not in MODELS and not _model_reference(model):
        errors.append(f"Model {model!r} is not a registry name ({choices}), a hub id (owner/name), a folder or a "
                      ".safetensors file.")


def _model_reference(text: str) -> bool:
    """True for what the loader can try: an existing folder or file, or an ``owner/name`` hub id."""
    path = Path(text).expanduser()
    if path.suffix.lower() == ".safetensors" or path.is_dir():
        return True
    return text.count("/") == 1 and not text.startswith((".", "/", "~")) and all(text.split("/"))


_NEGATIVE_LINE = "Negative prompt:"


def check_prompt(label: str, text: Any, errors: list[str]) -> None:
    """Prompt text, with no line that the WebUI's format would read as the start of the negative prompt."""
    if not isinstance(text, str):
        errors.append(f"{label} must be text (got {type(text).__name__}).")
    elif any(line.strip().startswith(_NEGATIVE_LINE) for line in text.split("\n")):
        errors.append(f"A line of the {label.lower()} starts with '{_NEGATIVE_LINE}': in the saved parameters it "
                      "would turn into the negative prompt. Put that text in the Negative prompt box instead.")


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
    """A copy of a params object with empty (None) ``width``/``height`` filled in from its model's native size."""
    size = native_size(params.model) if params.model in MODELS else 512
    return dataclasses.replace(params, width=size if params.width is None else params.width,
                               height=size if params.height is None else params.height)


@dataclass
class GenParams:
    """The fields every image task shares (prompt, model, sampler, steps, CFG, size, seed, batch).

    Each task's params subclass this and add their own fields; :attr:`task` names the task. The
    field order is the form's order; each field's :class:`Spec` gives its WebUI infotext key.
    """

    task: ClassVar[str] = ""

    prompt: str = _f(
        "a watercolor painting of a lighthouse at dawn, soft light, detailed",
        "Prompt",
        help="What you want to see.",
        multiline=True,
    )
    negative_prompt: str = _f("blurry, low quality", "Negative prompt", help="What to steer away from.",
                              multiline=True)
    model: str = _f("sd15", "Model", choices=models_for("txt2img"), infotext="Model")
    sampler: str = _f("DPM++ 2M", "Sampler", choices=tuple(SAMPLERS), infotext="Sampler")
    schedule_type: str = _f("Automatic", "Schedule type", help="How the noise level falls over the steps; "
                            "Automatic = the sampler's own (Karras for DPM++ 2M).", choices=tuple(SCHEDULES),
                            infotext="Schedule type")
    steps: int = _f(20, "Steps", help="Denoising steps.", min=1, max=150, step=1, infotext="Steps")
    cfg_scale: float = _f(7.0, "CFG scale", help="How strongly to follow the prompt.", min=0.0, max=30.0,
                          step=0.5, infotext="CFG scale")
    width: int | None = _f(None, "Width", help="Multiple of 8; default: the model's native size.", step=8,
                           infotext="Size")
    height: int | None = _f(None, "Height", help="Multiple of 8; default: the model's native size.", step=8,
                            infotext="Size")
    seed: int = _f(-1, "Seed", help="-1 = random; the seed used is always shown.", min=-1, max=MAX_SEED,
                   infotext="Seed")
    batch_size: int = _f(1, "Batch size", help="Images per pass (uses more memory).", min=1, max=16, step=1,
                         infotext="Batch size")
    batch_count: int = _f(1, "Batch count", help="Passes, one after another.", min=1, max=100, step=1)
    clip_skip: int = _f(1, "Clip skip", help="Read the text encoder this many layers from the end (1 = the last; "
                        "2 for many anime models).", min=1, max=12, step=1, infotext="Clip skip")

    def resolved(self: P) -> P:
        """A copy with width/height filled in from the model's native size and an old combined sampler name
        ("DPM++ 2M Karras") split into sampler and schedule type."""
        p = with_native_size(self)
        if isinstance(p.sampler, str) and isinstance(p.schedule_type, str):
            sampler, schedule = split_sampler_name(p.sampler, p.schedule_type)
            p = dataclasses.replace(p, sampler=sampler, schedule_type=schedule)
        return p

    def images(self) -> int:
        """How many images the whole run makes (batch count x batch size)."""
        return self.batch_count * self.batch_size

    def problems(self) -> list[str]:
        """Every problem with these (resolved) values, one sentence each; subclasses add their own."""
        errors: list[str] = []
        check_prompt("Prompt", self.prompt, errors)
        check_prompt("Negative prompt", self.negative_prompt, errors)
        check_model(self.model, self.load_options()["task"], errors)
        errors += check_sampler(self.sampler, self.schedule_type)
        check_fields(self, ("steps", "cfg_scale", "batch_size", "batch_count", "clip_skip"), errors)
        check_size(self.model, self.width, self.height, errors)
        self._check_seed_room("seed", errors)
        return errors

    def load_options(self) -> dict[str, Any]:
        """The keywords :func:`sdnb.models.load_pipeline` needs for this task's pipeline (ControlNet adds its
        units' models to the pipeline task it runs on)."""
        return {"task": self.task}

    def _check_seed_room(self, name: str, errors: list[str]) -> None:
        """A valid seed, low enough that image k's seed (seed + k) stays valid for every image of the run."""
        label, seed = spec_of(type(self), name).label, getattr(self, name)
        try:
            check_seed(seed)
        except SdnbError as exc:
            errors.append(exc.message if name == "seed" else f"{label}: {exc.message}")
            return
        counts = [self.batch_count, self.batch_size]
        if seed != -1 and all(isinstance(n, int) and n > 0 for n in counts) and seed + self.images() - 1 > MAX_SEED:
            errors.append(f"{label} {seed} is too large for {self.images()} images: image k uses {label.lower()} + k, "
                          f"and the last would be above {MAX_SEED}. Use at most {MAX_SEED - self.images() + 1}.")

    def validate(self: P) -> P:
        """Check every value; raise one :class:`SdnbError` listing all problems. Returns the resolved copy."""
        p = self.resolved()
        errors = p.problems()
        if errors:
            raise SdnbError("These settings need fixing: " + " ".join(errors))
        return p

    def infotext_settings(self) -> dict[str, Any]:
        """This task's ``Key: value`` settings as the WebUI writes them (prompts and seed excluded).

        Read from each field's :attr:`Spec.infotext` key; width and height are written together as ``Size``,
        and ``Batch size`` only when it is more than 1, as the WebUI does.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            key = f.metadata["spec"].infotext
            if not key or key in ("Seed", "Batch size") or key in out:
                continue
            out[key] = _format_value(self, f.name, key)
        if out.get("Clip skip") == 1:  # the WebUI writes Clip skip only when it is more than 1
            del out["Clip skip"]
        if "Schedule type" in out:  # the schedule that ran, never "Automatic" (which the WebUI may resolve otherwise)
            schedule = resolve_schedule(self.sampler, self.schedule_type)
            out["Schedule type"] = None if schedule == "Automatic" else schedule
        return out

    @classmethod
    def from_settings(cls: type[P], prompt: str, negative_prompt: str, settings: dict[str, str]) -> P:
        """Parameters from a parsed WebUI infotext; keys this class has no field for are not read."""
        values: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative_prompt}
        hints = typing.get_type_hints(cls)
        try:
            for f in dataclasses.fields(cls):
                key = f.metadata["spec"].infotext
                if not key or key not in settings:
                    continue
                raw = settings[key]
                if key == "Size":
                    values["width"], values["height"] = _parse_size(raw)
                elif key in ("Sampler", "Schedule type"):
                    values["sampler"], values["schedule_type"] = sampler_from_infotext(settings)
                elif key == "Model":
                    values["model"] = model_from_infotext(settings)
                else:
                    values[f.name] = _parse_value(base_type(hints[f.name]), raw)
        except ValueError as exc:
            raise SdnbError(f"The parameters have {exc}, so the image cannot be regenerated.",
                            hint="Regenerate from a PNG written by sdnb or the AUTOMATIC1111 WebUI.") from None
        missing = [key for key in ("Steps", "Size", "Seed", "CFG scale") if key not in settings]
        if missing:
            raise SdnbError(f"The parameters lack {', '.join(missing)}, so the image cannot be regenerated.",
                            hint="Regenerate from a PNG written by sdnb or the AUTOMATIC1111 WebUI.")
        return cls(**values)

    @classmethod
    def from_infotext(cls: type[P], text: str) -> P:
        """Parameters from a WebUI-style ``parameters`` text, as written into every PNG sdnb saves."""
        from .images import parse_infotext

        info = parse_infotext(text)
        return cls.from_settings(info.prompt, info.negative_prompt, info.settings)


def infotext_keys(params_cls: type) -> frozenset[str]:
    """The WebUI infotext keys the fields of ``params_cls`` write and read."""
    return frozenset(f.metadata["spec"].infotext for f in dataclasses.fields(params_cls)) - {""}


def to_infotext(p: GenParams, seed: int, batch_pos: int = 0, extra: Mapping[str, Any] | None = None) -> str:
    """The WebUI ``parameters`` text of one image of ``p`` (with seed ``seed``, at ``batch_pos`` in its batch).

    The one infotext writer of every task and of the walk: keys come from the fields' :class:`Spec`,
    in the WebUI's order, then ``extra`` (task-specific keys such as a walk frame's variation seed).
    """
    from .images import format_infotext

    settings = p.infotext_settings()
    settings["Seed"] = seed
    if p.batch_size > 1:
        settings |= {"Batch size": p.batch_size, "Batch pos": batch_pos}
    settings |= dict(extra or {})
    ordered = {k: settings[k] for k in _WEBUI_ORDER if k in settings}
    ordered |= {k: v for k, v in settings.items() if k not in ordered}
    ordered["Version"] = "sdnb"
    return format_infotext(p.prompt, p.negative_prompt, ordered)


#: The order the WebUI writes its keys in (``create_infotext``); other keys follow in the order given.
_WEBUI_ORDER = ("Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model",
                "Variation seed", "Variation seed strength", "Seed resize from", "Batch size", "Batch pos",
                "Denoising strength", "Mask blur", "Inpaint area", "Masked area padding", "Mask mode",
                "Masked content")


def _format_value(p: Any, name: str, key: str) -> Any:
    value = getattr(p, name)
    if key == "Size":
        return f"{p.width}x{p.height}"
    return f"{value:g}" if isinstance(value, float) else value


def _parse_size(raw: str) -> tuple[int, int]:
    parts = raw.lower().split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"Size {raw!r}, not WIDTHxHEIGHT in pixels (e.g. 512x768)")
    return int(parts[0]), int(parts[1])


def _parse_value(kind: Any, raw: str) -> Any:
    try:
        return kind(raw) if kind in (int, float) else raw
    except ValueError:
        raise ValueError(f"{raw!r} where a {'whole number' if kind is int else 'number'} belongs") from None


@dataclass
class Txt2ImgParams(GenParams):
    """Text to image: the shared fields, plus the WebUI's variation seed (a second noise mixed in)."""

    task: ClassVar[str] = "txt2img"

    variation_seed: int = _f(-1, "Variation seed", help="A second seed whose noise is mixed in; -1 = random.",
                             min=-1, max=MAX_SEED, infotext="Variation seed")
    variation_strength: float = _f(0.0, "Variation strength", help="0 = Seed alone, 1 = Variation seed alone; "
                                   "small values give near copies.", min=0.0, max=1.0, step=0.05,
                                   infotext="Variation seed strength")

    def problems(self) -> list[str]:
        errors = super().problems()
        check_fields(self, ("variation_strength",), errors)
        self._check_seed_room("variation_seed", errors)
        return errors

    def infotext_settings(self) -> dict[str, Any]:
        out = super().infotext_settings()
        if not self.variation_strength:  # the WebUI writes the variation keys only when they act
            out.pop("Variation seed", None)
            out.pop("Variation seed strength", None)
        return out


RESIZE_MODES: tuple[str, ...] = ("Just resize", "Crop and resize", "Resize and fill")
#: The WebUI's "Masked content" choices, in its order: fill (the hole painted from its edges), original, latent
#: noise (the hole's latents replaced by the seed's noise) and latent nothing (by zeros).
MASKED_CONTENT: tuple[str, ...] = ("fill", "original", "latent noise", "latent nothing")


@dataclass
class Img2ImgParams(GenParams):
    """Image to image: a source image, noised part of the way (``strength``) and denoised again."""

    task: ClassVar[str] = "img2img"

    image: str = _f("", "Image", help="Path of the source image (code may also pass a PIL image).")
    strength: float = _f(0.75, "Denoising strength", help="0 = keep the image, 1 = ignore it; steps run = "
                         "strength x steps.", min=0.0, max=1.0, step=0.05, infotext="Denoising strength")
    resize_mode: str = _f("Just resize", "Resize mode", help="How the image is fitted to width x height.",
                          choices=RESIZE_MODES, infotext="Resize mode")

    def problems(self) -> list[str]:
        errors = super().problems()
        check_fields(self, ("strength", "resize_mode"), errors)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.steps, self.strength))
        if numbers and self.strength == 0:
            errors.append("Denoising strength 0 changes nothing: the result would be the source image itself. "
                          "Raise it (0.3 keeps most of the image, 0.75 the layout, 1 only the size).")
        elif numbers and self.steps * self.strength < 1:
            errors.append(f"Denoising strength {self.strength:g} x {self.steps} steps leaves no step to run: raise "
                          "either so that their product is at least one step.")
        if not is_image_source(self.image):
            errors.append(f"{spec_of(type(self), 'image').label}: give the path of an image file "
                          f"(got {self.image!r}).")
        return errors


@dataclass
class InpaintParams(Img2ImgParams):
    """Inpainting: only the white part of a mask is repainted; the rest of the image is kept."""

    task: ClassVar[str] = "inpaint"

    model: str = _f("sd15", "Model", choices=models_for("inpaint"), infotext="Model")
    mask: str = _f("", "Mask", help="Path of the mask image: white = repaint, black = keep.")
    mask_blur: int = _f(4, "Mask blur", help="Soften the mask edge by this many pixels.", min=0, max=64, step=1,
                        infotext="Mask blur")
    mask_mode: str = _f("Inpaint masked", "Mask mode", help="Inpaint not masked: repaint the black part instead.",
                        choices=("Inpaint masked", "Inpaint not masked"), infotext="Mask mode")
    inpaint_area: str = _f("Whole picture", "Inpaint area", help="Only masked: work on a crop around the mask "
                           "at full size, then paste it back (finer detail for small areas).",
                           choices=("Whole picture", "Only masked"), infotext="Inpaint area")
    padding: int = _f(32, "Masked area padding", help="Pixels of context around the mask with Only masked.",
                      min=0, max=256, step=4, infotext="Masked area padding")
    masked_content: str = _f("original", "Masked content", help="What the masked part starts from: original = "
                             "the picture there; fill = the colours around it (for removing things); latent noise / "
                             "latent nothing = noise or nothing (needs a high denoising strength).",
                             choices=MASKED_CONTENT, infotext="Masked content")

    def problems(self) -> list[str]:
        errors = super().problems()
        check_fields(self, ("mask_blur", "mask_mode", "inpaint_area", "padding", "masked_content"), errors)
        if not is_image_source(self.mask):
            errors.append(f"Mask: give the path of a mask image (got {self.mask!r}).")
        return errors

    def infotext_settings(self) -> dict[str, Any]:
        out = super().infotext_settings()
        if self.inpaint_area != "Only masked":  # the WebUI writes the area and its padding only for "Only masked"
            out.pop("Inpaint area", None)
            out.pop("Masked area padding", None)
        return out


@dataclass
class Depth2ImgParams(Img2ImgParams):
    """Depth to image: the source image's depth map (estimated by the model) keeps its shapes in place."""

    task: ClassVar[str] = "depth2img"

    model: str = _f("sd2-depth", "Model", choices=models_for("depth2img"), infotext="Model")
    strength: float = _f(0.8, "Denoising strength", help="0 = keep the image, 1 = only its depth is kept.",
                         min=0.0, max=1.0, step=0.05, infotext="Denoising strength")
    depth_map: str = _f("", "Depth map", help="Optional: a greyscale image (white = near) used instead of the "
                        "model's depth estimate; empty = estimate it from the image.")

    def problems(self) -> list[str]:
        errors = super().problems()
        if not (self.depth_map == "" or is_image_source(self.depth_map)):
            errors.append(f"Depth map: give the path of a greyscale image, or leave it empty (got {self.depth_map!r}).")
        return errors


@dataclass
class UpscaleParams(GenParams):
    """The SD x4 upscaler: a small image and a prompt in, an image 4 times as wide and high out.

    ``width`` and ``height`` are the output size; the source image is fitted to a quarter of it.
    """

    task: ClassVar[str] = "upscale"

    model: str = _f("x4-upscaler", "Model", choices=models_for("upscale"), infotext="Model")
    negative_prompt: str = _f("", "Negative prompt", help="What to steer away from.", multiline=True)
    sampler: str = _f("DDIM", "Sampler", choices=tuple(SAMPLERS), infotext="Sampler")
    cfg_scale: float = _f(9.0, "CFG scale", help="How strongly to follow the prompt.", min=0.0, max=30.0,
                          step=0.5, infotext="CFG scale")
    image: str = _f("", "Image", help="Path of the small source image (code may also pass a PIL image).")
    noise_level: int = _f(20, "Noise level", help="Noise added to the source first: higher = more invented "
                          "detail, less faithful.", min=0, max=350, step=5, infotext="Upscale noise level")
    resize_mode: str = _f("Just resize", "Resize mode", help="How the image is fitted to a quarter of "
                          "width x height.", choices=RESIZE_MODES, infotext="Resize mode")

    def problems(self) -> list[str]:
        errors = super().problems()
        check_fields(self, ("noise_level", "resize_mode"), errors)
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, int) and value % 32:
                errors.append(f"{name.title()} must be a multiple of 32 for the x4 upscaler (got {value}); "
                              f"try {max(32, round(value / 32) * 32)}.")
        if not is_image_source(self.image):
            errors.append(f"Image: give the path of an image file (got {self.image!r}).")
        return errors


#: The WebUI's hires-fix upscalers sdnb runs: latent modes (torch ``interpolate`` mode, antialias), pixel resampling,
#: and Real-ESRGAN under the WebUI's names (see :data:`HIRES_ESRGAN`).
HIRES_LATENT: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
#: The WebUI's name of each Real-ESRGAN model -> its :data:`sdnb.registry.UPSCALERS` key.
HIRES_ESRGAN: dict[str, str] = {
    "R-ESRGAN 4x+": "RealESRGAN_x4plus",
    "R-ESRGAN 4x+ Anime6B": "RealESRGAN_x4plus_anime_6B",
    "R-ESRGAN General 4xV3": "realesr-general-x4v3",
}
HIRES_UPSCALERS: tuple[str, ...] = (*HIRES_LATENT, "Lanczos", "Nearest", *HIRES_ESRGAN)


@dataclass
class HiresParams(Txt2ImgParams):
    """Hires fix as the WebUI does it: text to image at width x height, enlarged (in latent space, or in pixels
    with Lanczos or Real-ESRGAN), then image to image at ``denoising_strength`` to add real detail.

    ``width``/``height`` are the first pass's size (the WebUI's ``Size``); the result is ``hires_upscale`` times
    larger, or ``hires_resize_x`` x ``hires_resize_y`` when those are set (one of them: the other keeps the
    aspect ratio; both: the enlarged image is cropped to fill, as the WebUI does).
    """

    task: ClassVar[str] = "hires"

    hires_upscaler: str = _f("Latent", "Upscaler", help="Latent: enlarge the latents (needs Denoising strength "
                             "0.5 or more); Lanczos/Nearest: enlarge the pixels; R-ESRGAN: Real-ESRGAN 4x.",
                             choices=HIRES_UPSCALERS, infotext="Hires upscaler")
    hires_upscale: float = _f(2.0, "Upscale by", help="Result size = first pass size x this.", min=1.0, max=4.0,
                              step=0.05, infotext="Hires upscale")
    hires_steps: int = _f(0, "Hires steps", help="Steps of the second pass; 0 = the same as Steps.", min=0,
                          max=150, step=1, infotext="Hires steps")
    denoising_strength: float = _f(0.7, "Denoising strength", help="How much the second pass repaints: low keeps "
                                   "the enlarged image, high invents more detail.", min=0.0, max=1.0, step=0.05,
                                   infotext="Denoising strength")
    hires_resize_x: int = _f(0, "Resize width to", help="0 = use Upscale by.", min=0, max=8192, step=8,
                             infotext="Hires resize")
    hires_resize_y: int = _f(0, "Resize height to", help="0 = use Upscale by.", min=0, max=8192, step=8,
                             infotext="Hires resize")

    def first_pass(self) -> Txt2ImgParams:
        """The text-to-image pass at the first pass's size: the same fields, without the hires ones."""
        names = [f.name for f in dataclasses.fields(Txt2ImgParams)]
        return Txt2ImgParams(**{name: getattr(self, name) for name in names})

    def hires_size(self) -> tuple[int, int, int, int]:
        """(target width, target height, enlarged width, enlarged height), as the WebUI computes them: the
        enlarged image covers the target, and is cropped to it when both resize values set another aspect."""
        w, h, rx, ry = self.width, self.height, self.hires_resize_x, self.hires_resize_y
        if not rx and not ry:
            tw, th = int(w * self.hires_upscale), int(h * self.hires_upscale)
            return tw, th, tw, th
        if not ry:
            return rx, rx * h // w, rx, rx * h // w
        if not rx:
            return ry * w // h, ry, ry * w // h, ry
        if w / h < rx / ry:
            return rx, ry, rx, rx * h // w
        return rx, ry, ry * w // h, ry

    def hires_steps_run(self) -> int:
        """Steps the second pass runs: ``hires_steps`` (0: ``steps``), as in the WebUI."""
        return self.hires_steps or self.steps

    def problems(self) -> list[str]:
        errors = self.first_pass().problems()  # the first pass is checked as the text-to-image run it is
        check_fields(self, ("hires_upscaler", "hires_upscale", "hires_steps", "denoising_strength",
                            "hires_resize_x", "hires_resize_y"), errors)
        if errors:
            return errors
        if self.denoising_strength * self.hires_steps_run() < 1:
            errors.append(f"Denoising strength {self.denoising_strength:g} leaves the second pass no step to run: "
                          "raise it (0.3 to 0.7 is usual).")
        tw, th, _, _ = self.hires_size()
        if tw % 8 or th % 8:
            errors.append(f"The hires size {tw}x{th} is not a multiple of 8: choose Upscale by so that width and "
                          f"height x it are multiples of 8 (e.g. 1.5 or 2), or set Resize width/height to "
                          f"{_round8(tw)}x{_round8(th)}.")
        else:
            check_size(self.model, tw, th, errors)
        return errors

    def infotext_settings(self) -> dict[str, Any]:
        """The WebUI's keys: ``Hires upscale`` or, when resizing to a size, ``Hires resize: WxH``; ``Hires steps``
        only when it is set."""
        out = super().infotext_settings()
        if self.hires_resize_x or self.hires_resize_y:
            out.pop("Hires upscale", None)
            out["Hires resize"] = f"{self.hires_resize_x}x{self.hires_resize_y}"
        else:
            out.pop("Hires resize", None)
        if not self.hires_steps:
            out.pop("Hires steps", None)
        return out

    @classmethod
    def from_settings(cls, prompt: str, negative_prompt: str, settings: dict[str, str]) -> HiresParams:
        """As :meth:`GenParams.from_settings`, with ``Hires resize: WxH`` read into the two resize fields."""
        size = settings.get("Hires resize")
        rest = {k: v for k, v in settings.items() if k != "Hires resize"}
        p = super().from_settings(prompt, negative_prompt, rest)
        if size is not None:
            try:
                rx, ry = _parse_size(size)
            except ValueError as exc:
                raise SdnbError(f"The parameters have Hires {exc}, so the image cannot be regenerated.") from None
            p = dataclasses.replace(p, hires_resize_x=rx, hires_resize_y=ry)
        return p


#: The WebUI extension's preprocessor names that sdnb runs the same way (read from infotext; written for line art).
_WEBUI_MODULES = {"lineart_standard": "lineart", "openpose_full": "openpose", "invert": "scribble"}


def _controlnet_field(unit: int, name: str) -> Any:
    """The field of unit 1 or 2 (the second unit's labels say so)."""
    prefix, label = ("control", "") if unit == 1 else ("control2", "Unit 2 ")
    specs: dict[str, tuple[Any, Spec]] = {
        "module": ("canny" if unit == 1 else "off", Spec(
            f"{label}Preprocessor", help="What the ControlNet reads from the image: edges, depth, line art, a "
            "scribble, a pose; none = the image already is a control map." + ("" if unit == 1 else
                                                                             " off = one unit only."),
            choices=CONTROL_MODULES if unit == 1 else ("off", *CONTROL_MODULES), infotext=f"ControlNet {unit - 1}")),
        "model": ("sd15-canny" if unit == 1 else "sd15-depth", Spec(
            f"{label}ControlNet", help="A ControlNet of the model's family (sd15-... for SD 1.5, sdxl-... for SDXL).",
            choices=tuple(CONTROLNETS))),
        "image": ("", Spec(f"{label}Control image", help="Path of the picture to preprocess (for openpose also a "
                           "keypoints .json).", infotext=f"ControlNet {unit - 1} Image")),
        "weight": (1.0, Spec(f"{label}Control weight", help="How strongly the control steers (conditioning scale).",
                             min=0.0, max=2.0, step=0.05)),
        "start": (0.0, Spec(f"{label}Starting control step", help="Fraction of the steps before it starts acting.",
                            min=0.0, max=1.0, step=0.05)),
        "end": (1.0, Spec(f"{label}Ending control step", help="Fraction of the steps after which it stops.",
                          min=0.0, max=1.0, step=0.05)),
        "mode": ("Balanced", Spec(f"{label}Control mode", help="Balanced: as trained. My prompt is more important: "
                                  "the detailed (shallow) blocks weakened. ControlNet is more important: also left "
                                  "out of the negative prompt's pass, so CFG pushes towards the control.",
                                  choices=CONTROL_MODES)),
    }
    default, spec = specs[name]
    return field(default=default, metadata={"spec": spec})


@dataclass
class ControlUnits:
    """The ControlNet unit fields and their behaviour, mixed into the params of every task ControlNet runs on
    (text to image, image to image, inpainting), as the WebUI extension adds its units to both tabs.

    Each unit has its image, preprocessor, weight, start, end and control mode; the Canny thresholds apply to
    every canny unit. A class mixes it in first (``class X(ControlUnits, Img2ImgParams)``) and names the task
    its pipeline runs in :attr:`pipeline_task`.
    """

    pipeline_task: ClassVar[str] = "txt2img"

    control_module: str = _controlnet_field(1, "module")
    control_model: str = _controlnet_field(1, "model")
    control_image: str = _controlnet_field(1, "image")
    control_weight: float = _controlnet_field(1, "weight")
    control_start: float = _controlnet_field(1, "start")
    control_end: float = _controlnet_field(1, "end")
    control_mode: str = _controlnet_field(1, "mode")
    canny_low: int = _f(100, "Canny low threshold", help="Edges continue where the gradient is above this (every canny unit).",
                        min=0, max=255, step=1)
    canny_high: int = _f(200, "Canny high threshold", help="Edges start where the gradient is above this (every canny unit).",
                         min=0, max=255, step=1)
    control2_module: str = _controlnet_field(2, "module")
    control2_model: str = _controlnet_field(2, "model")
    control2_image: str = _controlnet_field(2, "image")
    control2_weight: float = _controlnet_field(2, "weight")
    control2_start: float = _controlnet_field(2, "start")
    control2_end: float = _controlnet_field(2, "end")
    control2_mode: str = _controlnet_field(2, "mode")

    def units(self) -> list[ControlUnit]:
        """The active units, in order (the second only when its preprocessor is not "off")."""
        prefixes = ["control"] + (["control2"] if self.control2_module != "off" else [])
        return [ControlUnit(model=getattr(self, f"{pre}_model"), image=getattr(self, f"{pre}_image"),
                            module=getattr(self, f"{pre}_module"), weight=getattr(self, f"{pre}_weight"),
                            start=getattr(self, f"{pre}_start"), end=getattr(self, f"{pre}_end"),
                            mode=getattr(self, f"{pre}_mode"), low=self.canny_low, high=self.canny_high)
                for pre in prefixes]

    def load_options(self) -> dict[str, Any]:
        """The pipeline task's ControlNet pipeline with the units' models (one ControlNet, or a list: a
        MultiControlNet)."""
        models = [unit.model for unit in self.units()]
        return {"task": self.pipeline_task, "controlnet": models[0] if len(models) == 1 else models}

    def problems(self) -> list[str]:
        errors = super().problems()  # type: ignore[misc]  # the task's own checks (next in the MRO)
        check_fields(self, ("canny_low", "canny_high", "control2_module"), errors)
        if errors:
            return errors
        for n, unit in enumerate(self.units()):
            errors += unit.problems(f"ControlNet unit {n + 1}")
        return errors

    def infotext_settings(self) -> dict[str, Any]:
        """The extension's ``ControlNet N: "Module: ..., Model: ..., Weight: ..."`` keys, one per unit; the
        control images' file names are added by the run that saves them."""
        out = super().infotext_settings()  # type: ignore[misc]
        for n in range(2):
            out.pop(f"ControlNet {n}", None)
            out.pop(f"ControlNet {n} Image", None)
        for n, unit in enumerate(self.units()):
            module = "lineart_standard" if unit.module == "lineart" else unit.module
            model = CONTROLNETS[unit.model].repo.split("/")[-1] if unit.model in CONTROLNETS else unit.model
            items = {"Module": module, "Model": model, "Weight": f"{unit.weight:g}", "Resize Mode": "Just Resize"}
            if unit.module == "canny":
                items |= {"Threshold A": unit.low, "Threshold B": unit.high}
            items |= {"Guidance Start": f"{unit.start:g}", "Guidance End": f"{unit.end:g}", "Control Mode": unit.mode}
            out[f"ControlNet {n}"] = ", ".join(f"{key}: {value}" for key, value in items.items())
        return out

    @classmethod
    def from_settings(cls, prompt: str, negative_prompt: str, settings: dict[str, str]) -> Any:
        """As the task's own ``from_settings``, with each ``ControlNet N`` unit read (the extension's current
        and older key names)."""
        rest = {k: v for k, v in settings.items() if k not in ("ControlNet 0", "ControlNet 1")}
        p = super().from_settings(prompt, negative_prompt, rest)  # type: ignore[misc]
        changes: dict[str, Any] = {"control2_module": "off"}
        for n, prefix in enumerate(("control", "control2")):
            if f"ControlNet {n}" in settings:
                changes |= _read_unit(settings[f"ControlNet {n}"], prefix, n)
        return dataclasses.replace(p, **changes)

    def with_images_in(self, folder: Path) -> Any:
        """A copy whose control images given as bare file names (as the PNG's parameters hold them) are the
        files of that name in ``folder``."""
        changes = {}
        for name in ("control_image", "control2_image"):
            value = getattr(self, name)
            if isinstance(value, str) and value and Path(value).name == value and (folder / value).is_file():
                changes[name] = str(folder / value)
        return dataclasses.replace(self, **changes)


@dataclass
class ControlNetParams(ControlUnits, Txt2ImgParams):
    """Text to image steered by ControlNet: edges, depth, line art, a scribble or a pose, one or two units."""

    task: ClassVar[str] = "controlnet"


@dataclass
class ControlNetImg2ImgParams(ControlUnits, Img2ImgParams):
    """Image to image steered by ControlNet units (the WebUI extension on the img2img tab).

    The source image is noised by the denoising strength, and the units keep its edges, depth or pose while it
    is repainted."""

    task: ClassVar[str] = "controlnet-img2img"
    pipeline_task: ClassVar[str] = "img2img"


@dataclass
class ControlNetInpaintParams(ControlUnits, InpaintParams):
    """Inpainting steered by ControlNet: the white part of the mask is repainted following the units' maps."""

    task: ClassVar[str] = "controlnet-inpaint"
    pipeline_task: ClassVar[str] = "inpaint"


def _read_unit(text: str, prefix: str, n: int) -> dict[str, Any]:
    """The fields of one unit from its ``ControlNet N`` value."""
    items = {key.strip().lower(): value.strip() for key, value in
             re.findall(r"([A-Za-z][A-Za-z /]*?):\s*(\([^)]*\)|[^,]*)", text)}
    module = items.get("module", items.get("preprocessor", "none"))
    model = re.sub(r"\s*\[[0-9a-f]+\]$", "", items.get("model", ""))
    by_repo = {spec.repo.split("/")[-1]: key for key, spec in CONTROLNETS.items()}
    values: dict[str, Any] = {f"{prefix}_module": _WEBUI_MODULES.get(module, module),
                              f"{prefix}_model": by_repo.get(model, model),
                              f"{prefix}_mode": items.get("control mode", "Balanced")}
    try:
        values[f"{prefix}_weight"] = float(items.get("weight", 1))
        if "starting/ending" in items:  # the extension's older format: "starting/ending: (0, 1)"
            start, end = items["starting/ending"].strip("()").split(",")
        else:
            start, end = items.get("guidance start", 0), items.get("guidance end", 1)
        values[f"{prefix}_start"], values[f"{prefix}_end"] = float(start), float(end)
        if module == "canny" and n == 0:
            values["canny_low"] = int(float(items.get("threshold a", 100)))
            values["canny_high"] = int(float(items.get("threshold b", 200)))
    except ValueError:
        raise SdnbError(f"The parameters have a ControlNet {n} unit that cannot be read: {text!r}.",
                        hint="Regenerate from a PNG written by sdnb or the WebUI's ControlNet extension.") from None
    return values


#: Every image task's params class, by task name.
PARAMS: dict[str, type[GenParams]] = {
    cls.task: cls
    for cls in (Txt2ImgParams, Img2ImgParams, InpaintParams, Depth2ImgParams, UpscaleParams, HiresParams,
                ControlNetParams, ControlNetImg2ImgParams, ControlNetInpaintParams)
}


def is_image_source(value: Any) -> bool:
    """True for a non-empty path (str or PathLike) or a PIL image: what an image field may hold."""
    from PIL import Image

    return isinstance(value, Image.Image) or (isinstance(value, (str, os.PathLike)) and bool(os.fspath(value)))


def task_of(settings: Mapping[str, str], model: str = "") -> str:
    """The task a WebUI infotext describes, from the keys it has (and the model's own tasks).

    Mask keys mean inpainting, hires-fix keys (``Hires upscale``, ...) the hires fix, ``Denoising strength``
    image to image (unless the model is a depth or upscaler model, which do one task only); the rest is text
    to image. With the ControlNet extension's ``ControlNet 0`` key each is its ControlNet task (a hires fix's
    ControlNet run is read as text to image with ControlNet).
    """
    masked = bool({"Mask blur", "Inpaint area", "Mask mode", "Masked content"} & set(settings))
    hires = bool({"Hires upscale", "Hires resize", "Hires upscaler"} & set(settings))
    if "ControlNet 0" in settings:  # the WebUI ControlNet extension's first unit, on the txt2img or img2img tab
        if masked:
            return "controlnet-inpaint"
        return "controlnet-img2img" if "Denoising strength" in settings and not hires else "controlnet"
    tasks = MODELS[model].tasks if model in MODELS else ()
    if len(tasks) == 1:
        return tasks[0]
    if masked:
        return "inpaint"
    if hires:  # the WebUI's hires fix
        return "hires"
    if "Denoising strength" in settings:
        return "img2img"
    return "txt2img"


def params_from_infotext(text: str) -> GenParams:
    """The params of the task a WebUI ``parameters`` text describes (see :func:`task_of`)."""
    from .images import parse_infotext

    info = parse_infotext(text)
    model = model_from_infotext(info.settings)
    cls = PARAMS[task_of(info.settings, model)]
    return cls.from_settings(info.prompt, info.negative_prompt, info.settings)


def model_from_infotext(settings: Mapping[str, str]) -> str:
    """The registry name of the checkpoint an infotext names, by its ``Model hash`` or its exact file name;
    otherwise the name as written (never a guess from parts of the name: fine-tunes of every family share them).

    An unknown name then fails validation with a message that says to choose the model (``model=...``).
    """
    name, digest = settings.get("Model", "").strip(), settings.get("Model hash", "").strip().lower()
    for key, spec in MODELS.items():
        if name == key or digest in spec.webui_hashes or name in spec.webui_names:
            return key
    return name or "sd15"


def _round8(value: Any) -> int:
    try:
        return max(8, int(round(float(value) / 8)) * 8)
    except (TypeError, ValueError):
        return 512


#: How ``t`` moves within a segment of a walk (see :data:`sdnb.walk.EASING_CURVES`).
EASINGS: tuple[str, ...] = ("smooth", "linear")


def _same_as_txt2img(name: str) -> Any:
    """The field exactly as :class:`GenParams` declares it, so both forms agree on labels and bounds."""
    f = GenParams.__dataclass_fields__[name]
    return field(default=f.default, metadata=f.metadata)


@dataclass
class WalkParams:
    """Everything that decides a walk video; written to ``config.json`` next to its frames."""

    prompts: tuple[str, ...] = _f(
        (
            "a lighthouse on a cliff at dawn, watercolor painting, soft light",
            "a lighthouse on a cliff under a starry night sky, watercolor painting",
            "a lighthouse on a cliff in a winter snow storm, watercolor painting",
        ),
        "Prompts",
        help="One per line, at least two: the video walks from each to the next.",
        multiline=True,
    )
    seeds: tuple[int, ...] = _f((42, 1234, 2024), "Seeds", help="One per prompt, comma-separated; -1 = random.",
                                min=-1, max=MAX_SEED)
    frames: tuple[int, ...] = _f((12,), "Frames", help="Frames from each prompt to the next: one number, or one "
                                 "per segment.", min=1, max=10_000)
    negative_prompt: str = _same_as_txt2img("negative_prompt")
    model: str = _same_as_txt2img("model")
    sampler: str = _f("DPM++ 2M", "Sampler", help="Deterministic samplers only.", choices=WALK_SAMPLERS)
    schedule_type: str = _same_as_txt2img("schedule_type")
    steps: int = _same_as_txt2img("steps")
    cfg_scale: float = _same_as_txt2img("cfg_scale")
    width: int | None = _same_as_txt2img("width")
    height: int | None = _same_as_txt2img("height")
    fps: int = _f(12, "FPS", help="Frames per second of the video.", min=1, max=60, step=1)
    loop: bool = _f(False, "Loop", help="Walk back to the first prompt at the end.")
    easing: str = _f("smooth", "Easing", help="smooth lingers near each prompt; linear moves at constant speed.",
                     choices=EASINGS)
    batch_size: int = _f(0, "Batch size", help="Frames per pass; 0 = from the memory plan.", min=0, max=64, step=1)
    quality: int = _f(8, "Video quality", help="1 (small file) to 10 (best).", min=1, max=10, step=1)
    upscaler: str = _f("None", "Upscale video", help="Real-ESRGAN 4x on each frame as it is rendered: the video "
                       "is 4 times wider and higher (the frame PNGs keep the rendered size).",
                       choices=("None", *UPSCALERS))
    audio: str = _f("", "Audio file", help="Optional: frames change on its beats, and it plays in the video.")
    name: str = _f("", "Name", help="Folder and video name; empty = from the first prompt.")

    def resolved(self) -> WalkParams:
        """A copy with width/height filled in from the model's native size."""
        return with_native_size(self)

    def segments(self) -> int:
        """How many prompt-to-prompt segments the walk has (one more with ``loop``)."""
        return len(self.prompts) if self.loop else len(self.prompts) - 1

    def frame_counts(self) -> tuple[int, ...]:
        """Frames of each segment (``frames`` given once applies to all)."""
        return tuple(self.frames) * self.segments() if len(self.frames) == 1 else tuple(self.frames)

    def validate(self) -> WalkParams:
        """Check every value; raise one :class:`SdnbError` listing all problems. Returns the resolved copy.

        Runs before any model is loaded or any file written. Lists become tuples; prompts given as one
        text become one prompt per line.
        """
        p = as_tuples(self.resolved())
        if isinstance(p.sampler, str) and isinstance(p.schedule_type, str):
            sampler, schedule = split_sampler_name(p.sampler, p.schedule_type)
            p = dataclasses.replace(p, sampler=sampler, schedule_type=schedule)
        errors: list[str] = []
        if len(p.prompts) < 2:
            errors.append(f"Give at least two prompts, one per line (got {len(p.prompts)}).")
        if not all(isinstance(t, str) and t.strip() for t in p.prompts):
            errors.append("Every prompt must be non-empty text.")
        if len(p.seeds) != len(p.prompts):
            errors.append(f"Give one seed per prompt: {len(p.prompts)} prompts but {len(p.seeds)} seeds.")
        for seed in p.seeds:
            try:
                check_seed(seed)
            except SdnbError as exc:
                errors.append(exc.message)
        segments, limit = p.segments(), int(spec_of(WalkParams, "frames").max)
        if len(p.frames) not in (1, segments):
            errors.append(f"Frames: give one number, or one per segment ({segments} segments), not {len(p.frames)}.")
        for n in p.frames:
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
                errors.append(f"Frames per segment must be whole numbers from 1 to {limit} (got {n!r}).")
        if p.sampler in SAMPLERS and p.sampler not in WALK_SAMPLERS:
            errors.append(f"Sampler {p.sampler!r} adds fresh noise at every step, so neighbouring frames would "
                          f"flicker; use one of {', '.join(WALK_SAMPLERS)}.")
        else:
            errors += check_sampler(p.sampler, p.schedule_type)
        for text in p.prompts:
            check_prompt("Prompt", text, errors)
            if isinstance(text, str) and "<lora:" in text.lower():
                errors.append("LoRA tags (<lora:...>) do not work in walk prompts yet: the walk would ignore them. "
                              "Remove them from the prompts.")
        check_prompt("Negative prompt", p.negative_prompt, errors)
        check_model(p.model, "txt2img", errors)
        check_fields(p, ["steps", "cfg_scale", "fps", "easing", "batch_size", "quality", "upscaler"], errors)
        check_size(p.model, p.width, p.height, errors)
        if not isinstance(p.loop, bool):
            errors.append(f"Loop must be True or False (got {p.loop!r}).")
        if not isinstance(p.audio, str):
            errors.append(f"Audio file must be a path (got {p.audio!r}).")
        elif p.audio and not Path(p.audio).expanduser().is_file():
            errors.append(f"The audio file '{p.audio}' does not exist.")
        if not isinstance(p.name, str) or (p.name and not slug(p.name)):
            errors.append(f"Name must contain letters or digits (got {p.name!r}).")
        if errors:
            raise SdnbError("These settings need fixing: " + " ".join(errors))
        return p


def as_tuples(p: WalkParams) -> WalkParams:
    """Accept lists, a single number, or prompts as one text with one prompt per line."""

    def tup(value: Any, lines: bool = False) -> tuple:
        if isinstance(value, str) and lines:
            return tuple(line.strip() for line in value.splitlines() if line.strip())
        return tuple(value) if isinstance(value, (list, tuple)) else (value,)

    return dataclasses.replace(p, prompts=tup(p.prompts, lines=True), seeds=tup(p.seeds), frames=tup(p.frames))
