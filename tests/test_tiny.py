"""Tiny mode's random-weight pipelines: built offline, saved once, loaded with ``from_pretrained``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from sdnb import tiny  # noqa: E402
from sdnb.errors import SdnbError  # noqa: E402

# depth2img asks for float32 autocast, which CPU autocast does not support; it warns and runs without.
pytestmark = pytest.mark.filterwarnings("ignore:In CPU autocast, but the target dtype is not supported")

PROMPT = "a watercolor painting of a lighthouse at dawn"


@dataclass(frozen=True)
class Expect:
    """What a tiny family must look like once loaded: the real checkpoint's layout, tiny."""

    pipeline: str
    in_channels: int = 4
    vae_scale_factor: int = 8
    prediction_type: str = "epsilon"
    scheduler: str = "PNDMScheduler"
    betas: tuple[str, float, float] = ("scaled_linear", 0.00085, 0.012)
    sd2_text: bool = False  # OpenCLIP-style text encoder (gelu) and linear projections in the UNet
    bert_text: bool = False  # a BERT text encoder and BertTokenizer (Taiyi)


EXPECT = {
    "sd15": Expect("StableDiffusionPipeline"),
    "sd21v": Expect("StableDiffusionPipeline", prediction_type="v_prediction", scheduler="DDIMScheduler", sd2_text=True),
    "sdxl": Expect("StableDiffusionXLPipeline", scheduler="EulerDiscreteScheduler"),
    "sd15-inpaint": Expect("StableDiffusionInpaintPipeline", in_channels=9, scheduler="DDIMScheduler"),
    "sd2-depth": Expect("StableDiffusionDepth2ImgPipeline", in_channels=5, sd2_text=True),
    "x4-upscale": Expect(
        "StableDiffusionUpscalePipeline",
        in_channels=7,
        vae_scale_factor=4,
        prediction_type="v_prediction",
        scheduler="DDIMScheduler",
        betas=("scaled_linear", 0.0001, 0.02),
        sd2_text=True,
    ),
    "sd15-bert": Expect("StableDiffusionPipeline", bert_text=True),
}
CONTROLNET_PIPELINES = {"sd15": "StableDiffusionControlNetPipeline", "sdxl": "StableDiffusionXLControlNetPipeline"}


def test_every_family_has_expectations() -> None:
    assert set(EXPECT) == set(tiny.FAMILIES)
    assert set(CONTROLNET_PIPELINES) == set(tiny.CONTROLNET_FAMILIES)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """One cache folder for the module, so each family is built once."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("sdnb-cache")
        mp.setenv("SDNB_CACHE_DIR", str(path))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield path


def _load(family: str):
    pipe = getattr(diffusers, EXPECT[family].pipeline).from_pretrained(
        tiny.tiny_model_dir(family), use_safetensors=True
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module", params=tiny.FAMILIES)
def loaded(request: pytest.FixtureRequest, cache: Path):
    family = request.param
    return family, tiny.tiny_model_dir(family), _load(family)


def _image(size: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def _mask() -> Image.Image:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    return mask


def _generate(family: str, pipe, seed: int = 0) -> Image.Image:
    """A 64x64 image with the family's own task inputs (mask, input image, low-res image)."""
    run = {"num_inference_steps": 2, "generator": torch.Generator("cpu").manual_seed(seed)}
    if family == "sd15-inpaint":
        run |= {"image": _image(), "mask_image": _mask(), "height": 64, "width": 64}
    elif family == "sd2-depth":
        run |= {"image": _image(), "strength": 1.0}
    elif family == "x4-upscale":
        run |= {"image": _image(16)}
    else:
        run |= {"height": 64, "width": 64}
    return pipe(PROMPT, **run).images[0]


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
    expect = EXPECT[family]
    assert type(pipe).__name__ == expect.pipeline
    assert pipe.vae_scale_factor == expect.vae_scale_factor
    assert pipe.vae.config.latent_channels == 4
    assert pipe.unet.config.in_channels == expect.in_channels
    assert pipe.unet.config.out_channels == 4
    sched = pipe.scheduler.config
    assert type(pipe.scheduler).__name__ == expect.scheduler
    assert (sched.beta_schedule, sched.beta_start, sched.beta_end) == expect.betas
    assert sched.num_train_timesteps == 1000
    assert sched.prediction_type == expect.prediction_type
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    for encoder in encoders:
        config = encoder.config
        assert config.vocab_size == len(pipe.tokenizer)
        assert config.pad_token_id == pipe.tokenizer.pad_token_id
        if not expect.bert_text:
            assert config.bos_token_id == pipe.tokenizer.bos_token_id
            assert config.eos_token_id == pipe.tokenizer.eos_token_id
    if expect.bert_text:  # Taiyi's layout: BERT reads [CLS] ... [SEP], up to 512 tokens, from a vocab.txt
        assert type(pipe.text_encoder).__name__ == "BertModel" and type(pipe.tokenizer).__name__ == "BertTokenizer"
        assert pipe.tokenizer.model_max_length == pipe.text_encoder.config.max_position_embeddings == 512
        assert pipe.tokenizer.convert_ids_to_tokens(pipe.tokenizer("猫").input_ids) == ["[CLS]", "猫", "[SEP]"]
        assert sorted(p.name for p in (tiny.tiny_model_dir(family) / "tokenizer").iterdir()) == [
            "tokenizer_config.json", "vocab.txt"]
    elif family != "sdxl":
        assert pipe.text_encoder.config.hidden_act == ("gelu" if expect.sd2_text else "quick_gelu")
        assert pipe.unet.config.use_linear_projection == expect.sd2_text
    if family == "sdxl":
        unet = pipe.unet.config
        hidden = pipe.text_encoder.config.hidden_size + pipe.text_encoder_2.config.hidden_size
        assert unet.addition_embed_type == "text_time"
        assert unet.cross_attention_dim == hidden
        assert unet.projection_class_embeddings_input_dim == (
            6 * unet.addition_time_embed_dim + pipe.text_encoder_2.config.projection_dim
        )
        assert pipe.config.force_zeros_for_empty_prompt
    elif family != "sd2-depth":
        assert pipe.safety_checker is None and pipe.feature_extractor is None


