"""Speed and memory of SD 1.5 and SDXL: plain diffusers defaults against sdnb's memory plan, side by side.

    python -m benchmarks.run --device cpu --tiny --threads 1   # tiny random models: seconds (CI, tests)
    python -m benchmarks.run --device cpu --cpu-full --threads 1  # SD 1.5 shapes at 256 px, 2 steps: 2-3 min
    python -m benchmarks.run --device cuda --families sd15 --compile   # SD 1.5 at 512x512, fp16
    python -m benchmarks.run --device cuda --families sdxl --compile   # SDXL at 1024x1024, fp16

Speed does not depend on weight values, so full-size components (the real SD 1.5 and SDXL base configs,
written inline) get random weights: nothing is downloaded. They are saved with ``save_pretrained`` to a
temporary folder once per family and every row loads them back with ``from_pretrained``, the real loading
path, so host RAM while loading is measured on the path users take. With ``--tiny``, sdnb's tiny models
(:func:`sdnb.tiny.tiny_model_dir`) stand in. Rows, per family:

- **diffusers defaults**: ``from_pretrained(dtype=<the plan's dtype>)`` and ``.to(device)``, nothing else;
- **sdnb plan**: :func:`sdnb.models.load_pipeline` with ``plan_memory(preflight(), family)`` applied;
- **sdnb plan + torch.compile** (``--compile``): the same plan with ``compile=True``.

Measured in each row: UNet it/s at batch 1 (N UNet calls with the classifier-free-guidance batch of 2,
after a warm-up call whose time is reported separately: for compiled rows, the compile time); the
denoising-loop it/s the user sees (step-end callbacks, synchronised) and images/s of whole pipeline calls
at batch 1 and at the plan's batch size; interpolation-walk frames/s at 50 and 25 steps with
:func:`sdnb.walk.render_walk` (saving PNGs and encoding the MP4 included); peak memory of each of those
(``torch.cuda.max_memory_allocated`` on CUDA, process RSS on CPU) and peak host RSS while loading (psutil,
sampled every 5 ms in a thread). UNet FLOPs of one step are counted once per family with
``torch.utils.flop_counter.FlopCounterMode``; achieved TFLOP/s = FLOPs x UNet it/s, compared with the GPU's
dense fp16/bf16 tensor peak where the GPU is in :data:`PEAK_TFLOPS`.

The report goes into its own delimited section of ``--out`` (one section per device and mode; a run
replaces only its own section).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import psutil
import torch

from benchmarks.walk import SD15_TEXT, SD15_VAE, device_name, sd15_random
from sdnb.models import clear_cache

_GB = 1024**3
T = TypeVar("T")

#: SDXL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0), the config values that differ from the defaults.
SDXL_UNET = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (320, 640, 1280),
    "layers_per_block": 2,
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}
SDXL_VAE = dict(SD15_VAE, sample_size=1024, scaling_factor=0.13025, force_upcast=True)
SDXL_TEXT_2 = dict(  # OpenCLIP ViT-bigG/14 text tower, with its projection
    SD15_TEXT,
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=20,
    hidden_act="gelu",
    projection_dim=1280,
)
SDXL_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "timestep_spacing": "leading",
    "steps_offset": 1,
}

#: Dense fp16/bf16 tensor-core peak TFLOP/s (NVIDIA data sheets), matched in order on the device name.
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("T4", 65.0),
)

MODES = {"tiny": "Tiny shapes", "cpu-full": "SD 1.5 shapes at a small size", "full": "Full size"}
SETUPS = ("diffusers defaults", "sdnb plan", "sdnb plan + torch.compile")
PROMPTS = ("a lighthouse on a cliff at dawn, watercolor", "a lighthouse on a cliff at night, watercolor")


def peak_tflops(name: str) -> float | None:
    """The GPU's dense fp16/bf16 peak from :data:`PEAK_TFLOPS`, or None when it is not listed."""
    return next((peak for key, peak in PEAK_TFLOPS if key.lower() in name.lower()), None)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def sdxl_random(device: str, dtype: torch.dtype) -> Any:
    """A StableDiffusionXLPipeline with SDXL base's shapes and random weights, created on ``device`` in ``dtype``.

    Created in ``dtype`` directly (not float32 then cast), so a 15 GB GPU can build it.
    """
    import diffusers
    import transformers

    from sdnb.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(0)
    with torch.device(device), _default_dtype(dtype):
        unet = diffusers.UNet2DConditionModel(**SDXL_UNET)
        vae = diffusers.AutoencoderKL(**SDXL_VAE)
        text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(**SD15_TEXT, **ids))
        text_encoder_2 = transformers.CLIPTextModelWithProjection(transformers.CLIPTextConfig(**SDXL_TEXT_2, **ids))
    return diffusers.StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer, unet=unet, scheduler=diffusers.EulerDiscreteScheduler(**SDXL_SCHEDULER),
    ).to(device, dtype)


