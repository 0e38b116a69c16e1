"""The one model loader: registry names, hub ids, local folders and .safetensors files, real or tiny.

Every pipeline any notebook uses comes from :func:`load_pipeline`, which picks the source (the Hugging Face
hub, its mirror or ModelScope: :func:`sdnb.settings.set_source`), loads with ``use_safetensors=True`` and the
memory plan's dtype, applies the plan, and turns the hub's exceptions into one-paragraph errors that say what
to do. A ModelScope model is downloaded into the modelscope package's cache and loaded from there as a
diffusers folder, through the same code as every other source.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .device import MemoryPlan, apply_plan, check_controlnet_units, plan_memory
from .errors import SdnbError
from .registry import CONTROLNETS, MODELS, MOVED, ModelSpec
from .settings import apply_mirror, hub_offline, is_tiny, model_source, models_dir
from .sources import FP16, modelscope_download
from .tiny import tiny_controlnet_dir, tiny_model_dir

__all__ = [
    "PIPELINES",
    "CONTROLNET_PIPELINES",
    "PICKLE_SUFFIXES",
    "load_pipeline",
    "load_controlnet",
    "check_checkpoint_file",
    "check_tokenizers",
    "pipeline_class",
    "clear_cache",
    "explain_error",
    "pipeline_lock",
]

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl")

_BASE = ("sd15", "sd21v", "sdxl", "sd15-bert")

#: task -> family -> diffusers pipeline class name. A family missing under a task cannot run it
#: (inpainting runs on every base model, as in the WebUI; depth2img needs a depth model).
PIPELINES: dict[str, dict[str, str]] = {
    "txt2img": {"sd15": "StableDiffusionPipeline", "sd21v": "StableDiffusionPipeline",
                "sdxl": "StableDiffusionXLPipeline", "sd15-bert": "StableDiffusionPipeline"},
    "img2img": {"sd15": "StableDiffusionImg2ImgPipeline", "sd21v": "StableDiffusionImg2ImgPipeline",
                "sdxl": "StableDiffusionXLImg2ImgPipeline", "sd15-bert": "StableDiffusionImg2ImgPipeline"},
    "inpaint": {"sd15": "StableDiffusionInpaintPipeline", "sd21v": "StableDiffusionInpaintPipeline",
                "sdxl": "StableDiffusionXLInpaintPipeline", "sd15-inpaint": "StableDiffusionInpaintPipeline",
                "sd15-bert": "StableDiffusionInpaintPipeline"},
    "depth2img": {"sd2-depth": "StableDiffusionDepth2ImgPipeline"},
    "upscale": {"x4-upscale": "StableDiffusionUpscalePipeline"},
}

#: The same with ControlNet units attached (``load_pipeline(..., controlnet=...)``).
CONTROLNET_PIPELINES: dict[str, dict[str, str]] = {
    "txt2img": {"sd15": "StableDiffusionControlNetPipeline", "sd21v": "StableDiffusionControlNetPipeline",
                "sd15-bert": "StableDiffusionControlNetPipeline", "sdxl": "StableDiffusionXLControlNetPipeline"},
    "img2img": {"sd15": "StableDiffusionControlNetImg2ImgPipeline",
                "sd21v": "StableDiffusionControlNetImg2ImgPipeline",
                "sd15-bert": "StableDiffusionControlNetImg2ImgPipeline",
                "sdxl": "StableDiffusionXLControlNetImg2ImgPipeline"},
    "inpaint": {"sd15": "StableDiffusionControlNetInpaintPipeline",
                "sd21v": "StableDiffusionControlNetInpaintPipeline",
                "sd15-bert": "StableDiffusionControlNetInpaintPipeline",
                "sd15-inpaint": "StableDiffusionControlNetInpaintPipeline",
                "sdxl": "StableDiffusionXLControlNetInpaintPipeline"},
}


@dataclass
class _Loaded:
    """The one model in memory: its weights loaded once, and every task pipeline derived from them."""

    key: tuple
    base: Any
    pipes: dict[tuple, Any] = field(default_factory=dict)  # (task, extra component ids) -> pipeline
    controlnets: dict[str, Any] = field(default_factory=dict)  # location -> ControlNetModel
    active: Any = None  # the pipeline the memory plan was last applied to


_LOADED: _Loaded | None = None

#: ControlNet family -> the model families whose UNet it fits (an inpainting UNet has SD 1.5's blocks).
#: Taiyi (sd15-bert) has SD 1.4's UNet and a 768-wide BERT encoder, so SD 1.5 ControlNets fit it too.
_FITS: dict[str, tuple[str, ...]] = {"sd15": ("sd15", "sd15-inpaint", "sd15-bert"), "sdxl": ("sdxl",)}


_LOCKS_GUARD = threading.Lock()
_LOAD_LOCK = threading.RLock()  # two threads loading at once would both build the same modules


def pipeline_lock(pipe: Any) -> threading.RLock:
    """The lock that serialises runs on one pipeline (its scheduler holds per-run state).

    Held for a whole generation, so a Generate click while a plain cell runs waits instead of corrupting it.
    """
    with _LOCKS_GUARD:
        lock = pipe.__dict__.get("_sdnb_lock")
        if lock is None:
            lock = pipe.__dict__["_sdnb_lock"] = threading.RLock()
    return lock


def clear_cache() -> None:
    """Drop the loaded model (and every pipeline derived from it) and free its memory.

    Done automatically before another model is loaded: Colab's RAM and VRAM hold one model at a time.
    """
    global _LOADED
    _LOADED = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def pipeline_class(task: str, family: str, controlnet: bool = False) -> type:
    """The diffusers pipeline class that runs ``task`` on a model of ``family`` (with ControlNet or not)."""
    import diffusers

    table = CONTROLNET_PIPELINES if controlnet else PIPELINES
    if task not in PIPELINES:
        raise SdnbError(f"Unknown task {task!r}.", hint=f"Choose one of: {', '.join(PIPELINES)}.")
    names = table.get(task, {})
    if family not in names:
        able = [m for m, spec in MODELS.items() if spec.family in names]
        what = f"{task} with ControlNet" if controlnet else task
        raise SdnbError(
            f"A model of family {family!r} cannot run {what}.",
            hint=f"Use a model that can: {', '.join(able)}." if able else f"No model here runs {what}.",
        )
    return getattr(diffusers, names[family])


def _resolve(model: str | os.PathLike | ModelSpec) -> tuple[str, str, ModelSpec | None]:
    """(kind, location, spec) where kind is 'tiny', 'folder', 'file', 'hub' or 'modelscope'."""
    if isinstance(model, ModelSpec):
        spec: ModelSpec | None = model
    else:
        spec = MODELS.get(str(model))
    if spec is not None:
        if is_tiny():
            _quiet_loading()  # nothing downloads: keep notebook outputs free of building and loading bars
            return "tiny", str(tiny_model_dir(spec.family)), spec
        local = models_dir() / spec.key if models_dir() else None
        if local is not None and (local / "model_index.json").is_file():
            return "folder", str(local), spec
        if model_source() != "modelscope":
            return "hub", spec.repo, spec
        if spec.modelscope is None:
            with_copy = [key for key, other in MODELS.items() if other.modelscope]
            raise SdnbError(
                f"{spec.label} ({spec.key}) has no ModelScope copy that sdnb knows of, and the model source is "
                "ModelScope.",
                hint="Download it through the Hugging Face mirror instead: sdnb.settings.set_source('mirror') "
                f"(hf-mirror.com); or pick a model ModelScope has: {', '.join(with_copy)}.",
            )
        return "modelscope", spec.modelscope, spec
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise SdnbError(
            f"{path.name} is a pickle checkpoint ({path.suffix}). Loading a pickle can run arbitrary code "
            "hidden in the file, so sdnb refuses it.",
            hint="Download the .safetensors version of this model (most model pages offer one), or convert it "
            "on a machine you trust and load the .safetensors file.",
        )
    if path.suffix.lower() == ".safetensors":
        if not path.is_file():
            raise SdnbError(f"Model file {path} does not exist.", hint="Check the path and the file name.")
        return "file", str(path), None
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise SdnbError(
                f"{path} is a folder but not a diffusers model (no model_index.json in it).",
                hint="Point to the folder that holds model_index.json, or to a single .safetensors file.",
            )
        return "folder", str(path), None
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        if model_source() == "modelscope":  # the user chose ModelScope: owner/name is a ModelScope id
            return "modelscope", text, None
        if text in MOVED:
            raise SdnbError(
                f"The Hugging Face repo {text} was deleted by its owner.",
                hint=f"Use the maintained copy {MOVED[text]!r} instead (or a registry name: {', '.join(MODELS)}).",
            )
        return "hub", text, None
    raise SdnbError(
        f"{text!r} is neither a known model name, a hub repo id (owner/name), a diffusers folder nor a "
        ".safetensors file.",
        hint=f"Known names: {', '.join(MODELS)}.",
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from (diffusers wraps the hub's errors)."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _is_offline(exc: BaseException) -> bool:
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    text = str(exc).lower()
    return isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError)) or any(
        k in text for k in ("not cached locally", "not fully cached", "connection", "resolve host", "timed out")
    ) or type(exc).__name__ in {"ConnectError", "NetworkError", "ConnectTimeout"}


def explain_error(exc: BaseException, repo: str) -> SdnbError:
    """Turn a loading exception into a one-paragraph :class:`SdnbError` that says what to do."""
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    chain = _chain(exc)
    page = f"{constants.ENDPOINT}/{repo}"
    if any(isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower() for e in chain):
        return SdnbError(
            f"The GPU ran out of memory while working with {repo}.",
            hint="Lower the batch size or the image size; or restart the runtime and use a memory plan with "
            "offload='model' (model CPU offload) and VAE tiling on, e.g. "
            "dataclasses.replace(plan_memory(), offload='model', vae_tiling=True, batch_size=1).",
        )
    if any(isinstance(e, GatedRepoError) for e in chain):
        return SdnbError(
            f"{repo} is gated: its license must be accepted before it can be downloaded.",
            hint=f"Log in to Hugging Face, open {page} and accept the license, then run the login cell of "
            "notebook 00 again (on Colab, set the HF_TOKEN secret).",
        )
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        moved = MOVED.get(repo)
        return SdnbError(
            f"The Hugging Face repo {repo} does not exist (or is private and your token cannot see it).",
            hint=f"Use {moved!r} instead." if moved else f"Check the id, or use a registry name: {', '.join(MODELS)}.",
        )
    if any(isinstance(e, RevisionNotFoundError) for e in chain):
        return SdnbError(f"{repo} has no such revision.", hint="Leave the revision at 'main'.")
    if any(_is_offline(e) for e in chain):
        why = "HF_HUB_OFFLINE is set" if hub_offline() else f"{constants.ENDPOINT} could not be reached"
        return SdnbError(
            f"{repo} is not in the local cache and {why}, so it cannot be downloaded.",
            hint="Connect to the internet (or use a reachable mirror: sdnb.settings.set_mirror('https://hf-mirror.com')), "
            "put the model in SDNB_MODELS_DIR, or use tiny mode (SDNB_TINY=1) to try the notebooks offline.",
        )
    return SdnbError(f"Loading {repo} failed: {type(exc).__name__}: {exc}")


#: Key prefixes of a whole Stable Diffusion checkpoint in one file (original and diffusers layouts).
_CHECKPOINT_KEYS = ("model.diffusion_model.", "unet.", "conditioner.embedders.", "first_stage_model.")
_LORA_MARKS = ("lora_up", "lora_down", "lora_A", "lora_B", "lora_unet_", "lora_te")


def check_checkpoint_file(path: str | os.PathLike) -> None:
    """Refuse a ``.safetensors`` file that is not a whole Stable Diffusion checkpoint, saying what it looks like
    (a LoRA, an upscaler, a damaged file), before diffusers turns it into a confusing error."""
    from safetensors import safe_open

    name = Path(path).name
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            keys = list(f.keys())
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad header
        raise SdnbError(f"{name} is not a readable .safetensors file ({type(exc).__name__}: {exc}).",
                        hint="It is probably damaged or cut off: download it again.") from None
    if any(k.startswith(_CHECKPOINT_KEYS) for k in keys):
        return
    if any(mark in k for k in keys for mark in _LORA_MARKS):
        what = "a LoRA (small add-on weights), not a whole model"
        hint = "Load a base model (e.g. sd15) and add the LoRA to the prompt as <lora:NAME:1> (notebook 08)."
    else:
        what = f"not a Stable Diffusion checkpoint: its {len(keys)} tensors (e.g. {', '.join(keys[:3]) or 'none'}) " \
               "have no UNet"
        hint = "Pass a whole checkpoint (.safetensors of a Stable Diffusion model), a diffusers folder or a hub id."
    raise SdnbError(f"{name} is {what}.", hint=hint)


def _from_source(cls: type, kind: str, where: str, dtype: torch.dtype, spec: ModelSpec | None) -> Any:
    kwargs: dict[str, Any] = {"dtype": dtype}
    if kind == "file":
        check_checkpoint_file(where)
        return cls.from_single_file(where, **kwargs)
    kwargs["use_safetensors"] = True
    if kind == "hub" and spec is not None and spec.revision:
        kwargs["revision"] = spec.revision  # the commit that has the .safetensors files
    if kind in ("hub", "folder") and dtype == torch.float16 and (spec is None or spec.fp16_variant) and (
        kind == "hub" or any(Path(where).glob(FP16))  # a ModelScope download may hold only fp16 files
    ):
        try:
            return cls.from_pretrained(where, variant="fp16", **kwargs)
        except (ValueError, OSError) as exc:  # no fp16 variant: fall back to the full weights
            if "variant" not in str(exc).lower():
                raise
    return cls.from_pretrained(where, **kwargs)


class _NoEmptyFp32Notice(logging.Filter):
    """Drops diffusers' "modules ... that should be kept in float32: []" notice, which it logs with an empty list
    whenever a pipeline casts its VAE for a run (SDXL inpainting does at every call): nothing is wrong then."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


