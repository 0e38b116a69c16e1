"""img2img's steps and a large input's memory (issue 17).

    python -m benchmarks.img2img --tiny          # tiny random SD 1.5 on the CPU: seconds
    python -m benchmarks.img2img --size 512      # real SD 1.5 (GPU, weights downloaded once)

1. **Strength 0.5 runs half the steps**: text to image and image to image (strength 0.5) with the same model,
   size, sampler and step count, timed in one run (after a warm-up of each); the ratio img2img / txt2img is
   expected near 0.5 plus the VAE encode of the source (the source is already at the output size here, so
   resizing is not timed).
2. **A large input, resized or not**: a 4000x3000 photo given to img2img is fitted to the output size first
   (:func:`sdnb.images.fit_image`); the peak memory of that run is compared with a run at the photo's own size
   cut to ``--large`` pixels (what would happen if the image went to the model unresized).

Time and memory come from :func:`sdnb.compare.measure` (CUDA peak allocation; sampled RSS on a CPU). Prints
Markdown rows with device and date for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import numpy as np
import torch
from PIL import Image

from benchmarks.walk import device_name
from sdnb.compare import measure
from sdnb.generate import img2img, txt2img
from sdnb.models import load_pipeline
from sdnb.params import Img2ImgParams, Txt2ImgParams
from sdnb.settings import set_tiny


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny random models (CPU, seconds)")
    ap.add_argument("--size", type=int, default=None, help="output size (default: 64 tiny, 512 real)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--large", type=int, default=None, help="side of the unresized run (default: 4x --size)")
    args = ap.parse_args(argv)
    if args.tiny:
        set_tiny(True)
    size = args.size or (64 if args.tiny else 512)
    large = args.large or 4 * size
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
    common = {"prompt": "a harbour at dawn", "steps": args.steps, "seed": 1, "width": size, "height": size}
    t2i = Txt2ImgParams(**common)
    i2i = Img2ImgParams(**common, image=photo.resize((size, size)), strength=0.5)  # steps only: no resize timed
    big = Img2ImgParams(**common, image=photo, strength=0.5)
    pipes = {"txt2img": load_pipeline("sd15", task="txt2img"), "img2img": load_pipeline("sd15", task="img2img")}
    txt2img(t2i, pipe=pipes["txt2img"], save=False)  # warm-up
    img2img(i2i, pipe=pipes["img2img"], save=False)
    a = measure("txt2img", lambda: txt2img(t2i, pipe=pipes["txt2img"], save=False).images[0])
    b = measure("img2img", lambda: img2img(i2i, pipe=pipes["img2img"], save=False).images[0])
    fitted = measure("fitted", lambda: img2img(big, pipe=pipes["img2img"], save=False).images[0])
    unresized = measure("unresized", lambda: img2img(big, pipe=pipes["img2img"], width=large, height=large,
                                                     save=False).images[0])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    mode = "tiny random SD 1.5" if args.tiny else "SD 1.5"
    print(f"device: {device_name(device)}; {mode}; {args.steps} steps; DPM++ 2M Karras; torch {torch.__version__}")
    print("| date | size | txt2img s | img2img (strength 0.5) s | ratio |")
    print("|---|---|---|---|---|")
    print(f"| {date} | {size}x{size} | {a.seconds:.3f} | {b.seconds:.3f} | {b.seconds / a.seconds:.2f} |")
    print("\n| date | 4000x3000 input | peak memory MB | s |")
    print("|---|---|---|---|")
    for label, m in ((f"fitted to {size}x{size}", fitted), (f"at {large}x{large}", unresized)):
        print(f"| {date} | {label} | {m.peak_bytes / 2**20:.0f} | {m.seconds:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
