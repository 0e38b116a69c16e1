import dataclasses
import os
import shutil

import numpy as np
import pytest
import torch

from sdnb.device import Hardware, apply_plan, plan_memory, preflight


def gpu(vram: float, free: float | None = None) -> Hardware:
    return Hardware("cuda", "Test GPU", vram, free if free is not None else vram - 0.4, 12.7, 100.0, {})


def test_preflight_reads_this_machine() -> None:
    hw = preflight()
    assert hw.device in {"cpu", "cuda", "mps"}
    assert hw.disk_free_gb > 0 and hw.versions["torch"] == torch.__version__
    assert "Device:" in hw.summary()


def test_cpu_plan_is_float32_and_explains_itself() -> None:
    plan = plan_memory(dataclasses.replace(preflight(), device="cpu"), "sd15")
    assert plan.device == "cpu" and plan.dtype == torch.float32 and plan.offload == "none"
    assert "Tiny mode" in plan.summary() and "CPU" in plan.summary()


def test_t4_runs_sdxl_without_offload_and_sd15_with_room_for_a_batch() -> None:
    t4 = gpu(15.0)
    xl = plan_memory(t4, "sdxl")
    assert xl.dtype == torch.float16 and xl.offload == "none" and xl.batch_size >= 1
    sd = plan_memory(t4, "sd15")
    assert sd.batch_size > xl.batch_size and sd.vae_slicing
    assert plan_memory(t4, "sdxl", 2048, 2048).vae_tiling


@pytest.mark.parametrize(("free", "offload"), [(3.0, "sequential"), (6.0, "model"), (14.0, "none")])
def test_small_gpus_offload(free: float, offload: str) -> None:
    assert plan_memory(gpu(16.0, free), "sdxl").offload == offload


def test_apply_plan_switches_the_vae_savers(pipe) -> None:
    plan = dataclasses.replace(plan_memory(preflight(), "sd15"), vae_slicing=True, vae_tiling=True)
    apply_plan(pipe, plan)
    assert pipe.vae.use_slicing and pipe.vae.use_tiling
    apply_plan(pipe, dataclasses.replace(plan, vae_slicing=False, vae_tiling=False))
    assert not pipe.vae.use_slicing and not pipe.vae.use_tiling


def test_compile_is_an_opt_in_that_explains_itself() -> None:
    cpu = dataclasses.replace(preflight(), device="cpu")
    assert not plan_memory(cpu, "sd15").compile
    plan = plan_memory(cpu, "sd15", compile=True)
    assert plan.compile and "torch.compile on" in plan.summary() and "compiles" in plan.summary()
    assert dataclasses.replace(plan, compile=False) == plan_memory(cpu, "sd15")


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_unet_makes_the_same_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: a plan with compile=True loads, compiles the UNet and generates the same image.

    The test compiles with the ``aot_eager`` backend: the same torch.compile path (graph capture, AOT
    autograd) without inductor's C++ build, which takes a minute on a cold 2-core machine. The inductor
    path itself is exercised by ``python -m benchmarks.run --compile``.
    """
    from sdnb.generate import txt2img
    from sdnb.models import load_pipeline

    real_compile = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: real_compile(self, backend="aot_eager", **kw))

    cpu = dataclasses.replace(preflight(), device="cpu")
    eager = txt2img(pipe=load_pipeline("sd15", plan=plan_memory(cpu, "sd15")), steps=2, seed=7, save=False).images[0]
    pipe = load_pipeline("sd15", plan=plan_memory(cpu, "sd15", compile=True))
    assert pipe.unet._sdnb_compiled and type(pipe.unet).__name__ == "UNet2DConditionModel"
    compiled = txt2img(pipe=pipe, steps=2, seed=7, save=False).images[0]
    a, b = np.asarray(eager, dtype=np.int16), np.asarray(compiled, dtype=np.int16)
    assert a.shape == b.shape == (64, 64, 3)
    assert np.abs(a - b).max() <= 2  # same image up to float rounding in fused kernels
