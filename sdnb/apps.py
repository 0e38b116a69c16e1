"""Ready-made notebook apps: a form for a task's params wired to the task function with Generate/Stop."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
from PIL import Image

from .engine import Result
from .generate import txt2img
from .params import Txt2ImgParams, WalkParams
from .video import EMBED_LIMIT_BYTES
from .walk import WalkPreview, WalkResult, preview_walk, render_walk
from .widgets import Form, TaskApp

__all__ = ["txt2img_app", "walk_app"]


def _txt2img_tiles(result: Result) -> list[tuple[Image.Image, str]]:
    tiles = [(img, f"seed {seed} → {path}") for img, seed, path in zip(result.images, result.seeds, result.paths, strict=False)]
    if result.interrupted:
        tiles.append((Image.new("RGB", (8, 8), "white"), f"Stopped: kept {len(result.images)} finished image(s)."))
    return tiles


def txt2img_app(params: Txt2ImgParams | None = None) -> TaskApp:
    """The text-to-image form with Generate and Stop; display it in a notebook cell."""
    form = Form(params or Txt2ImgParams())
    return TaskApp(form, lambda p, stop, progress: txt2img(p, stop=stop, progress=progress), _txt2img_tiles)


def _walk_tiles(result: WalkResult) -> list[tuple[Any, str]]:
    if not result.video.is_file():
        return [(Image.new("RGB", (8, 8), "white"), result.summary())]
    if result.size_bytes > EMBED_LIMIT_BYTES:
        return [(W.HTML(f"<code>{result.video}</code>"), result.summary())]
    video = W.Video(value=result.video.read_bytes(), format="mp4", autoplay=False, loop=True,
                    layout=W.Layout(max_width="512px"))
    return [(video, result.summary())]


def _preview_tiles(preview: WalkPreview) -> list[tuple[Any, str]]:
    return [(preview.grid, f"Preview of frames {', '.join(map(str, preview.frames))}")]


def walk_app(params: WalkParams | None = None) -> TaskApp:
    """The interpolation-video form: Preview (a few frames, in seconds), Render video, and Stop."""
    form = Form(params or WalkParams())
    app = TaskApp(form, lambda p, stop, progress: render_walk(p, stop=stop, progress=progress), _walk_tiles,
                  button="Render video")
    app.add_button("Preview", lambda p, stop, progress: preview_walk(p, stop=stop, progress=progress),
                   _preview_tiles, icon="eye")
    return app