_FP32_NOTICE = _NoEmptyFp32Notice()


def _quiet_loading() -> None:
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


@contextmanager
def _diffusers_errors_only() -> Iterator[None]:
    """diffusers' warnings off for a moment: ``from_pipe`` reports every shared component, and loading a model
    whose text encoder is not CLIP (Taiyi's BERT) warns that it expected a ``CLIPTextModel``."""
    import diffusers

    level = diffusers.utils.logging.get_verbosity()
    diffusers.utils.logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers.utils.logging.set_verbosity(level)


def check_tokenizers(pipe: Any, name: str) -> None:
    """Refuse a pipeline whose tokenizer was not really built: transformers makes a tokenizer of the special
    tokens alone when its vocabulary files are missing, and every prompt would then silently become unknown
    tokens (one picture whatever the prompt)."""
    for tok_name, enc_name in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        tokenizer, encoder = getattr(pipe, tok_name, None), getattr(pipe, enc_name, None)
        if tokenizer is None or encoder is None:
            continue
        size = getattr(encoder.config, "vocab_size", 0)
        if len(tokenizer) * 2 < size:
            raise SdnbError(
                f"The tokenizer of {name} could not be built from its files: it knows {len(tokenizer)} tokens while "
                f"its text encoder reads {size}, so every prompt would become unknown tokens.",
                hint=f"Its {tok_name}/ folder lacks its vocabulary (vocab.txt for a BERT tokenizer, vocab.json and "
                "merges.txt for CLIP), or names files that must be downloaded: download the model again (or the "
                "missing files into that folder) and load it again.",
            )


