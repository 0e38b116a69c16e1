"""The command line: ``python -m sdnb <task> --help`` for every task, flags built from its params dataclass.

The command line sits above the tasks, which sit above the engine: nothing below imports this module. A
field added to a params class (:mod:`sdnb.params`) is a flag at once. Under ``accelerate launch
--num_processes N`` a walk's frames and a task's batches are shared between N processes (GPUs). Heavy
modules (torch, diffusers) load only when a command runs, not for ``--help`` parsing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Callable
from typing import Any

from .errors import SdnbError
from .params import PARAMS, WalkParams, base_type, item_type
from .settings import process_rank, set_output_dir, set_tiny

__all__ = ["COMMANDS", "add_params", "params_from_args", "run_cli", "main", "walk_main"]

_TASK_HELP = {
    "txt2img": "Generate images from a prompt.",
    "img2img": "Turn a source image (--image) into a new one; --strength sets how much changes.",
    "inpaint": "Repaint the white part of a mask (--mask) in a source image (--image).",
    "depth2img": "A new picture with the depth of a source image (--image), with a depth model.",
    "upscale": "Make an image 4x larger with the SD x4 upscaler, guided by a prompt.",
    "hires": "Hires fix as the WebUI does it: generate, enlarge (latent or Real-ESRGAN), then repaint detail.",
    "walk": "Render an interpolation video between prompts (resumable: run the same command again to continue "
            "after an interruption).",
}
_SPLIT = " Under `accelerate launch --num_processes N` the work is shared between N processes (GPUs)."


def add_params(parser: argparse.ArgumentParser, params_cls: type) -> None:
    """One flag per field of ``params_cls``, built from its type and :class:`~sdnb.params.Spec`."""
    hints = typing.get_type_hints(params_cls)
    for f in dataclasses.fields(params_cls):
        spec, kind = f.metadata["spec"], hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        shown = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        kw: dict[str, Any] = {"help": f"{spec.label}. {spec.help} (default: {shown!s})".replace("%", "%%")}
        item = item_type(kind)
        if item is not None:
            kw |= {"nargs": "+", "type": item}
        elif kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = base_type(kind)
        if spec.choices and f.name != "model":  # a model may also be a hub id, a folder or a .safetensors file
            kw["choices"] = spec.choices
        parser.add_argument(flag, dest=f.name, default=f.default, **kw)
    parser.add_argument("--output-dir", help="Where to write (default: SDNB_OUTPUT_DIR or ./outputs).")
    parser.add_argument("--tiny", action="store_true", help="Tiny random models (a quick offline check).")


def params_from_args(args: argparse.Namespace, params_cls: type) -> Any:
    """Apply ``--output-dir`` and ``--tiny``; the ``params_cls`` the flags describe."""
    if args.output_dir:
        set_output_dir(args.output_dir)
    if args.tiny:
        set_tiny(True)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(params_cls)}
    return params_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def run_cli(call: Callable[[], Any], interrupted: str) -> tuple[Any, int | None]:
    """``(call(), None)``, or ``(None, exit code)`` after telling why on stderr (bad input, Ctrl-C)."""
    try:
        return call(), None
    except SdnbError as exc:
        print(f"error: {exc.message}" + (f"\nwhat to do: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return None, 2
    except KeyboardInterrupt:
        print(f"\nInterrupted: {interrupted}", file=sys.stderr)
        return None, 130


def _run_task(args: argparse.Namespace, params: Any) -> int:
    from .distributed import launched, run_task_distributed
    from .generate import run_task
    from .progress import ConsoleProgress

    def call() -> Any:
        run = run_task_distributed if launched() else run_task
        return run(params, progress=ConsoleProgress())

    result, code = run_cli(call, "the images finished so far are saved.")
    if code is not None:
        return code
    for seed, path in zip(result.seeds, result.paths, strict=True):
        print(f"seed {seed}: {path}")
    return 1 if result.interrupted else 0


def _walk_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preview", action="store_true", help="Only render a strip of a few frames (PNG).")
    parser.add_argument("--no-resume", action="store_true", help="Always start a new video folder.")


def _run_walk(args: argparse.Namespace, params: WalkParams) -> int:
    from .distributed import launched, render_walk_distributed
    from .images import save_image
    from .progress import ConsoleProgress
    from .settings import output_dir
    from .walk import preview_walk, render_walk

    several = launched()  # under `accelerate launch --num_processes N`: each process renders a share
    main_process = not several or process_rank() == 0
    if args.preview and not main_process:
        return 0

    def run() -> Any:
        if args.preview:
            preview = preview_walk(params, progress=ConsoleProgress())
            path = save_image(preview.grid, output_dir() / "walk-previews", stem="preview")
            return f"Preview strip: {path} (seeds {', '.join(map(str, preview.params.seeds))})"
        render = render_walk_distributed if several else render_walk
        return render(params, progress=ConsoleProgress(), resume=not args.no_resume)

    result, code = run_cli(run, "the partial video is playable; run the same command again to resume.")
    if code is not None:
        return code
    if not main_process:  # the main process assembled the video and reports it
        return 0
    if isinstance(result, str):
        print(result)
        return 0
    print(result.summary())
    return 0 if result.complete else 1


#: command -> (params class, extra flags, runner).
COMMANDS: dict[str, tuple[type, Callable[[argparse.ArgumentParser], None] | None, Callable[..., int]]] = {
    **{task: (cls, None, _run_task) for task, cls in PARAMS.items()},
    "walk": (WalkParams, _walk_flags, _run_walk),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sdnb",
        description="Stable Diffusion from a terminal: every notebook task, with the same parameters as its form. "
        "Each image is saved as a PNG with its parameters (WebUI format)." + _SPLIT,
    )
    sub = parser.add_subparsers(dest="command", metavar="TASK", required=True)
    for name, (cls, extra, _) in COMMANDS.items():
        about = _TASK_HELP.get(name) or (cls.__doc__ or name).strip().splitlines()[0]  # a new task: its params' doc
        task = sub.add_parser(name, help=about, description=about + _SPLIT)
        add_params(task, cls)
        if extra is not None:
            extra(task)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m sdnb txt2img --prompt "a cat"``; ``python -m sdnb walk --help`` lists a task's flags."""
    args = _parser().parse_args(argv)
    cls, _, runner = COMMANDS[args.command]
    return runner(args, params_from_args(args, cls))


def walk_main() -> int:
    """The ``sdnb-walk`` script: ``python -m sdnb walk`` under a shorter name."""
    return main(["walk", *sys.argv[1:]])