def model_folder(family: str, tiny: bool, device: str, dtype: torch.dtype, tmp: Path) -> Path:
    """A diffusers folder of ``family``: sdnb's tiny model, or full-size random weights saved under ``tmp``."""
    if tiny:
        from sdnb.tiny import tiny_model_dir

        return tiny_model_dir(family)
    pipe = sdxl_random(device, dtype) if family == "sdxl" else sd15_random(device, dtype)
    folder = tmp / family
    pipe.save_pretrained(folder, safe_serialization=True)
    del pipe
    clear_cache()
    return folder


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Peak:
    """Time and peak memory over a ``with`` block: torch's CUDA allocations and the process RSS (5 ms samples)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds = self.rss_before = self.rss_peak = 0.0
        self.gpu_peak: float | None = None
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _rss(self) -> float:
        return self._proc.memory_info().rss / _GB

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.rss_peak = max(self.rss_peak, self._rss())

    def __enter__(self) -> Peak:
        gc.collect()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.rss_before = self.rss_peak = self._rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self.rss_peak = max(self.rss_peak, self._rss())
        if self.device == "cuda":
            self.gpu_peak = torch.cuda.max_memory_allocated() / _GB

    @property
    def memory(self) -> float:
        """Peak GPU memory on CUDA, else peak process RSS (GB)."""
        return self.gpu_peak if self.gpu_peak is not None else self.rss_peak


def _is_oom(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, torch.cuda.OutOfMemoryError) or "out of memory" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def attempt(fn: Callable[[], T]) -> T | str:
    """``fn()``, or ``"OOM"`` when it ran out of memory (the row goes on with its next measurement)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - only out-of-memory is a result; anything else is re-raised
        if not _is_oom(exc):
            raise
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return "OOM"


def unet_inputs(pipe: Any, size: int) -> dict[str, Any]:
    """Random UNet inputs for one denoising step at batch 1: the CFG batch of 2 (negative and positive)."""
    unet, dev = pipe.unet, pipe._execution_device
    cfg = unet.config
    latent = size // pipe.vae_scale_factor
    kw: dict[str, Any] = {"device": dev, "dtype": unet.dtype}
    inputs: dict[str, Any] = {
        "sample": torch.randn(2, cfg.in_channels, latent, latent, **kw),
        "timestep": torch.tensor(500, device=dev),
        "encoder_hidden_states": torch.randn(2, 77, cfg.cross_attention_dim, **kw),
    }
    if cfg.addition_embed_type == "text_time":  # SDXL: pooled text embedding and 6 size/crop numbers
        pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        inputs["added_cond_kwargs"] = {"text_embeds": torch.randn(2, pooled, **kw), "time_ids": torch.randn(2, 6, **kw)}
    return inputs


def count_flops(unet: Any, inputs: dict[str, Any]) -> int:
    """FLOPs of one UNet call, counted with FlopCounterMode (CPU flash attention included)."""
    from torch.utils import flop_counter

    def cpu_sdpa(*args: Any, **kwargs: Any) -> int:  # torch counts only the CUDA attention kernels
        return flop_counter.sdpa_flop(*args, **kwargs)

    cpu_sdpa._get_raw = True  # type: ignore[attr-defined]  # sdpa_flop already unpacks the shapes
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
    counter = flop_counter.FlopCounterMode(display=False, custom_mapping=mapping)
    with torch.no_grad(), counter:
        unet(**inputs)
    return counter.get_total_flops()


def time_unet(pipe: Any, inputs: dict[str, Any], iters: int, device: str) -> tuple[float, float, float]:
    """(first call s, UNet it/s over ``iters`` calls after it, peak memory GB)."""
    with torch.no_grad():
        t0 = time.perf_counter()
        pipe.unet(**inputs)
        _sync(device)
        first = time.perf_counter() - t0
        with Peak(device) as peak:
            for _ in range(iters):
                pipe.unet(**inputs)
    return first, iters / peak.seconds, peak.memory


