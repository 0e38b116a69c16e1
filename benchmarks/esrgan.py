"""Real-ESRGAN x4plus: sdnb's tiled path against a loop written the way the original ``RealESRGANer`` does it.

    python -m benchmarks.esrgan --tiny                        # tiny random RRDBNet: seconds (tests)
    python -m benchmarks.esrgan --size 64 --tiles 32 64       # CPU: full x4plus shapes, 64 -> 256 px
    python -m benchmarks.esrgan --size 512 --tiles 128 256 512  # GPU: 512 -> 2048, fp16

Speed does not depend on weight values, so the full-size network (RRDBNet, 64 features, 23 blocks, 4x: the
shapes of RealESRGAN_x4plus) gets random weights, saved as ``.safetensors`` and loaded through
:func:`sdnb.upscalers.load_upscaler` (spandrel), as users load the real file; nothing is downloaded.

- **RealESRGANer-style loop**: per tile, the padded input tile (10 px) is cut from a float32 numpy image,
  moved to the device, run, and its output brought back to numpy, clamped, transposed, scaled to 0..255,
  rounded and cast to uint8, its padding cut off and the result pasted (no blending across tiles);
- **sdnb tiled**: :func:`sdnb.upscalers.upscale_image` (tiles overlapping by 32 px, feathered blending, a
  float band per tile row).

Both run once after a warm-up call on one tile. Time and peak memory are measured by
:func:`sdnb.compare.measure` (``torch.cuda.max_memory_allocated`` on CUDA; sampled process RSS on a CPU).
Then sdnb's peak memory and time at each ``--tiles`` size. Prints Markdown rows with device and date.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.walk import device_name
from sdnb.compare import measure
from sdnb.upscalers import Upscaler, load_upscaler, upscale_image

_TILE_PAD = 10  # RealESRGANer's default tile_pad


def x4plus_random(folder: Path, tiny: bool) -> Path:
    """A ``.safetensors`` RRDBNet with RealESRGAN_x4plus's shapes (or tiny ones) and random weights."""
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8 if tiny else 64, num_blocks=1 if tiny else 23, scale=4)
    path = folder / ("tiny_x4plus.safetensors" if tiny else "x4plus_random.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def realesrganer_loop(image: Image.Image, upscaler: Upscaler, tile: int) -> Image.Image:
    """The tile loop as ``RealESRGANer.tile_process`` writes it, with per-tile numpy post-processing."""
    rgb = np.asarray(image.convert("RGB")).astype(np.float32) / 255
    height, width = rgb.shape[:2]
    s = upscaler.scale
    out = np.zeros((height * s, width * s, 3), dtype=np.uint8)
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            py0, px0 = max(y0 - _TILE_PAD, 0), max(x0 - _TILE_PAD, 0)
            py1, px1 = min(y1 + _TILE_PAD, height), min(x1 + _TILE_PAD, width)
            crop = torch.from_numpy(np.transpose(rgb[py0:py1, px0:px1], (2, 0, 1)).copy()).unsqueeze(0)
            with torch.no_grad():
                result = upscaler.model(crop.to(upscaler.device, upscaler.dtype))
            piece = result.squeeze(0).float().cpu().clamp(0, 1).numpy()
            piece = (np.transpose(piece, (1, 2, 0)) * 255.0).round().astype(np.uint8)
            top, left = (y0 - py0) * s, (x0 - px0) * s
            out[y0 * s:y1 * s, x0 * s:x1 * s] = piece[top:top + (y1 - y0) * s, left:left + (x1 - x0) * s]
    return Image.fromarray(out, "RGB")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="A tiny RRDBNet (1 block, 8 features): seconds.")
    parser.add_argument("--size", type=int, default=0, help="Input size in px (default: 512 on a GPU, 64 on a CPU).")
    parser.add_argument("--tile", type=int, default=0, help="Tile of the comparison (default: sdnb's default).")
    parser.add_argument("--tiles", type=int, nargs="*", default=[], help="Tile sizes for the memory table.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on a CPU (0: torch's default).")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    size = args.size or (512 if cuda else 64)
    rng = np.random.default_rng(0)
    small = Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    with tempfile.TemporaryDirectory() as tmp:
        upscaler = load_upscaler(x4plus_random(Path(tmp), args.tiny))
        tile = args.tile or (512 if cuda else 256)
        upscale_image(small.crop((0, 0, 32, 32)), upscaler, tile=0)  # warm-up: kernels, allocator
        naive = measure("RealESRGANer-style loop", lambda: realesrganer_loop(small, upscaler, tile))
        overlap = min(32, tile // 4)  # sdnb's default, or a quarter of a small tile
        tiled = measure("sdnb tiled", lambda: upscale_image(small, upscaler, tile=tile, overlap=overlap))
        by_tile = []
        for t in args.tiles:  # overlap at most a quarter of the tile
            by_tile.append(measure(f"sdnb tile {t}", lambda t=t: upscale_image(small, upscaler, tile=t,
                                                                               overlap=min(32, t // 4))))
    dtype = str(upscaler.dtype).removeprefix("torch.")
    net = "tiny RRDBNet" if args.tiny else "RRDBNet x4plus shapes (random weights)"
    lines = [
        f"device: {device_name('cuda' if cuda else 'cpu')}, {dtype}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        f"date: {datetime.now(timezone.utc).date().isoformat()}",
        f"{net}, {size}x{size} -> {size * 4}x{size * 4}, tile {tile} (sdnb overlap {overlap}, loop pad {_TILE_PAD})",
        "",
        "| path | seconds | peak memory (MiB) |",
        "|---|---|---|",
    ]
    lines += [f"| {m.name} | {m.seconds:.3f} | {m.peak_bytes / 2**20:.0f} |" for m in (naive, tiled)]
    lines.append(f"ratio (loop seconds / sdnb seconds): {naive.seconds / tiled.seconds:.2f}x")
    if by_tile:
        lines += ["", "| sdnb tile (input px) | seconds | peak memory (MiB) |", "|---|---|---|"]
        lines += [f"| {t} | {m.seconds:.3f} | {m.peak_bytes / 2**20:.0f} |" for t, m in zip(args.tiles, by_tile,
                                                                                         strict=True)]
    report = "\n".join(lines)
    print(report)
    return report


if __name__ == "__main__":
    main()