def load_pipeline(
    model: str | os.PathLike | ModelSpec = "sd15",
    *,
    task: str = "txt2img",
    family: str | None = None,
    plan: MemoryPlan | None = None,
    controlnet: Any = None,
    components: Mapping[str, Any] | None = None,
) -> Any:
    """The diffusers pipeline that runs ``task`` on ``model``, with the memory plan applied.

    ``model`` is a registry name (``"sd15"``, ``"sdxl"``, ``"sd15-inpainting"``, ...), a hub id, a local
    diffusers folder or a ``.safetensors`` file (then give ``family`` if it is not SD 1.5). The weights are
    loaded once per model: asking for another task on the same model derives its pipeline from the loaded
    components (``from_pipe``), so switching txt2img -> img2img -> inpaint neither reloads nor doubles memory.
    ``controlnet`` (a ControlNet registry name, folder, hub id or model, or a list of them for several units)
    and ``components`` (e.g. ``{"depth_estimator": model}``) attach extra components the same way. In tiny
    mode registry names load tiny random-weight stand-ins through the same ``from_pretrained`` path.
    """
    with _LOAD_LOCK:
        logging.getLogger("diffusers.models.modeling_utils").addFilter(_FP32_NOTICE)  # once: a filter set
        loaded = _load_model(model, family, plan)
        fam = loaded.base.sdnb_family
        extra = dict(components or {})
        if controlnet is not None:
            count = len(controlnet) if isinstance(controlnet, (list, tuple)) else 1
            check_controlnet_units(loaded.base.sdnb_plan, count, fam)  # before any ControlNet is loaded
            extra["controlnet"] = load_controlnet(controlnet, fam)
        cls = pipeline_class(task, fam, controlnet="controlnet" in extra)
        key = (task, tuple(sorted((name, _ids(value)) for name, value in extra.items())))
        pipe = loaded.pipes.get(key)
        if pipe is None:
            pipe = loaded.base if type(loaded.base) is cls and not extra else _derive(loaded.base, cls, extra)
            loaded.pipes[key] = pipe
        if loaded.active is not pipe:  # offload hooks follow the pipeline in use
            apply_plan(pipe, loaded.base.sdnb_plan)
            loaded.active = pipe
        return pipe