def time_images(pipe: Any, batch: int, size: int, steps: int, device: str) -> tuple[float, float, float]:
    """(images/s, denoising-loop it/s, peak memory GB) of one pipeline call at ``batch``, after a 1-step warm-up."""
    stamps: list[float] = []

    def on_step(p: Any, i: int, t: Any, kwargs: dict) -> dict:
        _sync(device)
        stamps.append(time.perf_counter())
        return kwargs

    def call(n: int) -> None:
        pipe(PROMPTS[0], num_images_per_prompt=batch, height=size, width=size, num_inference_steps=n,
             output_type="pil", callback_on_step_end=on_step)

    call(1)
    stamps.clear()
    with Peak(device) as peak:
        call(steps)
    loop = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else math.nan
    return batch / peak.seconds, loop, peak.memory


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def time_walks(
    pipe: Any, family: str, size: int, batch: int, steps: tuple[int, ...], device: str
) -> list[tuple[float, float]]:
    """(frames/s, peak memory GB) of a ``max(2, batch)``-frame walk at each step count (PNGs + MP4 included)."""
    from sdnb.params import WalkParams
    from sdnb.walk import render_walk

    frames = max(2, batch)  # one full batch: 2 prompts, frames - 1 between them and the closing frame
    params = WalkParams(prompts=PROMPTS, seeds=(1, 2), frames=(frames - 1,), steps=2, width=size, height=size,
                        batch_size=batch, model=family, name=f"bench-{family}")
    results = []
    with tempfile.TemporaryDirectory(prefix="sdnb-bench-walk-") as out, _env("SDNB_OUTPUT_DIR", out):
        render_walk(params, pipe=pipe, resume=False)  # warm-up: the same batch shapes, 2 steps
        for n in steps:
            with Peak(device) as peak:
                result = render_walk(dataclasses.replace(params, steps=n), pipe=pipe, resume=False)
            if not result.complete:
                raise RuntimeError(f"the {n}-step walk did not finish")
            results.append((frames / peak.seconds, peak.memory))
    return results


Value = float | str | None  # a number, "OOM", or None (not measured in this run)


@dataclass
class Row:
    """One setup of one family, every figure measured for it."""

    family: str
    setup: str
    batch: int
    load_s: float
    load_rss: float
    load_rss_delta: float
    first_call_s: Value = None
    unet_its: Value = None
    loop_its: Value = None
    images_1: Value = None
    images_b: Value = None
    mem_unet: Value = None
    mem_1: Value = None
    mem_b: Value = None
    walks: dict[int, tuple[Value, Value]] = field(default_factory=dict)  # steps -> (frames/s, peak memory)


@dataclass
class Config:
    """What to run: device, shapes, sizes and counts (from the command line)."""

    device: str
    tiny: bool
    families: tuple[str, ...]
    sizes: dict[str, int]
    steps: int
    walk_steps: tuple[int, ...]
    unet_iters: int
    compile: bool
    mode: str


def load_row(setup: str, family: str, folder: Path, plan: Any, device: str) -> tuple[Any, Peak]:
    """Load the pipeline of one row, measuring time and host RSS while loading."""
    import diffusers

    from sdnb.models import PIPELINES, load_pipeline

    with Peak(device) as peak:
        if setup == SETUPS[0]:
            cls = getattr(diffusers, PIPELINES["txt2img"][family])
            pipe = cls.from_pretrained(folder, dtype=plan.dtype, use_safetensors=True).to(device)
            pipe.set_progress_bar_config(disable=True)
        else:
            pipe = load_pipeline(folder, family=family, plan=plan)
    return pipe, peak


def measure_row(setup: str, family: str, folder: Path, plan: Any, cfg: Config, flops: dict[str, int]) -> Row:
    """Load one setup of ``family`` and take every measurement; out-of-memory becomes "OOM" in its cell."""
    pipe, load = load_row(setup, family, folder, plan, cfg.device)
    row = Row(family, setup, plan.batch_size, load.seconds, load.rss_peak, load.rss_peak - load.rss_before)
    _measure(row, pipe, cfg, flops)
    del pipe
    clear_cache()  # sdnb's cached pipeline goes too: one pipeline in memory at a time
    return row


