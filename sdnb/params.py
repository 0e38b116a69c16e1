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
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .errors import SdnbError
from .images import slug
from .registry import MODELS, MOVED, models_for, native_size, size_limits
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
    "PARAMS",
    "RESIZE_MODES",
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
        check_model(self.model, self.task, errors)
        errors += check_sampler(self.sampler, self.schedule_type)
        check_fields(self, ("steps", "cfg_scale", "batch_size", "batch_count"), errors)
        check_size(self.model, self.width, self.height, errors)
        self._check_seed_room("seed", errors)
        return errors

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
        if numbers and self.steps * self.strength < 1:
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

    def problems(self) -> list[str]:
        errors = super().problems()
        check_fields(self, ("mask_blur", "mask_mode", "inpaint_area", "padding"), errors)
        if not is_image_source(self.mask):
            errors.append(f"Mask: give the path of a mask image (got {self.mask!r}).")
        return errors


@dataclass
class Depth2ImgParams(Img2ImgParams):
    """Depth to image: the source image's depth map (estimated by the model) keeps its shapes in place."""

    task: ClassVar[str] = "depth2img"

    model: str = _f("sd2-depth", "Model", choices=models_for("depth2img"), infotext="Model")
    strength: float = _f(0.8, "Denoising strength", help="0 = keep the image, 1 = only its depth is kept.",
                         min=0.0, max=1.0, step=0.05, infotext="Denoising strength")


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


#: Every image task's params class, by task name.
PARAMS: dict[str, type[GenParams]] = {
    cls.task: cls for cls in (Txt2ImgParams, Img2ImgParams, InpaintParams, Depth2ImgParams, UpscaleParams)
}


def is_image_source(value: Any) -> bool:
    """True for a non-empty path (str or PathLike) or a PIL image: what an image field may hold."""
    from PIL import Image

    return isinstance(value, Image.Image) or (isinstance(value, (str, os.PathLike)) and bool(os.fspath(value)))


def task_of(settings: Mapping[str, str], model: str = "") -> str:
    """The task a WebUI infotext describes, from the keys it has (and the model's own tasks).

    Mask keys mean inpainting, ``Denoising strength`` image to image (unless the model is a depth or
    upscaler model, which do one task only); the rest is text to image.
    """
    tasks = MODELS[model].tasks if model in MODELS else ()
    if len(tasks) == 1:
        return tasks[0]
    if {"Mask blur", "Inpaint area", "Mask mode", "Masked content"} & set(settings):
        return "inpaint"
    if "Denoising strength" in settings and "Hires upscale" not in settings:
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
        check_prompt("Negative prompt", p.negative_prompt, errors)
        check_model(p.model, "txt2img", errors)
        check_fields(p, ["steps", "cfg_scale", "fps", "easing", "batch_size", "quality"], errors)
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
