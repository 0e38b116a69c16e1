"""What every lesson starts and ends with: the banner and Colab set-up, the preflight, and a check of what it wrote.

:func:`setup` is the first cell of every notebook (after Colab's install): the tiny/real mode banner at the top,
what Colab needs for the widgets, and, on request, Google Drive as the output folder so files outlive the
Colab session. :func:`start` prints the hardware and the memory plan once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .device import Hardware, MemoryPlan, plan_memory, preflight
from .errors import SdnbError
from .images import read_infotext
from .settings import is_tiny, output_dir, set_output_dir

__all__ = ["mode_banner", "on_colab", "setup", "use_drive", "start", "check_images"]

#: Where Google Drive is mounted on Colab, and the folder in it that takes the outputs.
DRIVE_MOUNT = Path("/content/drive")
DRIVE_FOLDER = "sdnb"

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


def on_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def _colab_widgets() -> str:
    """Colab renders ipywidgets 7 itself; ipywidgets 8 (after an upgrade) needs its custom widget manager."""
    import ipywidgets

    if int(ipywidgets.__version__.split(".")[0]) < 8:
        return f"ipywidgets {ipywidgets.__version__} (Colab's own)"
    from google.colab import output

    output.enable_custom_widget_manager()
    return f"ipywidgets {ipywidgets.__version__}: Colab's custom widget manager enabled"


def use_drive(folder: str = DRIVE_FOLDER) -> Path:
    """Mount Google Drive (Colab asks for permission) and write every output to ``MyDrive/<folder>``.

    Files there survive the end of the Colab session: a stopped walk resumes from them in a new session.
    """
    if not on_colab():
        raise SdnbError("Google Drive can be mounted only on Colab.",
                        hint="Locally, set SDNB_OUTPUT_DIR to the folder you want instead.")
    from google.colab import drive

    drive.mount(str(DRIVE_MOUNT))
    path = DRIVE_MOUNT / "MyDrive" / folder
    set_output_dir(path)
    return output_dir()


def setup(*, drive: bool = False) -> None:
    """The top of every notebook: the mode banner, and on Colab its widgets and (``drive``) Google Drive."""
    from IPython.display import HTML, display

    display(HTML(mode_banner()))
    if on_colab():
        print(_colab_widgets())
        if drive:
            print(f"Outputs go to Google Drive: {use_drive()} (kept after this session ends)")
        else:
            print(f"Outputs go to {output_dir()} on Colab's temporary disk: use the download links, or tick "
                  "SAVE_TO_DRIVE above and run this cell again to keep them in Google Drive.")
    elif drive:
        print(f"SAVE_TO_DRIVE is for Colab; here outputs go to {output_dir()} (set SDNB_OUTPUT_DIR to change it).")


def start(family: str = "sd15") -> tuple[Hardware, MemoryPlan]:
    """Print the hardware and the memory plan for ``family`` (once) and the output folder; return both."""
    hw = preflight()
    plan = plan_memory(hw, family)
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
