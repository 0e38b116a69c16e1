"""Frames per second of an interpolation walk: the naive loop against sdnb's batched walk, in one process.

    python -m benchmarks.walk --tiny        # tiny random model on the CPU: seconds (CI, tests)
    python -m benchmarks.walk               # SD 1.5-shaped, random weights: 512x512, 50 steps, fp16 on a GPU
    python -m benchmarks.walk --size 256 --steps 10 --frames 4 --batch-size 4   # what a small CPU can do

Speed does not depend on weight values, so SD 1.5-shaped components with random weights stand in for the
real model: nothing is downloaded. Both paths use the same pipeline object, sampler, size, steps, dtype
and the same per-frame inputs (slerped noise, lerped embeddings):

- naive loop: one plain diffusers pipeline call per frame (batch 1), as frame-by-frame walkers do;
- sdnb walk: :func:`sdnb.walk.render_walk`, batches of frames in one call each; its time includes
  saving every PNG and encoding the MP4, the naive loop's does not.

Prints a Markdown table (frames/s, peak GPU memory) and the speed ratio; paste it into RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from datetime import date
from typing import Any

import torch

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
SD15_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 512,
}
SD15_TEXT = {  # CLIP ViT-L/14 text tower
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}


def sd15_random(device: str, dtype: torch.dtype) -> Any:
    """A StableDiffusionPipeline with SD 1.5's shapes and random weights, built directly on ``device``."""
    import diffusers
    import transformers

    from sdnb.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    text = dict(SD15_TEXT, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        unet = diffusers.UNet2DConditionModel(**SD15_UNET)
        vae = diffusers.AutoencoderKL(**SD15_VAE)
        text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(**text))
    scheduler = diffusers.PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                        beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1)
    pipe = diffusers.StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                             scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    diffusers.utils.logging.set_verbosity_error()  # "modules to keep in float32" notes: none apply here
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    pipe.sdnb_model, pipe.sdnb_family = "sd15 (random weights)", "sd15"
    return pipe


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model name and thread count."""
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    model = platform.processor() or "CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model} (CPU, {torch.get_num_threads()} threads)"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peak(device: str) -> str:
    return f"{torch.cuda.max_memory_allocated() / 1024**3:.1f} GB" if device == "cuda" else "n/a (CPU)"


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def run(args: argparse.Namespace) -> str:
    """Measure both paths; returns the report text."""
    if args.tiny:
        os.environ["SDNB_TINY"] = "1"
    from sdnb.models import load_pipeline
    from sdnb.params import WalkParams
    from sdnb.walk import Walker, render_walk, walk_batch_size, walk_plan

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    t0 = time.perf_counter()
    pipe = load_pipeline("sd15") if args.tiny else sd15_random(device, dtype)
    build_s = time.perf_counter() - t0
    size = args.size or (64 if args.tiny else 512)
    per_segment = max(1, -(-(args.frames - 1) // 2))  # 3 prompts: 2 segments and the closing frame
    params = WalkParams(
        prompts=("a lighthouse at dawn", "a lighthouse at night", "a lighthouse in a storm"),
        seeds=(1, 2, 3), frames=(per_segment,), steps=args.steps, width=size, height=size,
        batch_size=args.batch_size, name="bench",
    ).validate()
    plan = walk_plan(params)
    frames = list(range(len(plan)))

    warm = Walker(pipe, dataclasses.replace(params, steps=2), plan)
    batch = walk_batch_size(params)
    warm.render(frames[:1])
    warm.render(frames[:batch])  # both batch shapes once, so neither path pays first-call costs

    walker = Walker(pipe, params, plan)  # same inputs the walk uses
    _reset_peak(device)
    _sync(device)
    t0 = time.perf_counter()
    for j in frames:
        embeds, latents = walker.inputs([j])
        pipe(**embeds.as_kwargs(), latents=latents.to(device, dtype), height=size, width=size,
             num_inference_steps=params.steps, guidance_scale=params.cfg_scale, output_type="pil")
    _sync(device)
    naive_s, naive_mem = time.perf_counter() - t0, _peak(device)

    out = tempfile.mkdtemp(prefix="sdnb-bench-")
    os.environ["SDNB_OUTPUT_DIR"] = out
    try:
        _reset_peak(device)
        _sync(device)
        t0 = time.perf_counter()
        result = render_walk(params, pipe=pipe, resume=False)
        _sync(device)
        walk_s, walk_mem = time.perf_counter() - t0, _peak(device)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if not result.complete:
        raise SystemExit("the walk did not finish")

    import diffusers

    n = len(frames)
    kind = "tiny random model" if args.tiny else "SD 1.5-shaped UNet/VAE/CLIP, random weights"
    return "\n".join([
        f"benchmark: interpolation walk, {kind}",
        f"device: {device_name(device)}",
        f"date: {date.today().isoformat()}; torch {torch.__version__}, diffusers {diffusers.__version__}",
        f"settings: {size}x{size}, {params.steps} steps, CFG {params.cfg_scale:g}, {params.sampler}, "
        f"{str(dtype).removeprefix('torch.')}, {n} frames, walk batch size {batch} (model built in {build_s:.0f} s)",
        "",
        "| method | frames | seconds | frames/s | peak GPU memory |",
        "|---|---|---|---|---|",
        f"| naive loop (one pipeline call per frame) | {n} | {naive_s:.2f} | {n / naive_s:.3f} | {naive_mem} |",
        f"| sdnb walk (batch {batch}, PNGs + MP4 included) | {n} | {walk_s:.2f} | {n / walk_s:.3f} | {walk_mem} |",
        "",
        f"ratio (walk / naive frames/s): {naive_s / walk_s:.2f}x",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.walk", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny random model at 64x64 (seconds on a CPU)")
    ap.add_argument("--size", type=int, default=0, help="image size (default 512, tiny 64)")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default 50, tiny 10)")
    ap.add_argument("--frames", type=int, default=None, help="frames of the walk (default 17, tiny 9)")
    ap.add_argument("--batch-size", type=int, default=None, help="walk batch size (default: memory plan, tiny 4)")
    ap.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    args = ap.parse_args(argv)
    args.steps = args.steps or (10 if args.tiny else 50)
    args.frames = args.frames or (9 if args.tiny else 17)
    args.batch_size = args.batch_size if args.batch_size is not None else (4 if args.tiny else 0)
    warnings.filterwarnings("ignore")  # random weights overflow fp16 into NaN images: irrelevant to speed
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
