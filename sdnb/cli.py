"""The terminal entry points' shared parts: flags built from a params dataclass, and friendly failures.

``python -m sdnb.video`` and ``python -m sdnb.generate`` both use them, so a field added to
:class:`~sdnb.walk.WalkParams` or :class:`~sdnb.params.Txt2ImgParams` is a flag at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from typing import Any

from .errors import SdnbError
from .params import base_type, item_type
from .settings import set_tiny

__all__ = ["params_parser", "parse_params", "run_cli"]


def params_parser(params_cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    """One flag per field of ``params_cls``, built from its type and :class:`~sdnb.params.Spec`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
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
        if spec.choices:
            kw["choices"] = spec.choices
        parser.add_argument(flag, dest=f.name, default=f.default, **kw)
    parser.add_argument("--output-dir", help="Where to write (default: SDNB_OUTPUT_DIR or ./outputs).")
    parser.add_argument("--tiny", action="store_true", help="Tiny random models (a quick offline check).")
    return parser


def parse_params(parser: argparse.ArgumentParser, params_cls: type, argv: list[str] | None) -> tuple[Any, Any]:
    """Parse ``argv``, apply ``--output-dir`` and ``--tiny``; returns (args, ``params_cls`` from the flags)."""
    args = parser.parse_args(argv)
    if args.output_dir:
        os.environ["SDNB_OUTPUT_DIR"] = args.output_dir
    if args.tiny:
        set_tiny(True)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(params_cls)}
    return args, params_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def run_cli(call: Any, interrupted: str) -> tuple[Any, int | None]:
    """``(call(), None)``, or ``(None, exit code)`` after telling why on stderr (bad input, Ctrl-C)."""
    try:
        return call(), None
    except SdnbError as exc:
        print(f"error: {exc.message}" + (f"\nwhat to do: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return None, 2
    except KeyboardInterrupt:
        print(f"\nInterrupted: {interrupted}", file=sys.stderr)
        return None, 130