def _measure(row: Row, pipe: Any, cfg: Config, flops: dict[str, int]) -> None:
    size, device, batch = cfg.sizes[row.family], cfg.device, row.batch
    inputs = unet_inputs(pipe, size)
    unet = attempt(lambda: time_unet(pipe, inputs, cfg.unet_iters, device))
    row.first_call_s, row.unet_its, row.mem_unet = unet if isinstance(unet, tuple) else (unet,) * 3
    if isinstance(unet, tuple) and row.family not in flops:
        flops[row.family] = count_flops(pipe.unet, inputs)
    one = attempt(lambda: time_images(pipe, 1, size, cfg.steps, device))
    row.images_1, row.loop_its, row.mem_1 = one if isinstance(one, tuple) else (one,) * 3
    if batch > 1:
        many = attempt(lambda: time_images(pipe, batch, size, cfg.steps, device))
        row.images_b, _, row.mem_b = many if isinstance(many, tuple) else (many,) * 3
    if cfg.walk_steps:
        walks = attempt(lambda: time_walks(pipe, row.family, size, batch, cfg.walk_steps, device))
        per_step = walks if isinstance(walks, list) else [(walks, walks)] * len(cfg.walk_steps)
        row.walks = dict(zip(cfg.walk_steps, per_step, strict=True))


