import dataclasses

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