def _ids(value: Any) -> tuple[int, ...]:
    return tuple(map(id, value)) if isinstance(value, (list, tuple)) else (id(value),)


def _derive(base: Any, cls: type, extra: dict[str, Any]) -> Any:
    """A pipeline of class ``cls`` sharing ``base``'s loaded components (no copy, no reload)."""
    import diffusers

    if isinstance(extra.get("controlnet"), list):
        extra["controlnet"] = diffusers.MultiControlNetModel(extra["controlnet"])
    try:
        with _diffusers_errors_only():
            pipe = cls.from_pipe(base, **extra)
    except (TypeError, ValueError) as exc:
        raise SdnbError(f"{cls.__name__} cannot be made from {base.sdnb_model}: {exc}",
                        hint="Pick a model whose family can run this task.") from exc
    pipe.sdnb_model, pipe.sdnb_family, pipe.sdnb_plan = base.sdnb_model, base.sdnb_family, base.sdnb_plan
    pipe.sdnb_scheduler_config = base.sdnb_scheduler_config
    pipe.__dict__["_sdnb_lock"] = pipeline_lock(base)  # one run at a time on the shared weights
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _family(kind: str, where: str, spec: ModelSpec | None, family: str | None) -> str:
    if family is not None:
        return family
    if spec is not None:
        return spec.family
    if kind == "folder":
        index = json.loads((Path(where) / "model_index.json").read_text())
        by_class = {"StableDiffusionDepth2ImgPipeline": "sd2-depth", "StableDiffusionUpscalePipeline": "x4-upscale"}
        if index.get("_class_name") in by_class:
            return by_class[index["_class_name"]]
        if "text_encoder_2" in index:
            return "sdxl"
        return "sd15-bert" if (index.get("text_encoder") or [None, None])[1] == "BertModel" else "sd15"
    return "sd15"


