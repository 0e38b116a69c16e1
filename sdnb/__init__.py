"""sdnb: the helper package behind the Stable Diffusion teaching notebooks.

Each module holds one idea; notebooks import what their lesson needs. The tasks and their parameters are
also importable from the package itself (loaded on first use, so ``import sdnb`` stays quick)::

    from sdnb import txt2img, Txt2ImgParams
    result = txt2img(Txt2ImgParams(prompt="a red fox in the snow", seed=42))
"""

import importlib
from typing import Any

from .errors import SdnbError
from .settings import is_tiny, output_dir, set_tiny

#: Names loaded on first use: ``sdnb.<name>`` -> module that defines it.
_LAZY = {
    **{name: "generate" for name in ("txt2img", "img2img", "inpaint", "depth2img", "upscale", "regenerate",
                                     "run_task")},
    **{name: "params" for name in ("Txt2ImgParams", "Img2ImgParams", "InpaintParams", "Depth2ImgParams",
                                   "UpscaleParams", "WalkParams")},
    **{name: "walk" for name in ("render_walk", "preview_walk")},
    "load_pipeline": "models",
}

__all__ = ["SdnbError", "is_tiny", "output_dir", "set_tiny", "__version__", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'sdnb' has no attribute {name!r}")

