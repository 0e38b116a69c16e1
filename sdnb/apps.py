"""Ready-made notebook apps: a form for a task's params wired to the task function with Generate/Stop."""

from __future__ import annotations

from PIL import Image

from .generate import Txt2ImgResult, txt2img
from .params import Txt2ImgParams
from .widgets import Form, TaskApp

__all__ = ["txt2img_app"]


def _txt2img_tiles(result: Txt2ImgResult) -> list[tuple[Image.Image, str]]:
    tiles = [(img, f"seed {seed} → {path}") for img, seed, path in zip(result.images, result.seeds, result.paths)]
    if result.interrupted:
        tiles.append((Image.new("RGB", (8, 8), "white"), f"Stopped: kept {len(result.images)} finished image(s)."))
    return tiles


def txt2img_app(params: Txt2ImgParams | None = None) -> TaskApp:
    """The text-to-image form with Generate and Stop; display it in a notebook cell."""
    form = Form(params or Txt2ImgParams())
    return TaskApp(form, lambda p, stop, progress: txt2img(p, stop=stop, progress=progress), _txt2img_tiles)
