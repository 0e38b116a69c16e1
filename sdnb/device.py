"""Hardware preflight and the memory plan every pipeline is loaded and run with.

The plan is a small dataclass with the reasons for each choice, so a student can read *why*
their T4 gets fp16 and VAE tiling while a CPU gets float32.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import SdnbError
from .settings import is_tiny, output_dir

__all__ = ["Hardware", "MemoryPlan", "preflight", "plan_memory", "apply_plan", "check_controlnet_units", "WEIGHTS_GB",
           "ACTIVATION_GB", "CONTROLNET_GB"]

#: fp16 weight size (GB) of each family's UNet + text encoders + VAE.
WEIGHTS_GB = {"sd15": 2.0, "sd21v": 2.6, "sdxl": 6.9}
#: Rough fp16 working memory (GB) of one image at the family's native size, with SDPA attention.
ACTIVATION_GB = {"sd15": 0.8, "sd21v": 1.4, "sdxl": 2.5}
#: fp16 weight size (GB) of one ControlNet for each family's UNet (ControlNet 1.1 for SD 1.x/2.x, the SDXL ones).
CONTROLNET_GB = {"sd15": 0.7, "sd15-inpaint": 0.7, "sd21v": 0.7, "sdxl": 2.5}
#: ControlNet units planned for where memory sets no limit (CPU, Apple GPU, tiny mode).
_MAX_UNITS = 8
_NATIVE = {"sd15": 512, "sd21v": 768, "sdxl": 1024}
_GB = 1024**3


@dataclass(frozen=True)
class Hardware:
    """What this machine has: accelerator, memory, disk and library versions."""

    device: str
    gpu_name: str | None
    vram_gb: float | None
    free_vram_gb: float | None
    ram_gb: float | None
    disk_free_gb: float
    versions: dict[str, str]

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [f"Device: {self.device}" + (f" ({self.gpu_name})" if self.gpu_name else "")]
        if self.vram_gb is not None:
            lines.append(f"GPU memory: {self.vram_gb:.1f} GB total, {self.free_vram_gb:.1f} GB free")
        if self.ram_gb is not None:
            lines.append(f"Host RAM: {self.ram_gb:.1f} GB")
        lines.append(f"Free disk (output folder): {self.disk_free_gb:.1f} GB")
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()))
        return "\n".join(lines)


@dataclass(frozen=True)
class MemoryPlan:
    """How to load and run a pipeline on this hardware, with the reason for each choice."""

    device: str
    dtype: torch.dtype
    attention_slicing: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    offload: str = "none"  # "none" | "model" | "sequential"
    batch_size: int = 1
    compile: bool = False  # opt-in: torch.compile the UNet (the first run at each shape compiles)
    controlnet_units: int = _MAX_UNITS  # ControlNets that fit in memory beside the model at once
    reasons: tuple[str, ...] = field(default=(), compare=False)

    def summary(self) -> str:
        """The plan and its reasons, one line each."""
        head = (
            f"Memory plan: {self.device}, {str(self.dtype).removeprefix('torch.')}, batch size {self.batch_size}, "
            f"offload {self.offload}, VAE slicing {'on' if self.vae_slicing else 'off'}, "
            f"VAE tiling {'on' if self.vae_tiling else 'off'}, "
            f"attention slicing {'on' if self.attention_slicing else 'off'}"
            + (", torch.compile on" if self.compile else "")
        )
        return "\n".join([head, *(f"  - {r}" for r in self.reasons)])


def _ram_gb() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().total / _GB
    except ImportError:  # psutil is optional; /proc works on Linux and Colab
        try:
            with open("/proc/meminfo") as fh:
                return int(fh.readline().split()[1]) / 1024**2
        except OSError:
            return None


def preflight() -> Hardware:
    """Look at the machine: CUDA, MPS or CPU, memory, disk and versions."""
    import diffusers
    import transformers

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }
    gpu_name = vram = free = None
    if torch.cuda.is_available():
        device = "cuda"
        gpu = torch.cuda.current_device()  # this process's GPU (each has its own under accelerate launch)
        gpu_name = torch.cuda.get_device_name(gpu)
        free_b, total_b = torch.cuda.mem_get_info(gpu)
        vram, free = total_b / _GB, free_b / _GB
        versions["cuda"] = str(torch.version.cuda)
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "mps"
        gpu_name = "Apple GPU (shares host RAM)"
    else:
        device = "cpu"
    disk = shutil.disk_usage(output_dir()).free / _GB
    return Hardware(device, gpu_name, vram, free, _ram_gb(), disk, versions)


def plan_memory(
    hw: Hardware | None = None,
    family: str = "sd15",
    width: int | None = None,
    height: int | None = None,
    *,
    compile: bool = False,
) -> MemoryPlan:
    """Choose dtype, slicing, tiling, offload and batch size for ``family`` at ``width`` x ``height``.

    ``compile=True`` opts in to ``torch.compile`` of the UNet (see :func:`apply_plan`).
    """
    plan = _plan(hw or preflight(), family, width, height)
    if not compile:
        return plan
    why = ("torch.compile (opt-in): the first image at each new size or batch size waits while the UNet "
           "compiles (a minute or more); measure what it gains with `python -m benchmarks.run --compile`.")
    return dataclasses.replace(plan, compile=True, reasons=(*plan.reasons, why))


def _plan(hw: Hardware, family: str, width: int | None, height: int | None) -> MemoryPlan:
    native = _NATIVE.get(family, 512)
    pixels = (width or native) * (height or native)
    area = pixels / native**2  # activation memory grows with the pixel count
    reasons: list[str] = []
    if is_tiny():
        reasons.append("Tiny mode: tiny random models, images are noise by design.")
    if hw.device == "cpu":
        reasons.append("CPU: float32 (half precision is slow or unsupported on CPUs); real models take minutes.")
        return MemoryPlan("cpu", torch.float32, vae_tiling=pixels > 1024**2, batch_size=1, reasons=tuple(reasons))
    if hw.device == "mps":
        reasons.append("Apple GPU: float16; attention slicing keeps peak memory down on unified memory.")
        return MemoryPlan("mps", torch.float16, attention_slicing=True, vae_slicing=True, reasons=tuple(reasons))

    free = hw.free_vram_gb or 0.0
    weights = WEIGHTS_GB.get(family, 2.0)
    act = ACTIVATION_GB.get(family, 1.0) * area
    reasons.append("CUDA: float16 weights halve memory and use tensor cores.")
    offload = "none"
    if free < 4.0:
        offload = "sequential"
        reasons.append(f"Only {free:.1f} GB free: sequential CPU offload (slow but fits almost anywhere).")
    elif free < weights + act + 1.0:
        offload = "model"
        reasons.append(f"{free:.1f} GB free < {weights + act + 1:.1f} GB needed: model CPU offload.")
    budget = free - (0 if offload != "none" else weights) - 1.0
    batch = int(max(1, min(8, budget // act))) if act > 0 else 1
    vae_tiling = pixels > 1024**2 or (family == "sdxl" and free < 12)
    if vae_tiling:
        reasons.append("Large image or tight memory: VAE tiling decodes in tiles.")
    vae_slicing = batch > 1 or offload != "none"
    if vae_slicing:
        reasons.append("VAE slicing decodes a batch one image at a time.")
    reasons.append(f"Batch size {batch}: about {act:.1f} GB per image at this size.")
    resident = 0.0 if offload == "sequential" else weights  # model offload still holds the UNet during the steps
    units = _controlnet_units(free - resident - act - 1.0, family, reasons)
    return MemoryPlan("cuda", torch.float16, False, vae_slicing, vae_tiling, offload, batch,
                      controlnet_units=units, reasons=tuple(reasons))


def _controlnet_units(room_gb: float, family: str, reasons: list[str]) -> int:
    """How many ControlNets fit in ``room_gb`` of GPU memory: free VRAM less the model's weights (all of them
    without offload, counted whole with model offload too since the UNet, most of them, stays on the GPU during
    the steps; none with sequential offload), one image's working memory and 1 GB of headroom. ControlNets run at
    every step beside the UNet, so each counts whole."""
    if is_tiny():
        return _MAX_UNITS
    size = CONTROLNET_GB.get(family, 0.7)
    units = int(max(0, min(_MAX_UNITS, room_gb // size)))
    reasons.append(f"ControlNet: room for {units} unit(s) at about {size:g} GB each ({max(room_gb, 0):.1f} GB left "
                   "beside the model).")
    return units


def check_controlnet_units(plan: MemoryPlan, count: int, family: str) -> None:
    """Refuse ``count`` ControlNet units when the memory plan has room for fewer, before any is loaded."""
    if count <= plan.controlnet_units:
        return
    size = CONTROLNET_GB.get(family, 0.7)
    room = "no ControlNet" if plan.controlnet_units == 0 else f"{plan.controlnet_units} ControlNet unit(s)"
    raise SdnbError(
        f"{count} ControlNet units need about {count * size:g} GB of GPU memory beside the {family} model (each "
        f"ControlNet about {size:g} GB, all of them used at every step), but the memory plan has room for {room} "
        f"(offload {plan.offload}, batch size {plan.batch_size}).",
        hint="Use fewer units (turn Unit 2 off), or a smaller image; or restart the runtime and load the model "
        "with more offload, e.g. load_pipeline(model, plan=dataclasses.replace(plan_memory(), offload='model', "
        f"controlnet_units={count})) (slower, and it may still run out of memory).",
    )


def apply_plan(pipe: Any, plan: MemoryPlan) -> Any:
    """Move ``pipe`` to the plan's device and switch on its memory savers; returns ``pipe``.

    With ``plan.compile`` the UNet is compiled in place (``nn.Module.compile``; the pipeline keeps its
    ordinary UNet object). Compiling is one-way: load the pipeline again for a plan without it.
    """
    # this process's GPU (diffusers would pick GPU 0): with several processes each has its own
    gpu = {"gpu_id": torch.cuda.current_device()} if plan.offload != "none" and torch.cuda.is_available() else {}
    if plan.offload == "model":
        pipe.enable_model_cpu_offload(**gpu)
    elif plan.offload == "sequential":
        pipe.enable_sequential_cpu_offload(**gpu)
    else:
        pipe.to(plan.device)
    if plan.attention_slicing:
        pipe.enable_attention_slicing()
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        vae.enable_slicing() if plan.vae_slicing else vae.disable_slicing()
        vae.enable_tiling() if plan.vae_tiling else vae.disable_tiling()
    if plan.compile and not getattr(pipe.unet, "_sdnb_compiled", False):
        pipe.unet.compile()
        pipe.unet._sdnb_compiled = True
    pipe.set_progress_bar_config(disable=True)
    return pipe