def _num(v: Value, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if math.isnan(v):
        return "n/a"
    text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:#.3g}"
    return text + unit


def _tflops(row: Row, flops: dict[str, int]) -> float | None:
    its = row.unet_its
    return flops[row.family] * its / 1e12 if isinstance(its, float) and row.family in flops else None


def _mem(cfg: Config) -> str:
    return "peak GPU memory" if cfg.device == "cuda" else "peak RSS"


def speed_table(rows: list[Row], flops: dict[str, int], cfg: Config, gpu: str | None) -> list[str]:
    """The speed table, one line per row."""
    peak = peak_tflops(gpu) if gpu else None
    walk_cols = "".join(f" walk frames/s, {n} steps |" for n in cfg.walk_steps)
    lines = [
        f"| family | setup | UNet it/s (batch 1, CFG) | TFLOP/s | of peak | loop it/s (batch 1) | images/s (batch 1) "
        f"| images/s (plan batch) |{walk_cols} first UNet call s |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(cfg.walk_steps) + "---|",
    ]
    for r in rows:
        achieved = _tflops(r, flops)
        share = _num(100 * achieved / peak, "%") if achieved is not None and peak else "unknown"
        many = f"{_num(r.images_b)} (batch {r.batch})" if r.batch > 1 else "= batch 1"
        walks = "".join(f" {_num(r.walks.get(n, (None,))[0])} |" for n in cfg.walk_steps)
        lines.append(f"| {r.family} | {r.setup} | {_num(r.unet_its)} | {_num(achieved)} | {share} | {_num(r.loop_its)} "
                     f"| {_num(r.images_1)} | {many} |{walks} {_num(r.first_call_s)} |")
    return lines


def memory_table(rows: list[Row], cfg: Config) -> list[str]:
    """The memory table, one line per row (GB)."""
    walk_cols = "".join(f" walk, {n} steps |" for n in cfg.walk_steps)
    lines = [
        f"| family | setup | load s | peak RSS while loading (+ over before) | {_mem(cfg)}: UNet batch 1 "
        f"| image batch 1 | image plan batch |{walk_cols}",
        "|---|---|---|---|---|---|---|" + "---|" * len(cfg.walk_steps),
    ]
    for r in rows:
        walks = "".join(f" {_num(r.walks.get(n, (None, None))[1], ' GB')} |" for n in cfg.walk_steps)
        many = _num(r.mem_b, " GB") if r.batch > 1 else "= batch 1"
        lines.append(f"| {r.family} | {r.setup} | {_num(r.load_s)} | {_num(r.load_rss, ' GB')} "
                     f"(+{_num(r.load_rss_delta, ' GB')}) | {_num(r.mem_unet, ' GB')} | {_num(r.mem_1, ' GB')} "
                     f"| {many} |{walks}")
    return lines


def _best(rows: list[Row], family: str, attr: str, pick: Callable[..., Any]) -> Value:
    values = [getattr(r, attr) for r in rows if r.family == family and r.setup != SETUPS[0]]
    numbers = [v for v in values if isinstance(v, float) and not math.isnan(v)]
    return pick(numbers) if numbers else ("OOM" if "OOM" in values else None)


def _ran_out(row: Row) -> bool:
    """Whether any measurement of ``row`` ran out of memory."""
    cells = [row.unet_its, row.images_1, row.images_b, *(fps for fps, _ in row.walks.values())]
    return "OOM" in cells


def targets_table(rows: list[Row], cfg: Config, gpu: str | None, vram: float | None) -> list[str]:
    """Issue 10's targets, judged on this run's sdnb-plan rows where the device is of the target's class."""
    h100 = gpu is not None and any(k in gpu for k in ("H100", "H200"))
    t4 = gpu is not None and ("T4" in gpu or (vram or 99) <= 16)
    ran = {r.family for r in rows}

    def judge(cls_ok: bool, cls: str, family: str, value: Value, ok: Callable[[float], bool], unit: str) -> str:
        if cfg.device != "cuda":
            return "– | not yet measured (no GPU in this session)"
        if not cls_ok or family not in ran or cfg.tiny:
            return f"– | not yet measured (no {cls} GPU / {family} full-size run in this session)"
        if not isinstance(value, float):
            return f"{_num(value)} | fails" if value == "OOM" else "– | not measured"
        return f"{_num(value, unit)} | {'met' if ok(value) else 'NOT met'}"

    xl_plan = [r for r in rows if r.family == "sdxl" and r.setup == SETUPS[1]]
    xl_ok = "OOM" if any(_ran_out(r) for r in xl_plan) else _best(rows, "sdxl", "images_1", max)
    lines = ["| target (issue 10) | measured (sdnb plan, best row) | status |", "|---|---|---|"]
    lines.append("| H100-class, SD 1.5 512x512, batch 1: at least 54 it/s | "
                 + judge(h100, "H100-class", "sd15", _best(rows, "sd15", "loop_its", max), lambda v: v >= 54, " it/s")
                 + " |")
    lines.append("| H100-class, SDXL 1024x1024, batch 1: at least 15 it/s | "
                 + judge(h100, "H100-class", "sdxl", _best(rows, "sdxl", "loop_its", max), lambda v: v >= 15, " it/s")
                 + " |")
    lines.append("| 15 GB T4-class, SDXL 1024x1024: runs without out-of-memory | "
                 + judge(t4, "T4-class", "sdxl", xl_ok, lambda v: v > 0, " images/s") + " |")
    lines.append("| 15 GB T4-class, SD 1.5 512x512 batch 1: peak VRAM under 3 GB | "
                 + judge(t4, "T4-class", "sd15", _best(rows, "sd15", "mem_1", min), lambda v: v < 3, " GB") + " |")
    for family in ("sd15", "sdxl"):
        value: Value = max((r.load_rss for r in rows if r.family == family), default=None)
        if cfg.device != "cuda" or value is None:
            why = ("no GPU in this session; on a CPU the weights stay memory-mapped until first used"
                   if cfg.device != "cuda" else f"no {family} run here")
            status = f"– | not yet measured ({why})"
        elif cfg.tiny:
            status = "– | not yet measured (tiny shapes here)"
        else:
            status = f"{_num(value, ' GB')} | {'met' if value <= 10 else 'NOT met'}"
        lines.append(f"| {family} loading never needs more than 10 GB host RAM (process peak RSS) | {status} |")
    return lines


def plan_check(rows: list[Row], cfg: Config) -> list[str]:
    """On CUDA: the plan's memory estimates (sdnb.device) next to what the sdnb-plan rows measured."""
    from sdnb.device import ACTIVATION_GB, WEIGHTS_GB
    from sdnb.registry import native_size

    if cfg.device != "cuda" or cfg.tiny:
        return []
    lines = ["", "The plan's estimates against the measurement (sdnb plan rows):"]
    for r in rows:
        if r.setup != SETUPS[1]:
            continue
        act = ACTIVATION_GB[r.family] * (cfg.sizes[r.family] / native_size(r.family)) ** 2
        text = (f"- {r.family}: plan assumes {WEIGHTS_GB[r.family]:.1f} GB of weights + {act:.1f} GB per image; "
                f"measured peak {_num(r.mem_1, ' GB')} at batch 1")
        if r.batch > 1 and isinstance(r.mem_b, float) and isinstance(r.mem_1, float):
            text += (f", {_num(r.mem_b, ' GB')} at batch {r.batch}: "
                     f"{_num((r.mem_b - r.mem_1) / (r.batch - 1), ' GB')} per extra image")
        lines.append(text)
    return lines


def report(rows: list[Row], flops: dict[str, int], plans: dict[str, str], cfg: Config, argv: list[str]) -> str:
    """The Markdown section for this run."""
    import diffusers
    import transformers

    gpu = torch.cuda.get_device_name(0) if cfg.device == "cuda" else None
    vram = torch.cuda.get_device_properties(0).total_memory / _GB if gpu else None
    versions = f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}"
    if gpu:
        versions += f", CUDA {torch.version.cuda}"
    shapes = ("tiny random-weight stand-ins (sdnb.tiny)" if cfg.tiny else
              "full-size SD 1.5 / SDXL base configs, random weights, saved and loaded with from_pretrained")
    sizes = ", ".join(f"{f} {cfg.sizes[f]}x{cfg.sizes[f]}" for f in cfg.families)
    dtype = "float16" if cfg.device == "cuda" else "float32"
    lines = [
        f"### {MODES[cfg.mode]}: {device_name(cfg.device)}",
        "",
        f"- command: `python -m benchmarks.run {' '.join(argv)}`",
        f"- date: {datetime.now(timezone.utc).date().isoformat()} (UTC); {versions}",
        f"- shapes: {shapes}; {sizes}; {dtype}; images/s at {cfg.steps} steps; UNet it/s over {cfg.unet_iters} "
        "calls after one warm-up call",
        *(["- tiny shapes prove that the harness runs; their speeds say nothing about real models, and on a "
            "shared CPU they vary a lot from run to run"] if cfg.tiny else []),
        "- walks: sdnb.walk.render_walk, 2 prompts, one batch of max(2, plan batch) frames, saving PNGs and "
        "encoding the MP4 included" if cfg.walk_steps else "- walks: not run in this mode (too slow)",
        f"- memory: {_mem(cfg)} of each measurement; loading: process peak RSS (psutil, 5 ms samples; it "
        "includes the memory-mapped weight files and everything the process already held"
        + ("; on a CPU the weights stay memory-mapped until first used, so the later columns show them)"
           if cfg.device == "cpu" else ")"),
        "",
        *speed_table(rows, flops, cfg, gpu),
        "",
        *memory_table(rows, cfg),
        "",
        "UNet FLOPs per denoising step at batch 1 (one call with the CFG batch of 2, FlopCounterMode):",
        *(f"- {f}: {flops[f]:,} FLOPs ({_num(flops[f] / 1e9)} GFLOP)" if f in flops else f"- {f}: not counted (OOM)"
          for f in cfg.families),
        "",
        "Memory plans used:",
        *(f"- {f}: {plans[f]}" for f in cfg.families),
        *plan_check(rows, cfg),
        "",
        *targets_table(rows, cfg, gpu, vram),
    ]
    return "\n".join(lines)


