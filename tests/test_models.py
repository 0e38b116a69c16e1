import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
import torch
from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

from sdnb.errors import SdnbError
from sdnb.models import explain_error, load_pipeline
from sdnb.tiny import tiny_model_dir


def _http_error(cls: type, status: int, repo: str) -> Exception:
    response = httpx2.Response(status, request=httpx2.Request("GET", f"https://huggingface.co/api/models/{repo}"))
    return cls(f"{status} Client Error for {repo}", response=response)


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt", ".pth"])
def test_pickle_checkpoints_are_refused(tmp_path: Path, suffix: str) -> None:
    ckpt = tmp_path / f"model{suffix}"
    ckpt.write_bytes(b"not really a pickle")
    with pytest.raises(SdnbError, match="pickle") as err:
        load_pipeline(ckpt)
    assert "safetensors" in err.value.hint


def test_deleted_repo_names_its_replacement() -> None:
    with pytest.raises(SdnbError, match="deleted") as err:
        load_pipeline("runwayml/stable-diffusion-v1-5")
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in err.value.hint


def test_bad_local_paths(tmp_path: Path) -> None:
    with pytest.raises(SdnbError, match="does not exist"):
        load_pipeline(tmp_path / "missing.safetensors")
    with pytest.raises(SdnbError, match="model_index.json"):
        load_pipeline(tmp_path)
    with pytest.raises(SdnbError, match="neither a known model name"):
        load_pipeline("not a model")


def test_local_folder_loads_through_from_pretrained(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tiny_model_dir("sdxl")
    pipe = load_pipeline(folder)
    assert type(pipe).__name__ == "StableDiffusionXLPipeline" and pipe.sdnb_family == "sdxl"


def test_models_dir_is_used_before_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.copytree(tiny_model_dir("sd15"), tmp_path / "sd15")
    monkeypatch.setenv("SDNB_TINY", "0")
    monkeypatch.setenv("SDNB_MODELS_DIR", str(tmp_path))
    pipe = load_pipeline("sd15")
    assert type(pipe).__name__ == "StableDiffusionPipeline"


def test_single_file_goes_through_from_single_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers

    calls = {}

    def fake(cls, path, **kwargs):
        calls.update(cls=cls.__name__, path=path, **kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(diffusers.StableDiffusionXLPipeline, "from_single_file", classmethod(fake))
    from safetensors.torch import save_file

    ckpt = tmp_path / "my_model.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, str(ckpt))  # looks like a checkpoint
    with pytest.raises(SdnbError, match="my_model.safetensors failed"):
        load_pipeline(ckpt, family="sdxl")
    assert calls["cls"] == "StableDiffusionXLPipeline" and calls["path"] == str(ckpt)


def test_gated_missing_offline_and_oom_errors_say_what_to_do() -> None:
    gated = explain_error(_http_error(GatedRepoError, 403, "org/gated"), "org/gated")
    assert "accept the license" in gated.hint and "/org/gated" in gated.hint
    missing = explain_error(_http_error(RepositoryNotFoundError, 404, "runwayml/stable-diffusion-v1-5"),
                            "runwayml/stable-diffusion-v1-5")
    assert "does not exist" in missing.message and "stable-diffusion-v1-5/stable-diffusion-v1-5" in missing.hint
    wrapped = OSError("Cannot load model org/x: model is not cached locally")
    wrapped.__cause__ = _http_error(GatedRepoError, 401, "org/x")
    assert "gated" in explain_error(wrapped, "org/x").message  # found under diffusers' wrapper
    offline = explain_error(LocalEntryNotFoundError("no cache"), "org/x")
    assert "cannot be downloaded" in offline.message and "SDNB_TINY" in offline.hint
    oom = explain_error(torch.cuda.OutOfMemoryError("CUDA out of memory"), "sdxl")
    assert "ran out of memory" in oom.message and "offload" in oom.hint


def test_error_shows_as_a_paragraph_in_ipython() -> None:
    err = SdnbError("Width must be a multiple of 8.", hint="Use 512.")
    lines = err._render_traceback_()
    assert len(lines) == 2 and "Width" in lines[0] and "512" in lines[1]


def test_offline_hub_load_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_TINY", "0")  # HF_HUB_OFFLINE=1 is set for the whole test session
    with pytest.raises(SdnbError, match="HF_HUB_OFFLINE is set") as err:
        load_pipeline("someone/not-cached")
    assert "SDNB_TINY" in err.value.hint


def test_hf_endpoint_mirror_is_used(tmp_path: Path) -> None:
    """HF_ENDPOINT is read when huggingface_hub is imported, so this runs in a fresh process."""
    code = (
        "from sdnb.models import load_pipeline\n"
        "try:\n    load_pipeline('someone/not-cached')\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    env = {**os.environ, "SDNB_TINY": "0", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "HF_ENDPOINT": "http://127.0.0.1:9"}
    mirror = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "SdnbError" in mirror.stdout
    assert "http://127.0.0.1:9 could not be reached" in mirror.stdout  # the mirror was used, not huggingface.co


def test_a_loaded_pipeline_is_reused_without_planning_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Free VRAM drops once a model is loaded; re-planning on every call would reload the model each time."""
    import dataclasses

    import sdnb.models as models
    from sdnb.device import plan_memory

    models.clear_cache()
    calls = []

    def shrinking_plan(**kw):
        calls.append(kw)
        return dataclasses.replace(plan_memory(**kw), batch_size=len(calls))  # a different plan every time

    monkeypatch.setattr(models, "plan_memory", shrinking_plan)
    first = load_pipeline("sd15")
    assert load_pipeline("sd15") is first and len(calls) == 1
    other = dataclasses.replace(first.sdnb_plan, batch_size=7)
    assert load_pipeline("sd15", plan=other) is not first  # an explicit, different plan does reload
    assert load_pipeline("sd15", plan=other).sdnb_plan == other


def test_a_safetensors_file_that_is_not_a_model_says_what_it_is(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_down_blocks_0.lora_down.weight": torch.zeros(4, 8)}, str(lora))
    with pytest.raises(SdnbError, match="style.safetensors is a LoRA") as err:
        load_pipeline(lora)
    assert "<lora:" in err.value.hint
    other = tmp_path / "upscaler.safetensors"
    save_file({"conv_first.weight": torch.zeros(4, 3, 3, 3)}, str(other))
    with pytest.raises(SdnbError, match="not a Stable Diffusion checkpoint.*conv_first.weight"):
        load_pipeline(other)
    broken = tmp_path / "cut.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(SdnbError, match="not a readable .safetensors file"):
        load_pipeline(broken)


def test_the_empty_float32_notice_of_diffusers_is_dropped_and_real_ones_kept() -> None:
    import logging

    from sdnb.models import load_pipeline

    load_pipeline("sd15")
    logger = logging.getLogger("diffusers.models.modeling_utils")

    def passes(message: str) -> bool:
        record = logging.LogRecord(logger.name, logging.WARNING, __file__, 1, message, None, None)
        return logger.filter(record)

    assert not passes("There are modules in AutoencoderKL that should be kept in float32: []. Casting directly ...")
    assert passes("There are modules in AutoencoderKL that should be kept in float32: ['encoder']. Casting ...")
