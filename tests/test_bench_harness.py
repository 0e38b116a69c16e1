"""The benchmark harness (``python -m benchmarks.run``) in tiny mode on the CPU, as CI runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.run import (
    SETUPS,
    Config,
    Row,
    attempt,
    count_flops,
    peak_tflops,
    plan_check,
    sdxl_random,
    targets_table,
    unet_inputs,
    write_section,
)
from benchmarks.walk import sd15_random

ROOT = Path(__file__).resolve().parents[1]
SPEED_COLUMNS = 11  # family, setup, UNet it/s, TFLOP/s, of peak, loop it/s, images/s x2, walk x2, first call


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One tiny CPU run of the harness into a results file that already holds other text."""
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    out.write_text("# Results\n\nText written by hand stays.\n")
    cmd = [sys.executable, "-m", "benchmarks.run", "--device", "cpu", "--tiny", "--threads", "1", "--steps", "4", "--walk-steps", "4,2",
           "--unet-iters", "3", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text()


def _rows(text: str, family: str) -> dict[str, list[str]]:
    """setup -> cells of each table row of ``family`` (speed table first, then memory table)."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == family:
            rows.setdefault(cells[1], []).extend(cells[2:])
    return rows


def _number(cell: str) -> float:
    return float(re.match(r"[-+0-9.e]+", cell).group())


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_both_setups_are_measured_with_positive_numbers(report: str, family: str) -> None:
    rows = _rows(report, family)
    assert {"diffusers defaults", "sdnb plan"} <= set(rows)
    for setup in ("diffusers defaults", "sdnb plan"):
        speed, memory = rows[setup][: SPEED_COLUMNS - 2], rows[setup][SPEED_COLUMNS - 2 :]
        unet_its, tflops, share, loop_its, images_1, images_b, walk_50, walk_25, first = speed
        for cell in (unet_its, tflops, loop_its, images_1, walk_50, walk_25, first):
            assert _number(cell) > 0, (setup, speed)
        assert share == "unknown" and images_b == "= batch 1"  # no peak figure for CPUs; CPU plan batch is 1
        load_s, load_rss, *peaks = memory
        assert _number(load_s) > 0 and _number(load_rss) > 0
        assert all(_number(p) > 0 for p in peaks if p != "= batch 1"), memory


def test_report_counts_flops_names_device_and_keeps_other_text(report: str) -> None:
    flops = dict(re.findall(r"^- (sd15|sdxl): ([0-9,]+) FLOPs", report, re.M))
    assert set(flops) == {"sd15", "sdxl"} and all(int(v.replace(",", "")) > 0 for v in flops.values())
    assert report.startswith("# Results\n\nText written by hand stays.")
    assert report.count("<!-- benchmarks.run cpu-tiny-sd15-sdxl begin -->") == 1
    assert f"torch {torch.__version__}" in report and "(CPU, 1 threads)" in report
    targets = [line for line in report.splitlines() if line.startswith(("| H100-class", "| 15 GB T4-class"))]
    assert len(targets) == 4 and all("not yet measured (no GPU in this session)" in t for t in targets)


def test_sections_are_replaced_not_repeated(tmp_path: Path) -> None:
    out = tmp_path / "R.md"
    write_section(out, "cpu-tiny", "first")
    write_section(out, "t4-full", "gpu")
    write_section(out, "cpu-tiny", "second")
    text = out.read_text()
    assert "second" in text and "first" not in text and "gpu" in text
    assert text.count("cpu-tiny begin") == 1 and text.count("t4-full begin") == 1


def test_flops_include_attention_on_the_cpu(pipe) -> None:
    inputs = unet_inputs(pipe, 64)
    plain = FlopCounterMode(display=False)
    with torch.no_grad(), plain:
        pipe.unet(**inputs)
    assert count_flops(pipe.unet, inputs) > plain.get_total_flops() > 0


def test_peak_table_matches_gpu_names() -> None:
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989
    assert peak_tflops("NVIDIA H100 PCIe") == 756
    assert peak_tflops("Tesla T4") == 65
    assert peak_tflops("NVIDIA L40S") == 362 and peak_tflops("NVIDIA L4") == 121
    assert peak_tflops("NVIDIA A100-SXM4-40GB") == 312
    assert peak_tflops("Some Future GPU") is None


def test_out_of_memory_is_a_result_other_errors_are_not() -> None:
    def oom() -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def broken() -> None:
        raise ValueError("a real bug")

    assert attempt(oom) == "OOM" and attempt(lambda: 3) == 3
    with pytest.raises(ValueError):
        attempt(broken)


def test_full_size_builders_have_the_real_parameter_counts() -> None:
    """The inline configs are SD 1.5's and SDXL base's: their published parameter counts, built on the meta device."""

    def millions(module: torch.nn.Module) -> int:
        return round(sum(p.numel() for p in module.parameters()) / 1e6)

    sd, xl = sd15_random("meta", torch.float16), sdxl_random("meta", torch.float16)
    assert (millions(sd.unet), millions(sd.vae), millions(sd.text_encoder)) == (860, 84, 123)
    assert (millions(xl.unet), millions(xl.text_encoder_2)) == (2567, 695)
    assert {p.dtype for p in xl.unet.parameters()} == {torch.float16} and torch.get_default_dtype() == torch.float32
    assert unet_inputs(xl, 1024)["added_cond_kwargs"]["text_embeds"].shape == (2, 1280)


def test_gpu_targets_are_judged_only_on_a_gpu_of_their_class() -> None:
    """The report's GPU paths, fed made-up rows (this checks the wording and the verdicts, not any GPU)."""
    cfg = Config("cuda", False, ("sd15", "sdxl"), {"sd15": 512, "sdxl": 1024}, 50, (50, 25), 30, False, "full")
    rows = [Row("sd15", SETUPS[1], 8, 9.0, 3.1, 1.0, loop_its=60.0, images_1=1.1, mem_1=2.5, mem_b=8.1),
            Row("sdxl", SETUPS[1], 2, 20.0, 9.0, 7.0, loop_its=12.0, images_1=0.5, images_b="OOM", mem_1=7.0)]
    h100 = "\n".join(targets_table(rows, cfg, "NVIDIA H100 80GB HBM3", 80.0))
    assert "60.0 it/s | met" in h100 and "12.0 it/s | NOT met" in h100
    assert h100.count("not yet measured (no T4-class GPU") == 2 and "9.00 GB | met" in h100
    t4 = "\n".join(targets_table(rows, cfg, "Tesla T4", 15.0))
    assert "OOM | fails" in t4 and "2.50 GB | met" in t4 and t4.count("not yet measured (no H100-class") == 2
    check = "\n".join(plan_check(rows, cfg))
    assert "0.800 GB per extra image" in check and "2.0 GB of weights" in check