HEADER = """# Benchmark harness results (`python -m benchmarks.run`)

One section per device, shapes and families; each run replaces only its own section. GPU sections appear when
the harness runs on a GPU (`python -m benchmarks.run --device cuda --families sd15 --compile`, then `sdxl`);
until then every GPU target below reads "not yet measured".
"""


def write_section(path: Path, key: str, body: str) -> None:
    """Put ``body`` between this run's markers in ``path``, replacing an older copy or appending; other text stays."""
    begin, end = f"<!-- benchmarks.run {key} begin -->", f"<!-- benchmarks.run {key} end -->"
    block = f"{begin}\n{body}\n{end}"
    text = path.read_text() if path.is_file() else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def section_key(cfg: Config) -> str:
    """One section per device, shapes and families, e.g. ``cpu-tiny-sd15-sdxl`` or ``nvidia-h100-80gb-hbm3-full-sd15``."""
    name = torch.cuda.get_device_name(0) if cfg.device == "cuda" else "cpu"
    text = f"{name} {'tiny' if cfg.tiny else 'full'} {' '.join(cfg.families)}"
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _quiet_and_imported() -> None:
    """No loading bars; pipeline and text-encoder modules imported, so the first row's load time is like the others'."""
    import diffusers
    import transformers

    from sdnb.models import PIPELINES

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    for name in PIPELINES["txt2img"].values():
        getattr(diffusers, name)
    _ = transformers.CLIPTextModel, transformers.CLIPTextModelWithProjection, diffusers.AutoencoderKL


