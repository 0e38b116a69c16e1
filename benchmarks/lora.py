"""Seconds per image with 0, 1 and 2 LoRAs, unfused and fused (issue 19).

    python -m benchmarks.lora --tiny                    # tiny random SD 1.5 and its tiny LoRAs (CPU, seconds)
    python -m benchmarks.lora --loras NAME1 NAME2       # real SD 1.5 and two SD 1.5 LoRAs (folder names or hub ids)

Each row is one text-to-image run (same seed, size, steps) through the ordinary prompt path: the LoRAs are
``<lora:name:0.8>`` tags, loaded for the run and unloaded after it, so the time includes loading, setting the
weights, (fusing and unfusing) and unloading, as a user sees it. Fusing folds ``B·A`` into the weights once, so
its steps cost what the base model's cost; unfused LoRA layers add two thin matrix products per layer and step.
Prints Markdown rows (device, date, ratio to no LoRA) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import torch

from benchmarks.walk import device_name
from sdnb.compare import measure
from sdnb.generate import txt2img
from sdnb.models import load_pipeline
from sdnb.params import Txt2ImgParams
from sdnb.settings import set_lora_fuse, set_tiny


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny random model and tiny LoRAs (CPU, seconds)")
    ap.add_argument("--loras", nargs=2, default=None, help="two LoRA names (default in tiny mode: the tiny ones)")
    ap.add_argument("--size", type=int, default=None, help="output size (default: 64 tiny, 512 real)")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    if args.tiny:
        set_tiny(True)
    if not args.loras and not args.tiny:
        ap.error("give two SD 1.5 LoRAs with --loras NAME1 NAME2 (file names in the LoRA folder or hub ids)")
    names = args.loras or ["tiny_style", "tiny_detail"]
    size = args.size or (64 if args.tiny else 512)
    pipe = load_pipeline("sd15", task="txt2img")
    base = Txt2ImgParams(prompt="a harbour at dawn", steps=args.steps, seed=1, width=size, height=size)
    rows = []
    for fused in (False, True):
        set_lora_fuse(fused)
        for count in (0, 1, 2):
            if fused and count == 0:
                continue
            tags = " ".join(f"<lora:{name}:0.8>" for name in names[:count])
            p = Txt2ImgParams(**{**base.__dict__, "prompt": f"{base.prompt} {tags}".strip()})
            txt2img(p, pipe=pipe, save=False)  # warm-up (and the download of a hub LoRA)
            rows.append((count, fused, measure(f"{count} LoRA", lambda p=p: txt2img(p, pipe=pipe, save=False).images[0])))
    set_lora_fuse(False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    mode = "tiny random SD 1.5" if args.tiny else "SD 1.5"
    print(f"device: {device_name(device)}; date: {date}; {mode}; {size}x{size}; {args.steps} steps; "
          f"LoRAs: {', '.join(names)}; torch {torch.__version__}")
    print("| LoRAs | fused | s/image | ratio to no LoRA |")
    print("|---|---|---|---|")
    none = rows[0][2].seconds
    for count, fused, m in rows:
        print(f"| {count} | {'yes' if fused else 'no'} | {m.seconds:.3f} | {m.seconds / none:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
