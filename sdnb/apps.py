"""Ready-made notebook apps: a form for a task's params wired to the task function with Generate/Stop.

:func:`image_app` serves every image task (txt2img, img2img, inpaint, depth2img, upscale): its form is built
from the task's params class and its gallery shows each image with its seed, settings and a download link.
"""

from __future__ import annotations

from collections.abc import Callable

from .engine import Result
from .generate import run_task
from .params import GenParams, Txt2ImgParams, WalkParams
from .walk import WalkPreview, WalkResult, preview_walk, render_walk
from .widgets import Form, TaskApp, Tile, download_link, video_player

__all__ = ["image_app", "txt2img_app", "walk_app", "image_tiles", "walk_tiles"]


def image_tiles(result: Result) -> list[Tile]:
    """One gallery tile per finished image: seed, settings text and its file."""
    paths = list(result.paths) + [None] * (len(result.images) - len(result.paths))
    return [Tile(image, f"seed {seed}", seed, text, path)
            for image, seed, text, path in zip(result.images, result.seeds, result.infotexts, paths, strict=True)]


def image_app(params: GenParams, task: Callable[..., Result] = run_task) -> TaskApp:
    """The form of any image task's params with Generate, Stop, Clear, a gallery and PNG Info."""
    return TaskApp(Form(params), lambda p, stop, progress, **kw: task(p, stop=stop, progress=progress, **kw),
                   image_tiles)


def txt2img_app(params: Txt2ImgParams | None = None) -> TaskApp:
    """The text-to-image form with Generate and Stop; display it in a notebook cell."""
    return image_app(params or Txt2ImgParams())


def walk_tiles(result: WalkResult) -> list[Tile]:
    """The walk's video, playable at a watchable size, with a download link."""
    if not result.video.is_file() or not result.done:
        return []
    import ipywidgets as W

    summary = result.summary()
    player = W.VBox([video_player(result.video),
                     W.HTML(f"<div style='font-size:12px'>{download_link(result.video, 'Download video')}</div>")])
    return [Tile(player, summary.splitlines()[0], None, summary, None)]


def _preview_tiles(preview: WalkPreview) -> list[Tile]:
    seeds = ", ".join(map(str, preview.params.seeds))
    return [Tile(preview.grid, f"Preview of frames {', '.join(map(str, preview.frames))} (seeds {seeds})")]


def walk_app(params: WalkParams | None = None) -> TaskApp:
    """The interpolation-video form: Preview (a few frames, in seconds), Render video, and Stop."""
    app = TaskApp(Form(params or WalkParams()), render_walk, walk_tiles, button="Render video",
                  again="run this cell again to resume after the last finished frame")
    app.add_button("Preview", preview_walk, _preview_tiles, icon="eye", first=True)
    return app
