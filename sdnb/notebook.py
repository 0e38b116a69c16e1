"""What every lesson starts and ends with: the mode banner plus preflight, and a check of what it wrote."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .device import Hardware, MemoryPlan, plan_memory, preflight
from .errors import SdnbError
from .images import read_infotext
from .settings import is_tiny, output_dir

__all__ = ["mode_banner", "start", "check_images"]

_TINY_HTML = (
    "<div style='border:3px solid #d9480f;background:#fff4e6;padding:8px 12px;font-size:15px'>"
    "<b>TINY MODE</b>: the models are tiny and have random weights, so every image is <b>noise by design</b>. "
    "Tiny mode checks that every cell runs (offline, in seconds). For real pictures, run on a GPU "
    "(Colab: Runtime → Change runtime type → T4 GPU) without <code>SDNB_TINY=1</code>.</div>"
)


def mode_banner() -> str:
    """HTML banner: loud in tiny mode, one quiet line in real mode."""
    if is_tiny():
        return _TINY_HTML
    return "<div style='color:#2b8a3e'>Real mode: models download from the Hugging Face hub on first use.</div>"


def start(family: str = "sd15") -> tuple[Hardware, MemoryPlan]:
    """Show the mode banner, the hardware and the memory plan for ``family``; return (hardware, plan)."""
    from IPython.display import HTML, display

    hw = preflight()
    plan = plan_memory(hw, family)
    display(HTML(mode_banner()))
    print(hw.summary())
    print(plan.summary())
    print(f"Outputs go to: {output_dir()}")
    return hw, plan


def check_images(paths: Sequence[str | os.PathLike], size: tuple[int, int], *, parameters: bool = True) -> str:
    """Confirm every image was written, at ``size``, with its parameters; raise if anything is missing."""
    from PIL import Image

    if not paths:
        raise SdnbError("This run saved no images.", hint="Run the generate cell again and watch for errors.")
    for path in map(Path, paths):
        if not path.is_file() or path.stat().st_size == 0:
            raise SdnbError(f"Expected image {path} is missing or empty.")
        with Image.open(path) as im:
            if im.size != tuple(size):
                raise SdnbError(f"{path.name} is {im.size[0]}x{im.size[1]}, expected {size[0]}x{size[1]}.")
        if parameters and not read_infotext(path):
            raise SdnbError(f"{path.name} has no 'parameters' text chunk.")
    return f"✓ {len(paths)} image(s) at {size[0]}x{size[1]} with parameters, in {Path(paths[0]).parent}"
