"""Tiny mode's random-weight pipelines: built offline, saved once, loaded with ``from_pretrained``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from sdnb import tiny  # noqa: E402
from sdnb.errors import SdnbError  # noqa: E402

PROMPT = "a watercolor painting of a lighthouse at dawn"
PIPELINES = {
    "sd15": "StableDiffusionPipeline",
    "sd21v": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """One cache folder for the module, so each family is built once."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("sdnb-cache")
        mp.setenv("SDNB_CACHE_DIR", str(path))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield path


@pytest.fixture(scope="module", params=tiny.FAMILIES)
def loaded(request: pytest.FixtureRequest, cache: Path):
    family = request.param
    folder = tiny.tiny_model_dir(family)
    cls = getattr(diffusers, PIPELINES[family])
    pipe = cls.from_pretrained(folder, use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    return family, folder, pipe


def _generate(pipe, seed: int = 0):
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(PROMPT, height=64, width=64, num_inference_steps=2, generator=generator).images[0]


def test_folder_is_in_cache_with_safetensors_only(loaded, cache: Path) -> None:
    family, folder, _ = loaded
    assert folder == cache / "tiny" / f"{family}-v{tiny._VERSION}"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert not any(p.suffix == ".bin" for p in files)
    assert sum(p.stat().st_size for p in files) < 2_000_000
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_loads_with_the_right_class_and_real_shapes(loaded) -> None:
    family, _, pipe = loaded
    assert type(pipe).__name__ == PIPELINES[family]
    assert pipe.vae_scale_factor == 8
    assert pipe.vae.config.latent_channels == 4
    assert pipe.unet.config.in_channels == 4
    sched = pipe.scheduler.config
    assert (sched.beta_schedule, sched.beta_start, sched.beta_end) == ("scaled_linear", 0.00085, 0.012)
    assert sched.num_train_timesteps == 1000
    assert sched.prediction_type == ("v_prediction" if family == "sd21v" else "epsilon")
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    for encoder in encoders:
        config = encoder.config
        assert config.vocab_size == len(pipe.tokenizer)
        assert config.bos_token_id == pipe.tokenizer.bos_token_id
        assert config.eos_token_id == pipe.tokenizer.eos_token_id
        assert config.pad_token_id == pipe.tokenizer.pad_token_id
    if family == "sd21v":
        assert pipe.unet.config.use_linear_projection
        assert pipe.text_encoder.config.hidden_act == "gelu"
    if family == "sdxl":
        unet = pipe.unet.config
        hidden = pipe.text_encoder.config.hidden_size + pipe.text_encoder_2.config.hidden_size
        assert unet.addition_embed_type == "text_time"
        assert unet.cross_attention_dim == hidden
        assert unet.projection_class_embeddings_input_dim == (
            6 * unet.addition_time_embed_dim + pipe.text_encoder_2.config.projection_dim
        )
        assert pipe.config.force_zeros_for_empty_prompt
        assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    else:
        assert pipe.safety_checker is None and pipe.feature_extractor is None


def test_generates_64px_images_deterministically(loaded) -> None:
    _, _, pipe = loaded
    first = _generate(pipe)
    assert first.size == (64, 64)
    assert np.array_equal(np.asarray(first), np.asarray(_generate(pipe)))


def test_second_call_reuses_the_folder(loaded) -> None:
    family, folder, _ = loaded
    index = folder / "model_index.json"
    before = (folder.stat().st_mtime_ns, index.stat().st_mtime_ns)
    assert tiny.tiny_model_dir(family) == folder
    assert (folder.stat().st_mtime_ns, index.stat().st_mtime_ns) == before


def test_weights_are_deterministic(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tiny.tiny_model_dir("sd15") / "unet" / "diffusion_pytorch_model.safetensors"
    monkeypatch.setenv("SDNB_CACHE_DIR", str(tmp_path))
    torch.manual_seed(1234)  # the build seeds torch itself
    second = tiny.tiny_model_dir("sd15") / "unet" / "diffusion_pytorch_model.safetensors"
    assert first != second
    assert first.read_bytes() == second.read_bytes()


def test_tokenizer_has_whole_word_tokens() -> None:
    tok = tiny.build_tokenizer()
    ids = tok(PROMPT).input_ids
    assert len(ids) <= 12
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == PROMPT
    assert tok.model_max_length == 77
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    # any text still encodes (byte-level fallback) and round-trips
    odd = "zyxw naïve 日本"
    assert tok.decode(tok(odd).input_ids, skip_special_tokens=True) == odd
    assert len(tok(PROMPT, padding="max_length").input_ids) == 77


def test_unknown_family_raises() -> None:
    with pytest.raises(SdnbError, match="sd15"):
        tiny.tiny_model_dir("sd3")


def test_concurrent_builder_that_finishes_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When another process renames its folder in first, ours is deleted and theirs is used."""
    monkeypatch.setenv("SDNB_CACHE_DIR", str(tmp_path))
    target = tmp_path / "tiny" / f"sd15-v{tiny._VERSION}"

    class Racer:
        def save_pretrained(self, path, **kwargs) -> None:
            (Path(path) / "model_index.json").write_text("{}")
            target.mkdir()  # the other process wins the race while we are writing
            (target / "model_index.json").write_text(json.dumps({"winner": True}))
            (target / "unet").mkdir()

    monkeypatch.setattr(tiny, "_build", lambda family: Racer())
    assert tiny.tiny_model_dir("sd15") == target
    assert json.loads((target / "model_index.json").read_text()) == {"winner": True}
    assert [p.name for p in target.parent.iterdir()] == [target.name]