def _load_model(model: str | os.PathLike | ModelSpec, family: str | None, plan: MemoryPlan | None) -> _Loaded:
    global _LOADED
    apply_mirror()  # HF_ENDPOINT may have been set after huggingface_hub was imported
    kind, where, spec = _resolve(model)
    # a ModelScope id with no registry entry: its family is read from its model_index.json once downloaded
    fam = None if kind == "modelscope" and spec is None and family is None else _family(kind, where, spec, family)
    key = (kind, where, fam)
    if _LOADED is not None and _LOADED.key == key and plan in (None, _LOADED.base.sdnb_plan):
        return _LOADED  # no new plan: free VRAM shrinks once a model is loaded, so re-planning would reload it
    plan = plan or plan_memory(family=fam or "sd15")
    clear_cache()  # one model in memory at a time: Colab's RAM and VRAM are small
    name = where
    if kind == "modelscope":
        fp16 = plan.dtype == torch.float16 and (spec is None or spec.fp16_variant)
        kind, where = "folder", str(modelscope_download(where, fp16=fp16))
        fam = fam or _family(kind, where, None, None)
    tasks = spec.tasks if spec is not None else [t for t, names in PIPELINES.items() if fam in names]
    if not tasks:
        raise SdnbError(f"Unknown model family {family!r}.", hint=f"Use one of: {', '.join(_BASE)}.")
    cls = pipeline_class(tasks[0], fam)
    try:
        with _diffusers_errors_only():
            pipe = _from_source(cls, kind, where, plan.dtype, spec)
        check_tokenizers(pipe, name)
        apply_plan(pipe, plan)
    except SdnbError:
        raise
    except Exception as exc:  # noqa: BLE001 - every hub/IO failure becomes one clear paragraph
        raise explain_error(exc, name) from exc
    pipe.sdnb_model = spec.key if spec else Path(name).name
    pipe.sdnb_family = fam
    pipe.sdnb_plan = plan
    pipe.sdnb_scheduler_config = dict(pipe.scheduler.config)  # samplers are built on the model's own schedule
    _LOADED = _Loaded(key, pipe, active=pipe)
    return _LOADED


