"""Several processes (one per GPU) sharing one job, with Hugging Face accelerate.

Start the ordinary command under ``accelerate launch`` and every process takes its share::

    accelerate launch --multi_gpu --num_processes 2 -m sdnb walk --prompts "a cat" "a dog" --frames 240

A walk: the main process opens the walk's folder (``config.json`` fixes the seeds and batch size), every
process renders whole, aligned batches of frames (``PartialState().split_between_processes``) into
``frames/NNNNN.png``, and when all are done the main process assembles the MP4 in frame order. The video
equals a one-process render. Running the same command again resumes: frames on disk are skipped.

Any image task (txt2img, img2img, ...): process ``r`` of ``n`` renders batches ``r, r+n, ...`` with the same
seeds as one process.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from .errors import SdnbError
from .progress import NullProgress, Progress
from .settings import world_size

__all__ = ["launched", "process_state", "render_walk_distributed", "run_task_distributed"]


def launched() -> bool:
    """True in a process started by ``accelerate launch`` (or ``torchrun``) with more than one process."""
    return world_size() > 1


def process_state() -> Any:
    """accelerate's ``PartialState``: on a machine without CUDA the processes talk over gloo on the CPU."""
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.device.type == "cuda":
        torch.cuda.set_device(state.device)  # the pipeline's .to("cuda") then lands on this process's GPU
    return state


def _from_main(state: Any, make: Any) -> Any:
    """``make()`` on the main process, its value (or its :class:`SdnbError`) on every process."""
    from accelerate.utils import broadcast_object_list

    box: list[Any] = [None]
    if state.is_main_process:
        try:
            box[0] = ("ok", make())
        except SdnbError as exc:
            box[0] = ("error", exc.message, exc.hint)
    broadcast_object_list(box)
    if box[0][0] == "error":
        raise SdnbError(box[0][1], hint=box[0][2])
    return box[0][1]


@contextmanager
def _processes() -> Iterator[Any]:
    """The process state; on the way out, wait for the others (unless failing) and leave the process group
    (an open gloo group aborts the process at exit)."""
    import torch.distributed as dist

    state = process_state()
    try:
        yield state
        state.wait_for_everyone()
    finally:
        if dist.is_available() and dist.is_initialized():
            state.destroy_process_group()


def render_walk_distributed(
    params: Any = None,
    *,
    resume: bool = True,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    **overrides: Any,
) -> Any:
    """:func:`sdnb.walk.render_walk` split across the processes of ``accelerate launch``.

    Every process must call it with the same settings; each returns the assembled
    :class:`~sdnb.walk.WalkResult`, whose ``shares`` say which frames each process took. ``progress`` is
    shown by the main process only.
    """
    from accelerate.utils import gather_object

    from .params import WalkParams
    from .walk import assemble_walk, prepare_walk, render_frames, walk_batches

    p = dataclasses.replace(params or WalkParams(), **overrides).validate()  # bad input: every process says so
    with _processes() as state:
        progress = progress if progress is not None and state.is_main_process else NullProgress()
        folder = _from_main(state, lambda: prepare_walk(p, resume=resume))
        with state.split_between_processes(walk_batches(folder)) as mine:
            part = render_frames(folder, mine, stop=stop, progress=progress)
        shares = gather_object([(state.process_index, [int(path.stem) for path in part.frames], part.flagged)])
        flagged = [j for _, _, hits in shares for j in hits]
        result = _from_main(state, lambda: assemble_walk(folder, flagged=flagged, progress=progress))
        result.shares = {rank: frames for rank, frames, _ in shares}
    return result


def run_task_distributed(params: Any, *, progress: Progress | None = None, **kwargs: Any) -> Any:
    """:func:`sdnb.generate.run_task` split across the processes of ``accelerate launch``.

    Process ``r`` of ``n`` renders batches ``r, r+n, ...``; image ``k`` keeps seed ``seed + k``, so the
    images equal a one-process run. Each process saves its own images (names never collide) and returns
    its own :class:`~sdnb.engine.Result`. A random seed (-1) is drawn once, by the main process.
    """
    from .generate import run_task
    from .seeds import resolve_seed

    fields = {f.name for f in dataclasses.fields(params)}
    p = dataclasses.replace(params, **{k: v for k, v in kwargs.items() if k in fields}).validate()
    rest = {k: v for k, v in kwargs.items() if k not in fields}
    with _processes() as state:
        p = dataclasses.replace(p, seed=_from_main(state, lambda: resolve_seed(p.seed, p.images())))
        mine = range(state.process_index, p.batch_count, state.num_processes)
        progress = progress if progress is not None and state.is_main_process else NullProgress()
        return run_task(p, batches=mine, progress=progress, **rest)
