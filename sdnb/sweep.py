"""The one X/Y grid: any parameter (or two) over a list of values, same seed, labelled cells.

Notebook 01's CFG row uses it first; strength, ControlNet scale and LoRA weight sweeps reuse it. An axis
named ``"lora:NAME"`` varies the weight of LoRA ``NAME`` (its ``<lora:NAME:w>`` tag in the prompt).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from .errors import SdnbError
from .images import image_grid
from .params import spec_of
from .prompts import set_lora_weight
from .seeds import resolve_seed

__all__ = ["LORA_AXIS", "xy_grid"]


#: Prefix of an axis that varies a LoRA's weight instead of a params field.
LORA_AXIS = "lora:"


def _with(params: Any, changes: dict[str, Any]) -> Any:
    """``params`` with fields changed, a ``lora:NAME`` axis changing that LoRA's tag in the prompt."""
    for name, value in changes.items():
        if name.startswith(LORA_AXIS):
            params = dataclasses.replace(params, prompt=set_lora_weight(params.prompt, name[len(LORA_AXIS):], value))
        else:
            params = dataclasses.replace(params, **{name: value})
    return params


def _label(params_cls: type, name: str, value: Any) -> str:
    if name.startswith(LORA_AXIS):
        return f"{name[len(LORA_AXIS):]}: {value:g}"
    return f"{spec_of(params_cls, name).label}: {value:g}" if isinstance(value, float) else (
        f"{spec_of(params_cls, name).label}: {value}"
    )


def xy_grid(
    run: Callable[[Any], Image.Image],
    params: Any,
    x: str,
    xs: Sequence[Any],
    y: str | None = None,
    ys: Sequence[Any] = (),
    title: str | None = None,
) -> Image.Image:
    """Render ``run(params with x=value[, y=value])`` for every value and lay the results out as a grid.

    ``run`` takes a params object and returns one image (e.g. ``lambda p: txt2img(p, save=False).images[0]``).
    The seed is fixed once, so only the swept parameters change between cells.
    """
    names = {f.name for f in dataclasses.fields(params)}
    for name in (x, y) if y else (x,):
        if name not in names and not (name.startswith(LORA_AXIS) and name[len(LORA_AXIS):]):
            raise SdnbError(f"{type(params).__name__} has no parameter {name!r}.", hint=f"Use one of: {sorted(names)}")
    if not xs or (y and not ys):
        raise SdnbError("Give at least one value for each swept parameter.")
    base = dataclasses.replace(params, seed=resolve_seed(params.seed, params.images()))
    rows = list(ys) if y else [None]
    images = []
    for yv in rows:
        for xv in xs:
            changes = {x: xv} | ({y: yv} if y else {})
            images.append(run(_with(base, changes)))
    cls = type(params)
    return image_grid(
        images,
        cols=len(xs),
        col_labels=[_label(cls, x, v) for v in xs],
        row_labels=[_label(cls, y, v) for v in ys] if y else None,
        title=title or f"seed {base.seed}",
    )