def run(cfg: Config, argv: list[str]) -> tuple[str, str]:
    """Measure every family and setup; returns (section key, Markdown section)."""
    from sdnb.device import plan_memory, preflight

    rows: list[Row] = []
    flops: dict[str, int] = {}
    plans: dict[str, str] = {}
    _quiet_and_imported()
    with tempfile.TemporaryDirectory(prefix="sdnb-bench-models-") as tmp:
        for family in cfg.families:
            size = cfg.sizes[family]
            dtype = torch.float16 if cfg.device == "cuda" else torch.float32  # what plan_memory picks
            folder = model_folder(family, cfg.tiny, cfg.device, dtype, Path(tmp))
            if cfg.device == "cuda":
                torch.cuda.empty_cache()  # the plan sees the free memory the rows will have
            hw = dataclasses.replace(preflight(), device=cfg.device)
            plan = plan_memory(hw, family, size, size)
            head, *why = plan.summary().splitlines()
            plans[family] = f"{head.removeprefix('Memory plan: ')} ({'; '.join(w.strip(' -').rstrip('.') for w in why)})"
            setups = {SETUPS[0]: plan, SETUPS[1]: plan}
            if cfg.compile:
                setups[SETUPS[2]] = plan_memory(hw, family, size, size, compile=True)
            for setup, setup_plan in setups.items():
                print(f"[benchmarks.run] {family}: {setup}", file=sys.stderr, flush=True)
                rows.append(measure_row(setup, family, folder, setup_plan, cfg, flops))
            shutil.rmtree(Path(tmp) / family, ignore_errors=True)
    return section_key(cfg), report(rows, flops, plans, cfg, argv)


def config(args: argparse.Namespace) -> Config:
    """Resolve the command line into a :class:`Config` (defaults depend on device and mode)."""
    from sdnb.registry import native_size

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible to torch")
    full_cpu = args.cpu_full and args.device == "cpu"
    tiny = args.tiny or (args.device == "cpu" and not full_cpu)
    mode = "tiny" if tiny else "cpu-full" if full_cpu else "full"
    families = tuple(f.strip() for f in (args.families or ("sd15" if full_cpu else "sd15,sdxl")).split(",") if f.strip())
    for f in families:
        if f not in ("sd15", "sdxl"):
            raise SystemExit(f"unknown family {f!r}: use sd15 and/or sdxl")
    if tiny:
        os.environ["SDNB_TINY"] = "1"
    else:
        os.environ.pop("SDNB_TINY", None)
    default_size = 256 if full_cpu else 0  # 256 px: the smallest size sdnb accepts for SD 1.5
    sizes = {f: args.size or default_size or native_size(f) for f in families}
    walk = args.walk_steps if args.walk_steps is not None else ("" if full_cpu else "50,25")
    return Config(
        device=args.device,
        tiny=tiny,
        families=families,
        sizes=sizes,
        steps=args.steps or (2 if full_cpu else 10 if tiny else 50),
        walk_steps=tuple(int(s) for s in walk.split(",") if s.strip()),
        unet_iters=args.unet_iters or (2 if full_cpu else 10 if tiny else 30),
        compile=args.compile,
        mode=mode,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny random models (the default on CPU)")
    ap.add_argument("--cpu-full", action="store_true", help="on CPU: SD 1.5 shapes at 256 px, 2 steps, no walks")
    ap.add_argument("--families", default="", help="comma-separated: sd15,sdxl (default both; sd15 with --cpu-full)")
    ap.add_argument("--size", type=int, default=0, help="image size for every family (default: native)")
    ap.add_argument("--steps", type=int, default=0, help="steps of the images/s calls (default 50; tiny 10)")
    ap.add_argument("--walk-steps", default=None, help="step counts of the walk rows (default 50,25; '' = none)")
    ap.add_argument("--unet-iters", type=int, default=0, help="timed UNet calls (default 30; tiny 10)")
    ap.add_argument("--compile", action="store_true", help="add the sdnb plan + torch.compile row")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config(args)
    warnings.filterwarnings("ignore")  # random fp16 weights overflow into NaN images: irrelevant to speed
    key, body = run(cfg, argv)
    write_section(args.out, key, body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