def load_controlnet(ref: Any, family: str = "sd15") -> Any:
    """A ``ControlNetModel`` (or a list of them) for a base model of ``family``, loaded once and kept with it.

    ``ref`` is a ControlNet registry name (``"sd15-canny"``, ...), a local folder, a hub id, an already loaded
    ``ControlNetModel``, or a list of these (several units). In tiny mode registry names load a tiny
    ControlNet matched to the tiny base model.
    """
    if isinstance(ref, (list, tuple)):
        return [load_controlnet(r, family) for r in ref]
    if not isinstance(ref, (str, os.PathLike)):
        return ref
    import diffusers

    spec = CONTROLNETS.get(str(ref))
    if spec is not None and family not in _FITS[spec.family]:
        fitting = [k for k, c in CONTROLNETS.items() if family in _FITS[c.family]]
        raise SdnbError(f"ControlNet {spec.key!r} is made for {spec.family} models, not {family}.",
                        hint=f"Use one of: {', '.join(fitting)}." if fitting else "No ControlNet here fits this model.")
    if spec is not None and is_tiny():
        _quiet_loading()
        where = str(tiny_controlnet_dir(spec.family))
    elif spec is not None:
        where = spec.repo
    else:
        where = os.fspath(ref)
    cache = _LOADED.controlnets if _LOADED is not None else {}
    if where in cache:
        return cache[where]
    dtype = _LOADED.base.sdnb_plan.dtype if _LOADED is not None else torch.float32
    try:
        net = diffusers.ControlNetModel.from_pretrained(where, dtype=dtype, use_safetensors=True)
    except Exception as exc:  # noqa: BLE001 - every hub/IO failure becomes one clear paragraph
        raise explain_error(exc, where) from exc
    cache[where] = net
    return net
