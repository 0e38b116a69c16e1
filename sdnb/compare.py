"""Upscalers side by side: the same input made larger several ways, each timed and its peak memory measured on
this machine, shown as one grid (whole results above, the same zoomed crop below) and a table.

Memory is what the method itself adds: on a CUDA GPU torch's peak allocation above what was allocated before;
on a CPU the process's peak resident memory above its level before, sampled every few milliseconds (so a very
short peak may be missed). Times include everything the method does, loading excepted when it was loaded before.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from PIL import Image

from .errors import SdnbError
from .fonts import use_in_matplotlib
from .images import image_grid

__all__ = ["Measured", "Comparison", "measure", "compare_upscalers", "upscaling_diagram"]


@dataclass
class Measured:
    """One method's result, with the seconds it took and the memory it added at its peak (bytes)."""

    name: str
    image: Image.Image
    seconds: float
    peak_bytes: int


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def measure(name: str, make: Callable[[], Image.Image]) -> Measured:
    """Run ``make()`` once and measure it (see the module's note on what memory means on each device)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        image = make()
        torch.cuda.synchronize()
        return Measured(name, image, time.perf_counter() - start, torch.cuda.max_memory_allocated() - before)
    before, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        image = make()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return Measured(name, image, seconds, max(0, max(peak[0], _rss()) - before))


@dataclass
class Comparison:
    """The measured results of several methods on one input; :meth:`grid` and :meth:`table` show them."""

    source: Image.Image
    results: list[Measured]
    device: str

    def grid(self, box: tuple[int, int, int, int] | None = None) -> Image.Image:
        """Each result whole (top row) and the same region zoomed (bottom row, nearest neighbour, so the pixels
        show as they are). ``box`` is (left, top, right, bottom) in the results' pixels; default: a square of a
        quarter of the width, in the centre."""
        size = self.results[0].image.size
        w, h = size
        if box is None:
            side = max(1, w // 4)
            box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
        left, top, right, bottom = box
        if not (0 <= left < right <= w and 0 <= top < bottom <= h):
            raise SdnbError(f"The zoom box {box} is not inside the {w}x{h} results.",
                            hint=f"Give (left, top, right, bottom) with 0 <= left < right <= {w} and "
                            f"0 <= top < bottom <= {h}.")
        whole = [m.image.convert("RGB").resize(size, Image.Resampling.LANCZOS) for m in self.results]
        crops = [image.crop(box).resize(size, Image.Resampling.NEAREST) for image in whole]
        return image_grid(whole + crops, cols=len(whole), col_labels=[m.name for m in self.results],
                          row_labels=["whole", f"zoom x{w // (right - left)}"])

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(method, output size, seconds, peak memory) as text, one row per method."""
        return [(m.name, f"{m.image.width}x{m.image.height}", f"{m.seconds:.2f}", _mib(m.peak_bytes))
                for m in self.results]

    def table(self) -> str:
        """The rows as a plain-text table (also shown as HTML in a notebook)."""
        header = ("method", "output", "seconds", "peak memory")
        widths = [max(len(row[i]) for row in [header, *self.rows()]) for i in range(4)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                 for row in [header, *self.rows()]]
        return "\n".join([f"Measured on {self.device}:", *lines])

    def _repr_html_(self) -> str:
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows())
        return (f"<p>Measured on {html.escape(self.device)}:</p><table><tr><th>method</th><th>output</th>"
                f"<th>seconds</th><th>peak memory</th></tr>{cells}</table>")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def compare_upscalers(source: Image.Image, methods: Mapping[str, Callable[[], Image.Image]]) -> Comparison:
    """Run each method once, in order, measuring each; every result must have the same size."""
    if not methods:
        raise SdnbError("Give at least one method to compare.", hint='e.g. {"Lanczos": lambda: lanczos_upscale(im)}')
    results = [measure(name, make) for name, make in methods.items()]
    sizes = {m.image.size for m in results}
    if len(sizes) > 1:
        listed = ", ".join(f"{m.name} {m.image.width}x{m.image.height}" for m in results)
        raise SdnbError(f"The methods made different sizes ({listed}), so they cannot be compared pixel for pixel.",
                        hint="Give every method the same output size.")
    return Comparison(source, results, _device_name())


def _device_name() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (GPU; memory = torch's peak allocation)"
    import platform

    return f"{platform.processor() or platform.machine()} CPU (memory = peak resident growth, sampled)"


#: The lanes of :func:`upscaling_diagram`: (name, colour, steps from the small picture to the large one).
_LANES = (
    ("Lanczos", "#eeeeee", ("small image", "interpolate pixels\n(a fixed formula)", "4x image:\nsmooth, no new detail")),
    ("Real-ESRGAN", "#cfe2ff", ("small image", "a network trained on\nphoto pairs, tile by tile", "4x image:\nsharp edges")),
    ("SD x4 upscaler", "#ffe5b4", ("small image\n+ prompt", "diffusion at 4x size,\nthe small image as a guide",
                                   "4x image:\ninvented detail")),
    ("Hires fix", "#d1f2d1", ("prompt: image at\nnative size", "enlarge (latent\nor Real-ESRGAN)",
                              "img2img at a denoising\nstrength: new detail")),
)


def upscaling_diagram() -> Figure:
    """The four ways of making a picture larger that the lesson compares, one lane each."""
    use_in_matplotlib()
    fig, ax = plt.subplots(figsize=(11, 4.4))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, len(_LANES) * 1.1)
    ax.axis("off")
    w, h, gap = 2.5, 0.8, 0.5
    for row, (name, colour, steps) in enumerate(_LANES):
        y = (len(_LANES) - 1 - row) * 1.1 + 0.15
        ax.text(0.1, y + h / 2, name, ha="left", va="center", fontsize=10, weight="bold")
        xs = [2.1 + i * (w + gap) for i in range(len(steps))]
        for x, text in zip(xs, steps, strict=True):
            ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.03", fc=colour, ec="#333333"))
            ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)
        for x in xs[:-1]:
            ax.add_patch(FancyArrowPatch((x + w + 0.04, y + h / 2), (x + w + gap - 0.04, y + h / 2),
                                         arrowstyle="-|>", mutation_scale=14))
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
    return fig