def test_generates_64px_images_deterministically(loaded) -> None:
    family, _, pipe = loaded
    first = _generate(family, pipe)
    assert first.size == (64, 64)
    assert np.asarray(first).std() > 0
    assert np.array_equal(np.asarray(first), np.asarray(_generate(family, pipe)))
    assert not np.array_equal(np.asarray(first), np.asarray(_generate(family, pipe, seed=1)))


def test_inpainting_uses_the_mask(cache: Path) -> None:
    """The 9-channel UNet sees the mask: a different mask gives a different image from the same seed."""
    pipe = _load("sd15-inpaint")
    first = np.asarray(_generate("sd15-inpaint", pipe)).astype(int)
    run = {"num_inference_steps": 2, "generator": torch.Generator("cpu").manual_seed(0), "height": 64, "width": 64}
    other = pipe(PROMPT, image=_image(), mask_image=Image.new("L", (64, 64), 255), **run).images[0]
    assert np.abs(first - np.asarray(other).astype(int)).mean() > 1


def test_depth2img_runs_its_depth_estimator_on_a_pil_image(cache: Path) -> None:
    folder = tiny.tiny_model_dir("sd2-depth")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["feature_extractor"] == ["transformers", "DPTImageProcessor"]  # a name transformers 5 has
    assert index["depth_estimator"] == ["transformers", "DPTForDepthEstimation"]
    pipe = _load("sd2-depth")
    assert type(pipe.feature_extractor).__name__ == "DPTImageProcessor"
    assert not pipe.depth_estimator.config.is_hybrid
    calls = []
    hook = pipe.depth_estimator.register_forward_hook(lambda module, args, out: calls.append(out.predicted_depth))
    try:
        image = _generate("sd2-depth", pipe)
    finally:
        hook.remove()
    assert image.size == (64, 64)
    assert len(calls) == 1
    depth = calls[0]
    assert depth.ndim == 3 and depth.shape[0] == 1  # one map per image; the pipeline resizes it to the latents
    assert float(depth.std()) > 1e-3  # a real (random) map, not a flat one that normalises to NaN

    @torch.no_grad()
    def estimate(image: Image.Image) -> torch.Tensor:
        return pipe.depth_estimator(pipe.feature_extractor(images=image, return_tensors="pt").pixel_values).predicted_depth

    assert not torch.allclose(estimate(_image(seed=1)), estimate(_image(seed=2)))  # the map follows the image


def test_x4_upscaler_turns_16px_into_64px(cache: Path) -> None:
    pipe = _load("x4-upscale")
    assert type(pipe.low_res_scheduler).__name__ == "DDPMScheduler"
    assert pipe.config.max_noise_level == 350
    assert pipe.unet.config.num_class_embeds > pipe.config.max_noise_level  # the noise level is a class label
    assert pipe.vae.config.scaling_factor == 0.08333
    run = {"num_inference_steps": 2, "generator": torch.Generator("cpu").manual_seed(0)}
    assert pipe(PROMPT, image=_image(16), **run).images[0].size == (64, 64)
    run["generator"] = torch.Generator("cpu").manual_seed(0)
    assert pipe(PROMPT, image=_image(8), **run).images[0].size == (32, 32)


