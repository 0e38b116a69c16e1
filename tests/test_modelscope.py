"""ModelScope as a model source: the setting, the download through the modelscope package (stubbed: no network
here), its cache and allow patterns, loading through the same loader, and the errors."""

from __future__ import annotations

import fnmatch
import importlib.machinery
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from sdnb import settings, tiny
from sdnb.errors import SdnbError
from sdnb.models import clear_cache, load_pipeline
from sdnb.sources import modelscope_download


class NotExistError(Exception):
    """What modelscope (modelscope_hub.errors) raises for an unknown repo."""


class NetworkError(ConnectionError):
    """What modelscope raises when modelscope.cn cannot be reached (a ConnectionError, as in modelscope_hub)."""


class FakeModelScope:
    """A ``modelscope`` module whose ``snapshot_download`` copies files of local "remote" repos into its own cache,
    honouring allow/ignore patterns with fnmatch as modelscope does, and records every call."""

    def __init__(self, root: Path) -> None:
        self.remotes: dict[str, Path] = {}
        self.cache = root / "modelscope-cache" / "models"
        self.calls: list[dict] = []
        self.fail: dict[str, BaseException] = {}

    def snapshot_download(self, model_id: str, revision: str | None = None, *, allow_patterns=None,
                          ignore_patterns=None) -> str:
        self.calls.append({"model_id": model_id, "allow": list(allow_patterns or []),
                           "ignore": list(ignore_patterns or [])})
        if model_id in self.fail:
            raise self.fail[model_id]
        if model_id not in self.remotes:
            raise NotExistError(f"The model: {model_id} not exist")
        remote, target = self.remotes[model_id], self.cache / model_id
        for path in remote.rglob("*"):
            name = path.relative_to(remote).as_posix()
            if path.is_file() and any(fnmatch.fnmatch(name, p) for p in allow_patterns or ["*"]) and not any(
                fnmatch.fnmatch(name, p) for p in ignore_patterns or []
            ):
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / name)
        target.mkdir(parents=True, exist_ok=True)
        return str(target)

    def fetched(self, model_id: str) -> set[str]:
        folder = self.cache / model_id
        return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def modelscope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModelScope:
    fake = FakeModelScope(tmp_path)
    module = types.ModuleType("modelscope")
    module.__spec__ = importlib.machinery.ModuleSpec("modelscope", None)  # installed, as far as find_spec can tell
    module.snapshot_download = fake.snapshot_download
    monkeypatch.setitem(sys.modules, "modelscope", module)
    monkeypatch.setenv("SDNB_SOURCE", "hub")  # restored after the test, whatever set_source does
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    clear_cache()
    yield fake
    clear_cache()


def _remote(tmp_path: Path, family: str, name: str, extra: dict[str, bytes] | None = None) -> Path:
    """A copy of a tiny diffusers folder as a ModelScope repo, plus pickles and a root single-file checkpoint."""
    remote = tmp_path / "remote" / name
    shutil.copytree(tiny.tiny_model_dir(family), remote)
    files = {"unet/diffusion_pytorch_model.bin": b"pickle", "text_encoder/pytorch_model.bin": b"pickle",
             "v1-5-pruned-emaonly.ckpt": b"pickle", "v1-5-pruned-emaonly.safetensors": b"single file",
             "README.md": b"# model card"} | (extra or {})
    for rel, data in files.items():
        (remote / rel).write_bytes(data)
    return remote


