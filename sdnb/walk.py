"""Interpolation walks between prompts and seeds: the engine behind notebook 02 and ``python -m sdnb walk``.

Between two prompts the initial noise is interpolated spherically (:func:`~sdnb.seeds.slerp`) and the
text embeddings linearly (:meth:`~sdnb.prompts.PromptEmbeds.lerp`). Frames are rendered in batches, the
classifier-free-guidance pass batched with them, by :func:`sdnb.engine.call_pipeline`; each is saved as
a numbered PNG and streamed into an MP4 as soon as it exists. Batches are aligned to absolute frame
numbers, so a resumed render batches, and therefore computes, exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
from matplotlib.figure import Figure
from PIL import Image

from .engine import Result, call_pipeline
from .errors import Interrupted, SdnbError
from .fonts import use_in_matplotlib
from .images import image_grid, load_image, move_no_replace, parse_infotext, save_image, slug, writable_folder
from .models import load_pipeline, pipeline_lock
from .params import EASINGS, Txt2ImgParams, WalkParams, as_tuples, to_infotext
from .preview import latents_to_rgb
from .progress import NullProgress, Progress
from .prompts import PromptEmbeds, encode_prompt
from .registry import MODELS, UPSCALERS
from .samplers import set_sampler
from .seeds import initial_noise, resolve_seed, slerp
from .settings import output_dir
from .upscalers import upscale_image
from .video import Mp4Writer, Onsets, human_size, load_onsets, video_html

__all__ = [
    "EASING_CURVES",
    "remake_frame",
    "FramePlan",
    "frame_plan",
    "walk_plan",
    "walk_batch_size",
    "Walker",
    "WalkResult",
    "WalkPreview",
    "render_walk",
    "video_size",
    "preview_walk",
    "prepare_walk",
    "walk_batches",
    "render_frames",
    "assemble_walk",
]

#: How ``t`` moves within a segment: at constant speed, or slowing down near each prompt.
EASING_CURVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda u: u,
    "smooth": lambda u: u * u * (3 - 2 * u),
}
assert set(EASING_CURVES) == set(EASINGS), "the form's easing choices and the curves must match"

# ---------------------------------------------------------------------------------------------
# The frame plan: where every frame sits on the walk


@dataclass(frozen=True)
class FramePlan:
    """Frame ``j`` lies on segment ``segments[j]`` (prompt ``i`` to prompt ``i+1``, wrapping) at ``ts[j]`` in [0, 1]."""

    segments: tuple[int, ...]
    ts: tuple[float, ...]
    prompts: int
    fps: float = 12.0
    onsets: Onsets | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.ts)

    def pair(self, j: int) -> tuple[int, int, float]:
        """(from prompt, to prompt, t) for frame ``j``."""
        a = self.segments[j]
        return a, (a + 1) % self.prompts, self.ts[j]

    @property
    def keyframes(self) -> tuple[int, ...]:
        """The frames that are exactly one of the prompts (t = 0, or t = 1 at the very end)."""
        return tuple(j for j, t in enumerate(self.ts) if t in (0.0, 1.0))

    def digest(self) -> str:
        """A short hash of the plan: a resumed render must follow exactly the same plan."""
        text = json.dumps([self.prompts, self.segments, [round(t, 9) for t in self.ts]])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def plot(self) -> Figure:
        """Position along the walk for every frame (and the audio's onset strength, when paced by audio)."""
        seconds = np.arange(len(self)) / self.fps
        position = np.array(self.segments) + np.array(self.ts)
        use_in_matplotlib()
        fig = Figure(figsize=(7, 3.2))  # not a pyplot figure: shown once, as the cell's value
        ax = fig.add_subplot()
        if self.onsets is not None:
            twin = ax.twinx()
            keep = self.onsets.times <= seconds[-1] + 1 / self.fps
            twin.fill_between(self.onsets.times[keep], self.onsets.strength[keep], color="tab:orange", alpha=0.3)
            twin.set_ylabel("audio onset strength", color="tab:orange")
        ax.plot(seconds, position, "o-", ms=3)
        ends = range(max(self.segments) + 2)
        ax.set_yticks(list(ends), [f"prompt {i % self.prompts + 1}" for i in ends])
        ax.set_xlabel(f"time in the video (s): {len(self)} frames at {self.fps:g} fps")
        ax.set_title("Where each frame sits between the prompts")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig


def frame_plan(
    counts: Sequence[int],
    prompts: int,
    *,
    loop: bool = False,
    easing: str = "linear",
    fps: float = 12.0,
    onsets: Onsets | None = None,
) -> FramePlan:
    """Plan a walk: segment ``i`` contributes ``counts[i]`` frames starting at its own keyframe, and the
    last prompt closes the walk once (unless ``loop``, which ends just before the first prompt again).

    Within a segment, ``t`` is spread evenly, or by the audio's onset strength when ``onsets`` is given
    (more change where the music has a beat), then shaped by ``easing``.
    """
    if len(counts) != (prompts if loop else prompts - 1):
        raise SdnbError(f"{prompts} prompts{' (looped)' if loop else ''} need {prompts if loop else prompts - 1} "
                        f"frame counts, got {len(counts)}.")
    ease = EASING_CURVES[easing]
    segments: list[int] = []
    ts: list[float] = []
    start = 0
    for i, n in enumerate(counts):
        u = onsets.pace(start / fps, (start + n) / fps, n) if onsets is not None else np.arange(n) / n
        segments += [i] * n
        ts += [float(x) for x in ease(np.asarray(u, dtype=np.float64))]
        start += n
    if not loop:
        segments.append(len(counts) - 1)
        ts.append(1.0)
    return FramePlan(tuple(segments), tuple(ts), prompts, float(fps), onsets)


def walk_plan(params: WalkParams) -> FramePlan:
    """The frame plan of validated ``params``, reading the audio file if one is given (clear error if unreadable)."""
    frames = sum(params.frame_counts()) + (0 if params.loop else 1)
    onsets = load_onsets(params.audio, seconds=frames / params.fps) if params.audio else None
    plan = frame_plan(params.frame_counts(), len(params.prompts), loop=params.loop, easing=params.easing,
                      fps=params.fps, onsets=onsets)
    if onsets is not None and len(plan) / params.fps > onsets.duration + 1e-6:
        raise SdnbError(
            f"The audio lasts {onsets.duration:.1f} s, but the video would last {len(plan) / params.fps:.1f} s "
            f"({len(plan)} frames at {params.fps} fps), so its end would be cut off.",
            hint=f"Use at most {int(onsets.duration * params.fps)} frames in all, a higher FPS, or a longer audio file.",
        )
    return plan


# ---------------------------------------------------------------------------------------------
# Rendering frames


class Walker:
    """What every frame of one walk needs, prepared once: the pipeline with its sampler, each prompt's
    embeddings (each prompt encoded once) and each seed's initial noise."""

    def __init__(self, pipe: Any, params: WalkParams, plan: FramePlan) -> None:
        set_sampler(pipe, params.sampler, params.schedule_type)
        self.pipe, self.params, self.plan = pipe, params, plan
        self.embeds = [encode_prompt(pipe, text, params.negative_prompt) for text in params.prompts]
        scale = pipe.vae_scale_factor
        shape = (pipe.unet.config.in_channels, params.height // scale, params.width // scale)
        self.noise = initial_noise([resolve_seed(s) for s in params.seeds], shape)

    def inputs(self, frames: Sequence[int]) -> tuple[PromptEmbeds, torch.Tensor]:
        """Embeddings (lerp) and initial latents (slerp) for a batch of frame numbers."""
        pairs = [self.plan.pair(j) for j in frames]
        embeds = PromptEmbeds.cat([self.embeds[a].lerp(self.embeds[b], t) for a, b, t in pairs])
        latents = torch.stack([slerp(self.noise[a], self.noise[b], t) for a, b, t in pairs])
        return embeds, latents

    def render(
        self, frames: Sequence[int], *, stop: threading.Event | None = None, on_step: Any = None
    ) -> tuple[list[Image.Image], list[bool], bool]:
        """One batched pipeline call for ``frames``: (images, safety-checker flags, interrupted)."""
        embeds, latents = self.inputs(frames)
        p, pipe = self.params, self.pipe
        args = {**embeds.as_kwargs(), "latents": latents.to(pipe._execution_device, pipe.unet.dtype),
                "height": p.height, "width": p.width, "num_inference_steps": p.steps, "guidance_scale": p.cfg_scale}
        return call_pipeline(pipe, args, stop=stop, on_step=on_step)


def walk_batch_size(p: WalkParams) -> int:
    """Frames per pipeline call: ``p.batch_size``, or the memory plan's batch size when it is 0."""
    from .device import plan_memory

    return p.batch_size or plan_memory(family=MODELS[p.model].family, width=p.width, height=p.height).batch_size


def _frame_params(p: WalkParams, a: int) -> Txt2ImgParams:
    """The text-to-image settings a walk's frames share, with prompt and seed ``a``: what their PNGs say."""
    return Txt2ImgParams(prompt=p.prompts[a], negative_prompt=p.negative_prompt, model=p.model, sampler=p.sampler,
                         schedule_type=p.schedule_type, steps=p.steps, cfg_scale=p.cfg_scale, width=p.width,
                         height=p.height, seed=p.seeds[a])


def _infotext(p: WalkParams, plan: FramePlan, j: int) -> str:
    """The infotext of frame ``j``: its prompt and seed, and where it sits on the way to the next ones.

    The walk's own keys (``Walk t`` at full precision) let :func:`remake_frame` remake it exactly; the WebUI
    shows them but cannot remake a frame between two prompts (it has no prompt interpolation).
    """
    a, b, t = plan.pair(j)
    return to_infotext(_frame_params(p, a), p.seeds[a], extra={
        "Walk frame": f"{j} of {len(plan)}",
        "Walk t": f"{t:.17g}",
        "Walk next seed": p.seeds[b],
        "Walk next prompt": p.prompts[b],
    })


def remake_frame(text: str, *, pipe: Any = None, save: bool = True, **overrides: Any) -> Result:
    """Remake one walk frame from its PNG's infotext (its prompt and seed, the next ones, and ``Walk t``).

    ``overrides`` change walk settings (``steps=...``). The frame is rendered on its own, so when the walk
    batched several frames together the pixels can differ from it in the last bit.
    """
    info = parse_infotext(text)
    s = info.settings
    try:
        t = float(s["Walk t"])
        frame = Txt2ImgParams.from_settings(info.prompt, info.negative_prompt, s)
        seeds = (frame.seed, int(s["Walk next seed"]))
        next_prompt = s["Walk next prompt"]
    except (KeyError, ValueError) as exc:
        raise SdnbError(f"These walk-frame parameters lack a usable {exc} value, so the frame cannot be remade.",
                        hint="Remake from a frame PNG written by sdnb's walk.") from None
    same = {f.name: getattr(frame, f.name) for f in dataclasses.fields(WalkParams) if hasattr(frame, f.name)}
    p = dataclasses.replace(WalkParams(**same), prompts=(info.prompt, next_prompt), seeds=seeds, frames=(1,),
                            batch_size=1, **overrides).validate()
    plan = FramePlan(segments=(0,), ts=(t,), prompts=2)
    pipe = pipe or load_pipeline(p.model)
    with pipeline_lock(pipe):
        images, flags, _ = Walker(pipe, p, plan).render([0])
    result = Result(params=_frame_params(p, 0), images=images, seeds=[seeds[0]], infotexts=[text],
                    flagged=[0] if flags[0] else [])
    if save:
        result.paths.append(save_image(images[0], writable_folder(output_dir() / "walk-frames"), infotext=text))
    return result


# ---------------------------------------------------------------------------------------------
# The output folder: config.json, frames/NNNNN.png, <name>.partial.mp4 -> <name>.mp4

_CONFIG = "config.json"


def _walks_root() -> Path:
    """``output_dir()/walks``, proven writable before anything is loaded or rendered."""
    return writable_folder(output_dir() / "walks")


def _read_config(folder: Path) -> dict | None:
    try:
        return json.loads((folder / _CONFIG).read_text())
    except (OSError, ValueError):
        return None


def _write_config(folder: Path, config: dict) -> None:
    """Replace config.json atomically (it is the walk's own bookkeeping, rewritten as frames finish)."""
    tmp = folder / f".{_CONFIG}.{os.getpid()}.part"
    tmp.write_text(json.dumps(config, indent=1, ensure_ascii=False))
    os.replace(tmp, folder / _CONFIG)


def _versions() -> dict[str, str]:
    import diffusers

    from . import __version__

    return {"sdnb": __version__, "diffusers": diffusers.__version__, "torch": torch.__version__}


def _open_folder(p: WalkParams, plan: FramePlan, resume: bool) -> tuple[Path, dict]:
    """The folder of this walk: an unfinished (or finished, with fixed seeds) one with the same settings
    and plan, else a new one (``name``, ``name-2``, ...). Existing folders are never overwritten."""
    root = _walks_root()
    base = slug(p.name) if p.name else slug(" ".join(p.prompts[0].split()[:6])) or "walk"
    request = json.loads(json.dumps(dataclasses.asdict(p)))
    digest = plan.digest()
    for n in itertools.count(1):
        folder = root / (base if n == 1 else f"{base}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            old = _read_config(folder) if resume else None
            same = old is not None and old.get("request") == request and old.get("plan") == digest
            if same and not (old.get("complete") and -1 in p.seeds):  # a finished random walk: make a new one
                return folder, old
            continue
        config = {
            "request": request,
            "seeds": [resolve_seed(s) for s in p.seeds],
            "batch_size": walk_batch_size(p),
            "frames_total": len(plan),
            "plan": digest,
            "keyframes": list(plan.keyframes),
            "video": f"{folder.name}.mp4",
            "frames_done": 0,
            "complete": False,
            "flagged": [],
            "versions": _versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _write_config(folder, config)
        return folder, config
    raise AssertionError("unreachable")


_LOCK = ".render.lock"


@contextmanager
def _render_lock(folder: Path) -> Iterator[None]:
    """One render at a time per walk folder. A second render of the same walk says who holds it; a lock left
    by a process that no longer runs on this machine is taken over."""
    with _FOLDER_LOCKS_GUARD:  # threads of this process wait their turn; other processes are told who renders
        in_process = _FOLDER_LOCKS.setdefault(folder.resolve(), threading.Lock())
    with in_process, _process_lock(folder):
        yield


_FOLDER_LOCKS: dict[Path, threading.Lock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()


@contextmanager
def _process_lock(folder: Path) -> Iterator[None]:
    lock = folder / _LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
            except (OSError, ValueError):  # being written this instant, or damaged: look again
                time.sleep(0.2)
                holder = _read_lock(lock)
            if holder is not None and (holder.get("host") != me["host"] or psutil.pid_exists(holder.get("pid", -1))):
                raise SdnbError(
                    f"The walk '{folder.name}' is being rendered by process {holder.get('pid')} on "
                    f"{holder.get('host')} (since {holder.get('started')}).",
                    hint="Wait for it to finish (its frames are saved as they are made), stop it, or give this "
                    f"render another name. If that process is gone, delete {lock}.",
                ) from None
            with suppress(FileNotFoundError):  # left by a process that is gone: take it over
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as file:
            json.dump(me, file)
        break
    else:
        raise SdnbError(f"Could not lock the walk folder '{folder}'.", hint="Try again in a moment.")
    try:
        yield
    finally:
        if _read_lock(lock) == me:
            with suppress(FileNotFoundError):
                lock.unlink()


def _read_lock(lock: Path) -> dict | None:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return None


def _publish(partial: Path, final: Path) -> Path:
    """Give the finished video its final name (or ``name-2.mp4``, ...) without ever replacing a file."""
    for n in itertools.count(1):
        target = final if n == 1 else final.with_name(f"{final.stem}-{n}{final.suffix}")
        try:
            move_no_replace(partial, target)
            return target
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class WalkResult:
    """A rendered (or partly rendered) walk: folder, video, frames, and what happened on the way."""

    params: WalkParams  # seeds and batch size as used
    folder: Path
    video: Path
    total: int
    frames: list[Path] = field(default_factory=list)
    interrupted: bool = False
    flagged: list[int] = field(default_factory=list)  # frames the model's safety checker flagged
    resumed_at: int = 0  # frames that were already on disk when this run started
    shares: dict[int, list[int]] = field(default_factory=dict)  # process -> its frames, when split across several

    @property
    def done(self) -> int:
        """Frames finished (on disk and in the video)."""
        return len(self.frames)

    @property
    def complete(self) -> bool:
        """All frames are done and the video has its final name."""
        return self.done == self.total and not self.video.name.endswith(".partial.mp4")

    @property
    def size_bytes(self) -> int:
        """Size of the video file."""
        return self.video.stat().st_size if self.video.is_file() else 0

    def summary(self) -> str:
        """What was made, where, and anything to know (stopped, resumed, safety-checker hits)."""
        state = "Done" if self.complete else "Stopped"
        lines = [f"{state}: {self.done}/{self.total} frames, {self.video} ({human_size(self.size_bytes)})"]
        if self.resumed_at:
            lines.append(f"Resumed: {self.resumed_at} frame(s) were already rendered.")
        if not self.complete:
            lines.append("Run the same render again to continue where it stopped.")
        if self.flagged:
            lines.append(f"The safety checker flagged frame(s) {', '.join(map(str, self.flagged))}; "
                         "the model replaced them with black frames.")
        if self.shares:
            lines.append(f"Split across {len(self.shares)} processes: " + "; ".join(
                f"process {r}: frames {_number_ranges(js) or 'none'}" for r, js in sorted(self.shares.items())))
        lines.append(f"Seeds: {', '.join(map(str, self.params.seeds))}; frames in {self.folder / 'frames'}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        notes = "<br>".join(html.escape(line) for line in self.summary().splitlines())
        if not self.video.is_file():
            return f"<div>{notes}</div>"
        return video_html(self.video) + f"<div>{notes}</div>"


@dataclass
class WalkPreview:
    """A strip of a few frames of a walk, rendered before committing to the whole video."""

    params: WalkParams  # with the seeds resolved: render these to get the same walk
    frames: list[int]
    images: list[Image.Image]
    grid: Image.Image

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.grid.save(buf, "PNG")
        return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Entry points


def preview_walk(
    params: WalkParams | None = None,
    *,
    keyframes: int = 5,
    steps: int | None = None,
    pipe: Any = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    **overrides: Any,
) -> WalkPreview:
    """Render ``keyframes`` evenly spaced frames of the walk (no video, nothing saved) as a labelled strip.

    Random seeds (-1) are resolved here; render ``preview.params`` to get the video of this preview.
    """
    p = dataclasses.replace(params or WalkParams(), **overrides).validate()
    p = dataclasses.replace(p, seeds=tuple(resolve_seed(s) for s in p.seeds))
    plan = walk_plan(p)
    picks = sorted({int(round(x)) for x in np.linspace(0, len(plan) - 1, max(2, keyframes))})
    batch = walk_batch_size(p)
    progress = progress or NullProgress()
    pipe = pipe or load_pipeline(p.model)
    images: list[Image.Image] = []
    with pipeline_lock(pipe):  # one run at a time per pipeline: Walker swaps the sampler
        walker = Walker(pipe, dataclasses.replace(p, steps=steps or p.steps), plan)
        progress.start(len(picks), "Preview frames")
        for k in range(0, len(picks), batch):
            out, _, interrupted = walker.render(picks[k : k + batch], stop=stop)
            if interrupted:
                break
            images += out
            progress.update(len(images))
    if not images:
        raise SdnbError("The preview was stopped before its first frame was finished.", hint="Run it again.")
    progress.finish(f"Done: {len(images)} preview frame(s)")
    labels = []
    for j in picks[: len(images)]:
        a, b, t = plan.pair(j)
        labels.append(f"frame {j}: prompt {a + 1}" if t == 0 else f"frame {j}: prompt {b + 1}" if t == 1 else
                      f"frame {j}: {a + 1}->{b + 1} at t={t:.2f}")
    grid = image_grid(images, col_labels=labels, title=f"seeds {', '.join(map(str, p.seeds))}")
    return WalkPreview(p, picks[: len(images)], images, grid)


def render_walk(
    params: WalkParams | None = None,
    *,
    pipe: Any = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    resume: bool = True,
    **overrides: Any,
) -> WalkResult:
    """Render the whole walk to ``output_dir()/walks/<name>/``: numbered PNGs, config.json and an MP4.

    Frames stream to disk and into ``<name>.partial.mp4`` as they are made; when all are done the video
    is renamed to ``<name>.mp4``. Stop (the ``stop`` event), Ctrl-C or an error leave a playable partial
    video and the finished frames; calling again with the same settings resumes after the last finished
    frame and gives the same video as an uninterrupted run (``resume=False`` always starts anew).
    """
    p = dataclasses.replace(params or WalkParams(), **overrides).validate()
    plan = walk_plan(p)
    folder, config = _open_folder(p, plan, resume)
    with _render_lock(folder):
        return _render_walk_in(folder, config, p, plan, pipe, stop, progress)


def _render_walk_in(
    folder: Path,
    config: dict,
    p: WalkParams,
    plan: FramePlan,
    pipe: Any,
    stop: threading.Event | None,
    progress: Progress | None,
) -> WalkResult:
    """:func:`render_walk` once its folder is open and locked."""
    p = dataclasses.replace(p, seeds=tuple(config["seeds"]), batch_size=config["batch_size"])
    final = folder / config["video"]
    result = WalkResult(p, folder, final.with_suffix(".partial.mp4"), len(plan), flagged=list(config["flagged"]))
    paths = _frame_paths(folder, len(plan))
    result.resumed_at = sum(path.is_file() for path in paths)
    progress = progress or NullProgress()
    if result.resumed_at == len(plan) and final.is_file():
        result.frames, result.video = paths, final
        progress.finish(f"Done: already rendered, {final}")
        return result
    pipe = pipe or load_pipeline(p.model)
    with pipeline_lock(pipe):  # one run at a time per pipeline: Walker swaps the sampler
        try:
            with Mp4Writer(result.video, video_size(p), p.fps, p.quality, audio=p.audio or None) as writer:
                _render_frames(Walker(pipe, p, plan), result, paths, stop, progress, writer=writer)
        except KeyboardInterrupt:  # Ctrl-C or the notebook's stop button: one line, every finished frame kept
            result.interrupted = True
            raise Interrupted(f"after {result.done}/{len(plan)} frames; the partial video {result.video.name} "
                              "plays. Run this cell (or command) again to resume.", result) from None
        except BaseException:
            result.interrupted = True
            raise
        finally:
            if result.done == len(plan):
                result.video = _publish(result.video, final)
                config["video"] = result.video.name
            config |= {"frames_done": result.done, "complete": result.complete, "flagged": result.flagged}
            _write_config(folder, config)
            progress.finish(result.summary().splitlines()[0] + ("" if result.complete else " (run again to resume)"))
    return result


def _render_frames(
    walker: Walker,
    result: WalkResult,
    paths: list[Path],
    stop: threading.Event | None,
    progress: Progress,
    *,
    batches: Sequence[int] | None = None,
    writer: Mp4Writer | None = None,
) -> None:
    """Render the frames not yet on disk, batch by aligned batch (``batches``: batch numbers, default all).

    Batch ``k`` is always frames ``[k*B, (k+1)*B)``, whoever renders it, so every frame is computed exactly
    as in one uninterrupted run. Every frame goes to its PNG and, with a ``writer``, into the MP4 in order.
    """
    p, plan = walker.params, walker.plan
    family = getattr(walker.pipe, "sdnb_family", "sd15")
    spans = [_batch_frames(k, p.batch_size, len(plan))
             for k in (range(_batch_count(len(plan), p.batch_size)) if batches is None else batches)]
    rendered = 0
    resumed = f" (resuming: {result.resumed_at} already done)" if result.resumed_at else ""
    progress.start(sum(not paths[j].is_file() for batch in spans for j in batch), "Frames" + resumed)

    def on_step(i: int, latents: torch.Tensor) -> None:
        if (i + 1) % 5 == 0:
            progress.update(rendered, latents_to_rgb(latents, family))

    for batch in spans:
        missing = [j for j in batch if not paths[j].is_file()]
        images: dict[int, Image.Image] = {}
        if missing:
            if stop is not None and stop.is_set():
                result.interrupted = True
                return
            out, nsfw, result.interrupted = walker.render(batch, stop=stop, on_step=on_step)
            if result.interrupted:  # a half-denoised batch is not the walk: keep only finished frames
                return
            images = dict(zip(batch, out, strict=True))
            result.flagged = sorted(set(result.flagged) | {j for j, hit in zip(batch, nsfw, strict=True) if hit})
        for j in batch:
            if j in missing:
                save_image(images[j], paths[j].parent, infotext=_infotext(p, plan, j), index=j)
            if writer is not None:
                writer.append(_video_frame(p, images[j] if j in missing else load_image(paths[j]), stop))
            result.frames.append(paths[j])
            if j in missing:
                rendered += 1
                progress.update(rendered)


def video_size(p: WalkParams) -> tuple[int, int]:
    """The video's frame size: the rendered size, times the upscaler's scale when ``p.upscaler`` is set."""
    scale = UPSCALERS[p.upscaler].scale if p.upscaler in UPSCALERS else 1
    return p.width * scale, p.height * scale


def _video_frame(p: WalkParams, image: Image.Image, stop: threading.Event | None) -> Image.Image:
    """A frame as it goes into the video: enlarged by ``p.upscaler`` (Real-ESRGAN, tiled) unless it is "None".

    Frames already rendered are enlarged again when a walk resumes (the frame PNGs keep the rendered size,
    which is what :func:`remake_frame` remakes), so a resumed video equals an uninterrupted one.
    """
    return image if p.upscaler not in UPSCALERS else upscale_image(image, p.upscaler, stop=stop)


def _batch_count(frames: int, batch_size: int) -> int:
    return -(-frames // batch_size)


def _batch_frames(k: int, batch_size: int, frames: int) -> range:
    """Batch ``k`` of a walk is always frames ``[k*B, (k+1)*B)``: the same batches in every run and process."""
    return range(k * batch_size, min((k + 1) * batch_size, frames))


def _frame_paths(folder: Path, frames: int) -> list[Path]:
    """``frames/00000.png`` .. of the walk in ``folder``."""
    return [folder / "frames" / f"{j:05d}.png" for j in range(frames)]


# ---------------------------------------------------------------------------------------------
# Rendering in parts (several processes or GPUs: see :mod:`sdnb.distributed`), then assembling


def prepare_walk(params: WalkParams | None = None, *, resume: bool = True, **overrides: Any) -> Path:
    """Check the settings and open the walk's folder with its ``config.json`` (the one to resume, as
    :func:`render_walk` would pick, or a new one); render nothing. Returns the folder.

    Random seeds and the batch size are fixed in ``config.json`` here, so every process that renders a
    part of the walk (:func:`render_frames`) renders the same walk.
    """
    p = dataclasses.replace(params or WalkParams(), **overrides).validate()
    return _open_folder(p, walk_plan(p), resume)[0]


def _walk_in(folder: str | os.PathLike) -> tuple[Path, WalkParams, dict]:
    """The walk in ``folder``: its settings as rendered (seeds and batch size fixed) and its config."""
    folder = Path(folder).expanduser()
    config = _read_config(folder)
    if config is None or not {"request", "seeds", "batch_size", "frames_total", "plan"} <= set(config):
        raise SdnbError(f"'{folder}' is not a walk folder: it has no readable config.json.",
                        hint="Pass the folder a walk was rendered into (output_dir()/walks/<name>).")
    p = as_tuples(WalkParams(**config["request"]))
    p = dataclasses.replace(p, seeds=tuple(config["seeds"]), batch_size=config["batch_size"])
    return folder, p, config


def walk_batches(folder: str | os.PathLike) -> list[int]:
    """The batch numbers of the walk in ``folder``: batch ``k`` is frames ``[k*B, (k+1)*B)``."""
    _, p, config = _walk_in(folder)
    return list(range(_batch_count(config["frames_total"], p.batch_size)))


def render_frames(
    folder: str | os.PathLike,
    batches: Sequence[int] | None = None,
    *,
    pipe: Any = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> WalkResult:
    """Render the missing frames of some batches (default: all) of the walk prepared in ``folder``
    (:func:`prepare_walk`) to their PNGs; no video (:func:`assemble_walk` makes it).

    Frames already on disk are skipped, so a re-run resumes. Give each process different batches:
    the frames equal those of a one-process :func:`render_walk`. ``result.frames`` are this part's frames.
    """
    folder, p, config = _walk_in(folder)
    plan = walk_plan(p)
    if plan.digest() != config["plan"]:
        raise SdnbError(f"The frame plan of '{folder}' no longer matches its config.json (audio file changed?).",
                        hint="Render the walk anew into a new folder.")
    total = len(plan)
    batches = walk_batches(folder) if batches is None else list(batches)
    bad = [k for k in batches if not 0 <= k < _batch_count(total, p.batch_size)]
    if bad:
        raise SdnbError(f"Batch number(s) {bad} are outside this walk's {_batch_count(total, p.batch_size)} batches.")
    result = WalkResult(p, folder, folder / config["video"], total)
    paths = _frame_paths(folder, total)
    mine = [j for k in batches for j in _batch_frames(k, p.batch_size, total)]
    result.resumed_at = sum(paths[j].is_file() for j in mine)
    progress = progress or NullProgress()
    if result.resumed_at == len(mine):  # nothing to render: no pipeline to load
        result.frames = [paths[j] for j in mine]
        progress.finish(f"Done: {len(mine)} frame(s) already rendered")
        return result
    pipe = pipe or load_pipeline(p.model)
    with pipeline_lock(pipe):  # one run at a time per pipeline: Walker swaps the sampler
        try:
            _render_frames(Walker(pipe, p, plan), result, paths, stop, progress, batches=batches)
        except KeyboardInterrupt:
            result.interrupted = True
            raise Interrupted(f"after {result.done}/{len(mine)} frames of this part; run it again to resume.",
                              result) from None
        except BaseException:
            result.interrupted = True
            raise
        finally:
            progress.finish(f"{'Stopped' if result.interrupted else 'Done'}: {result.done}/{len(mine)} frame(s)")
    return result


def assemble_walk(
    folder: str | os.PathLike, *, flagged: Sequence[int] = (), progress: Progress | None = None
) -> WalkResult:
    """Encode the frames ``00000.png`` .. of the walk in ``folder`` in order into its MP4 (with its audio).

    Raises a clear error listing the missing frame numbers if any frame is not rendered yet. ``flagged``
    (frames the safety checker flagged while rendering in parts) is added to config.json. A finished
    video is returned as it is.
    """
    folder, p, config = _walk_in(folder)
    total = config["frames_total"]
    paths = _frame_paths(folder, total)
    missing = [j for j, path in enumerate(paths) if not path.is_file()]
    if missing:
        raise SdnbError(
            f"Cannot assemble the video of '{folder.name}': {len(missing)} of {total} frame(s) are missing: "
            f"{_number_ranges(missing)}.",
            hint="Render them first (run the same render again: it renders only the missing frames).",
        )
    config["flagged"] = sorted(set(config["flagged"]) | set(flagged))
    final = folder / config["video"]
    result = WalkResult(p, folder, final, total, frames=paths, flagged=config["flagged"])
    progress = progress or NullProgress()
    if config.get("complete") and final.is_file():
        result.resumed_at = total
        progress.finish(f"Done: already assembled, {final}")
        return result
    result.video = final.with_suffix(".partial.mp4")
    progress.start(total, "Assembling the video")
    with Mp4Writer(result.video, video_size(p), p.fps, p.quality, audio=p.audio or None) as writer:
        for j, path in enumerate(paths):
            writer.append(_video_frame(p, load_image(path), None))
            progress.update(j + 1)
    result.video = _publish(result.video, final)
    config |= {"video": result.video.name, "frames_done": total, "complete": True}
    _write_config(folder, config)
    progress.finish(result.summary().splitlines()[0])
    return result


def _number_ranges(numbers: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` as ``0-2, 5, 7-8``."""
    parts: list[str] = []
    for _, run in itertools.groupby(enumerate(numbers), lambda pair: pair[1] - pair[0]):
        group = [n for _, n in run]
        parts.append(str(group[0]) if len(group) == 1 else f"{group[0]}-{group[-1]}")
    return ", ".join(parts)