@pytest.fixture(scope="module", params=tiny.CONTROLNET_FAMILIES)
def controlnet(request: pytest.FixtureRequest, cache: Path):
    family = request.param
    folder = tiny.tiny_controlnet_dir(family)
    model = diffusers.ControlNetModel.from_pretrained(folder, use_safetensors=True)
    base = _load(family)
    pipe = getattr(diffusers, CONTROLNET_PIPELINES[family])(**base.components, controlnet=model)
    pipe.set_progress_bar_config(disable=True)
    return family, folder, model, pipe


def test_controlnet_folder_is_small_safetensors_in_cache(controlnet, cache: Path) -> None:
    family, folder, _, _ = controlnet
    assert folder == cache / "tiny" / f"controlnet-{family}-v{tiny._VERSION}"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"config.json", "diffusion_pytorch_model.safetensors"}
    assert sum(p.stat().st_size for p in files) < 2_000_000
    assert tiny.tiny_controlnet_dir(family) == folder


def test_controlnet_is_copied_from_the_tiny_unet(controlnet) -> None:
    """Built with ``from_unet`` from the same seeded UNet the pipeline has: same layout, same weights."""
    _, _, model, pipe = controlnet
    for name in ("in_channels", "block_out_channels", "cross_attention_dim", "addition_embed_type"):
        assert model.config[name] == pipe.unet.config[name], name
    assert list(model.config.conditioning_embedding_out_channels) == [4, 8, 8, 16]
    assert torch.equal(model.conv_in.weight, pipe.unet.conv_in.weight)
    assert torch.equal(model.down_blocks[0].resnets[0].conv1.weight, pipe.unet.down_blocks[0].resnets[0].conv1.weight)
    assert all(conv.weight.detach().abs().max() > 0 for conv in model.controlnet_down_blocks)  # no zero convs


def test_the_control_image_visibly_changes_the_image(controlnet) -> None:
    _, _, _, pipe = controlnet
    dark = Image.new("RGB", (64, 64), "black")
    half = dark.copy()
    half.paste((255, 255, 255), (0, 0, 32, 64))

    def run(control: Image.Image) -> np.ndarray:
        generator = torch.Generator("cpu").manual_seed(0)
        out = pipe(PROMPT, image=control, height=64, width=64, num_inference_steps=2, generator=generator)
        return np.asarray(out.images[0]).astype(int)

    first = run(dark)
    assert first.shape == (64, 64, 3)
    assert np.array_equal(first, run(dark))
    assert np.abs(first - run(half)).mean() > 2  # of 255: clearly visible


def test_controlnet_weights_are_deterministic(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tiny.tiny_controlnet_dir("sd15") / "diffusion_pytorch_model.safetensors"
    monkeypatch.setenv("SDNB_CACHE_DIR", str(tmp_path))
    torch.manual_seed(1234)
    second = tiny.tiny_controlnet_dir("sd15") / "diffusion_pytorch_model.safetensors"
    assert first != second
    assert first.read_bytes() == second.read_bytes()


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
    with pytest.raises(SdnbError, match="ControlNet.*\n.*sd15, sdxl"):
        tiny.tiny_controlnet_dir("sd21v")


@pytest.mark.parametrize(
    ("entry", "builder", "name", "marker"),
    [
        ("tiny_model_dir", "_build", "sd15", "model_index.json"),
        ("tiny_controlnet_dir", "_build_controlnet", "controlnet-sd15", "config.json"),
    ],
)
def test_concurrent_builder_that_finishes_first_wins(
    entry: str, builder: str, name: str, marker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When another process renames its folder in first, ours is deleted and theirs is used."""
    monkeypatch.setenv("SDNB_CACHE_DIR", str(tmp_path))
    target = tmp_path / "tiny" / f"{name}-v{tiny._VERSION}"

    class Racer:
        def save_pretrained(self, path, **kwargs) -> None:
            (Path(path) / marker).write_text("{}")
            target.mkdir()  # the other process wins the race while we are writing
            (target / marker).write_text(json.dumps({"winner": True}))

    monkeypatch.setattr(tiny, builder, lambda family: Racer())
    assert getattr(tiny, entry)("sd15") == target
    assert json.loads((target / marker).read_text()) == {"winner": True}
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_half_written_folder_without_marker_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder left without its marker file (say, half copied by hand) is reported, not silently used."""
    monkeypatch.setenv("SDNB_CACHE_DIR", str(tmp_path))
    stale = tmp_path / "tiny" / f"controlnet-sd15-v{tiny._VERSION}"
    stale.mkdir(parents=True)
    (stale / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    with pytest.raises(SdnbError, match="incomplete"):
        tiny.tiny_controlnet_dir("sd15")
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [f"controlnet-sd15-v{tiny._VERSION}"]