def _serve(fake: FakeModelScope, model_id: str, remote: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``remote`` as ModelScope repo ``model_id``, ModelScope chosen, real mode (registry names download)."""
    fake.remotes[model_id] = remote
    monkeypatch.setenv("SDNB_TINY", "0")
    settings.set_source("modelscope")


def test_set_source_chooses_hub_mirror_or_modelscope(modelscope, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.model_source() == "hub"
    assert "ModelScope" in settings.set_source("modelscope")
    assert settings.model_source() == "modelscope" and os.environ["SDNB_SOURCE"] == "modelscope"
    assert settings.set_source("mirror").endswith(f"at {settings.DEFAULT_MIRROR}.")
    assert os.environ["HF_ENDPOINT"] == settings.DEFAULT_MIRROR and settings.model_source() == "mirror"
    assert settings.set_source("hub").endswith(f"at {settings.DEFAULT_HUB}.")
    assert "HF_ENDPOINT" not in os.environ
    settings.set_mirror("https://my-mirror.example")  # the old call still picks the mirror source
    assert settings.model_source() == "mirror" and settings.apply_mirror() == "https://my-mirror.example"
    with pytest.raises(SdnbError, match="not a model source"):
        settings.set_source("civitai")
    monkeypatch.delenv("SDNB_SOURCE")
    assert settings.model_source() == "mirror"  # HF_ENDPOINT alone means a mirror, as before
    monkeypatch.setenv("SDNB_SOURCE", "ModelScope ")
    assert settings.model_source() == "modelscope"
    monkeypatch.setenv("SDNB_SOURCE", "moon")
    with pytest.raises(SdnbError, match="SDNB_SOURCE='moon' is not a model source"):
        settings.model_source()


def test_registry_model_downloads_safetensors_only_into_the_modelscope_cache_and_loads_like_a_folder(
        modelscope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(modelscope, "AI-ModelScope/stable-diffusion-v1-5", _remote(tmp_path, "sd15", "sd15"), monkeypatch)
    pipe = load_pipeline("sd15")
    assert [c["model_id"] for c in modelscope.calls] == ["AI-ModelScope/stable-diffusion-v1-5"]
    call = modelscope.calls[0]
    assert "*/*.safetensors" in call["allow"] and not any(p.endswith((".bin", ".ckpt")) for p in call["allow"])
    fetched = modelscope.fetched("AI-ModelScope/stable-diffusion-v1-5")
    assert "model_index.json" in fetched and "unet/diffusion_pytorch_model.safetensors" in fetched
    assert not [f for f in fetched if f.endswith((".bin", ".ckpt"))]  # no pickle is ever downloaded
    assert "v1-5-pruned-emaonly.safetensors" not in fetched  # nor the single-file copy of the same weights
    # the pipeline comes from the modelscope cache, not from sdnb's folders
    assert Path(pipe.config._name_or_path) == modelscope.cache / "AI-ModelScope/stable-diffusion-v1-5"
    assert pipe.sdnb_model == "sd15" and pipe.sdnb_family == "sd15"
    # same weights as the folder loaded directly: the ModelScope path ends in the one loader
    direct = type(pipe).from_pretrained(tiny.tiny_model_dir("sd15"), use_safetensors=True)
    assert torch.equal(pipe.unet.conv_in.weight, direct.unet.conv_in.weight)
    assert load_pipeline("sd15", task="img2img").unet is pipe.unet  # loaded once: no second download
    assert len(modelscope.calls) == 1


def test_an_owner_name_id_is_a_modelscope_id_and_its_family_is_read_after_download(
        modelscope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(modelscope, "someone/taiyi-copy", _remote(tmp_path, "sd15-bert", "taiyi"), monkeypatch)
    pipe = load_pipeline("someone/taiyi-copy")
    assert pipe.sdnb_family == "sd15-bert" and type(pipe.text_encoder).__name__ == "BertModel"
    image = pipe("一只猫", num_inference_steps=2, height=64, width=64,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert np.asarray(image).std() > 0


def test_fp16_downloads_the_variant_and_full_weights_only_where_no_variant_exists(modelscope, tmp_path: Path) -> None:
    remote = _remote(tmp_path, "sd15", "fp16")
    for part in ("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model"):  # the text encoder has none
        shutil.copy(remote / f"{part}.safetensors", remote / f"{part}.fp16.safetensors")
    modelscope.remotes["AI-ModelScope/fp16"] = remote
    folder = modelscope_download("AI-ModelScope/fp16", fp16=True)
    fetched = modelscope.fetched("AI-ModelScope/fp16")
    assert {"unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
            "text_encoder/model.safetensors"} <= fetched
    assert "unet/diffusion_pytorch_model.safetensors" not in fetched  # the full-size UNet is not downloaded
    assert modelscope.calls[1]["allow"][-1:] == ["text_encoder/*.safetensors"]
    assert folder == modelscope.cache / "AI-ModelScope/fp16"


def test_unknown_id_no_network_and_not_diffusers_are_one_paragraph_each(
        modelscope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SdnbError, match="ModelScope has no model 'nobody/no-such-model'") as unknown:
        modelscope_download("nobody/no-such-model")
    assert "modelscope.cn/models" in unknown.value.hint
    modelscope.fail["AI-ModelScope/stable-diffusion-v1-5"] = NetworkError("[E1020] Connection failed")
    with pytest.raises(SdnbError, match="modelscope.cn could not be reached") as offline:
        modelscope_download("AI-ModelScope/stable-diffusion-v1-5")
    assert "set_source('hub')" in offline.value.hint
    single = tmp_path / "remote" / "single"
    single.mkdir(parents=True)
    (single / "sd15.safetensors").write_bytes(b"x")
    modelscope.remotes["someone/single-file"] = single
    with pytest.raises(SdnbError, match="not a diffusers model: it has no model_index.json"):
        modelscope_download("someone/single-file")
    pickles = _remote(tmp_path, "sd15", "pickles")
    (pickles / "unet/diffusion_pytorch_model.safetensors").unlink()
    modelscope.remotes["someone/pickles"] = pickles
    with pytest.raises(SdnbError, match="no .safetensors weights for unet") as only_bin:
        modelscope_download("someone/pickles")
    assert "set_source('mirror')" in only_bin.value.hint
    assert "unet/diffusion_pytorch_model.bin" not in modelscope.fetched("someone/pickles")
    # through the loader, with ModelScope chosen: the same paragraph, and a model ModelScope lacks says so
    monkeypatch.setenv("SDNB_TINY", "0")
    settings.set_source("modelscope")
    with pytest.raises(SdnbError, match="ModelScope has no model 'nobody/no-such-model'"):
        load_pipeline("nobody/no-such-model")
    with pytest.raises(SdnbError, match="has no ModelScope copy") as no_copy:
        load_pipeline("sd2-depth", task="depth2img")
    assert "set_source('mirror')" in no_copy.value.hint


def test_missing_modelscope_package_says_pip_install(modelscope, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)  # import modelscope -> ImportError
    with pytest.raises(SdnbError, match="needs the modelscope package") as missing:
        modelscope_download("AI-ModelScope/stable-diffusion-v1-5")
    assert "pip install modelscope" in missing.value.hint
    with pytest.raises(SdnbError, match="needs the modelscope package"):  # said when the source is chosen
        settings.set_source("modelscope")
    assert settings.model_source() == "hub"


def test_tiny_mode_never_downloads_whatever_the_source(modelscope) -> None:
    settings.set_source("modelscope")
    pipe = load_pipeline("sd15")
    assert modelscope.calls == [] and Path(pipe.config._name_or_path) == tiny.tiny_model_dir("sd15")
