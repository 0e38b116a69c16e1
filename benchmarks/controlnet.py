"""Seconds per image with 0, 1 and 2 ControlNet units, and their ratios to no ControlNet.

    python -m benchmarks.controlnet --tiny                 # tiny random models, 64x64, CPU: seconds
    python -m benchmarks.controlnet --size 512 --steps 20  # real SD 1.5 and ControlNets (needs the weights)

Every row renders the same prompt and seed through :func:`sdnb.generate.run_task` (nothing saved): no unit is
plain text to image, one unit a canny ControlNet, two units canny plus line art (MultiControlNet). Each row
has one warm-up image, then the median of ``--repeats`` images. The markdown table is printed; paste it into
RESULTS.md with the device and date.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

from PIL import Image, ImageDraw

from sdnb.generate import run_task
from sdnb.images import save_image, writable_folder
from sdnb.params import ControlNetParams, Txt2ImgParams
from sdnb.settings import output_dir, set_tiny


def _control_image(size: int) -> str:
    image = Image.new("RGB", (size, size), (200, 200, 200))
    ImageDraw.Draw(image).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=(30, 30, 30))
    return str(save_image(image, writable_folder(output_dir() / "benchmarks"), stem=f"control-{size}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny random models (offline, seconds)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if args.tiny:
        set_tiny(True)
    image = _control_image(args.size)
    common = {"prompt": "a house on a hill", "seed": 1, "steps": args.steps, "width": args.size, "height": args.size}
    rows = {
        0: Txt2ImgParams(**common),
        1: ControlNetParams(**common, control_image=image),
        2: ControlNetParams(**common, control_image=image, control2_module="lineart", control2_model="sd15-lineart",
                            control2_image=image),
    }
    seconds = {}
    for units, params in rows.items():
        run_task(params, save=False)  # warm-up: loading, first call
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run_task(params, save=False)
            times.append(time.perf_counter() - t0)
        seconds[units] = statistics.median(times)
    mode = "tiny random models" if args.tiny else "SD 1.5 + ControlNet 1.1"
    print(f"{date.today()}, {platform.processor() or platform.machine()}, {mode}, {args.size}x{args.size}, "
          f"{args.steps} steps, median of {args.repeats}")
    print("| units | s/image | ratio to 0 units |\n|---|---|---|")
    for units, s in seconds.items():
        print(f"| {units} | {s:.3f} | {s / seconds[0]:.2f}x |")


if __name__ == "__main__":
    main()
