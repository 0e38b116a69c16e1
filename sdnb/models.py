"""The one model loader: registry names, hub ids, local folders and .safetensors files, real or tiny.

Every pipeline any notebook uses comes from :func:`load_pipeline`, which picks the source, loads
with ``use_safetensors=True`` and the memory plan's dtype, applies the plan, and turns the hub's
exceptions into one-paragraph errors that say what to do.
"""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path
from typing import Any

import torch

from .device import MemoryPlan, apply_plan, plan_memory
from .errors import SdnbError
from .registry import MODELS, MOVED, ModelSpec
from .settings import is_tiny, models_dir

__all__ = [
    "PIPELINES",
    "PICKLE_SUFFIXES",
    "load_pipeline",
    "family_of",
    "clear_cache",
    "explain_error",
    "pipeline_lock",
]

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl")

#: task -> family -> diffusers pipeline class name. Later notebooks add their tasks here.
PIPELINES: dict[str, dict[str, str]] = {
    "txt2img": {
        "sd15": "StableDiffusionPipeline",
        "sd21v": "StableDiffusionPipeline",
        "sdxl": "StableDiffusionXLPipeline",
    },
}

_CACHE: dict[tuple, Any] = {}


def family_of(pipe: Any) -> str:
    """The registry family of a loaded pipeline (``sdxl`` when it has a second text encoder)."""
    if getattr(pipe, "text_encoder_2", None) is not None:
        return "sdxl"
    pred = getattr(pipe.scheduler.config, "prediction_type", "epsilon")
    return "sd21v" if pred == "v_prediction" else "sd15"


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
    """Drop the cached pipeline and free its memory (done automatically before loading another)."""
    _CACHE.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _pipeline_class(task: str, family: str) -> type:
    import diffusers

    try:
        return getattr(diffusers, PIPELINES[task][family])
    except KeyError:
        raise SdnbError(f"No {task!r} pipeline is known for model family {family!r}.") from None


def _resolve(model: str | os.PathLike | ModelSpec) -> tuple[str, str, ModelSpec | None]:
    """(kind, location, spec) where kind is 'tiny', 'folder', 'file' or 'hub'."""
    if isinstance(model, ModelSpec):
        spec: ModelSpec | None = model
    else:
        spec = MODELS.get(str(model))
    if spec is not None:
        if is_tiny():
            from .tiny import tiny_model_dir

            return "tiny", str(tiny_model_dir(spec.family)), spec
        local = models_dir() / spec.key if models_dir() else None
        if local is not None and (local / "model_index.json").is_file():
            return "folder", str(local), spec
        return "hub", spec.repo, spec
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
    if text in MOVED:
        raise SdnbError(
            f"The Hugging Face repo {text} was deleted by its owner.",
            hint=f"Use the maintained copy {MOVED[text]!r} instead (or a registry name: {', '.join(MODELS)}).",
        )
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
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
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        why = "HF_HUB_OFFLINE is set" if offline else f"{constants.ENDPOINT} could not be reached"
        return SdnbError(
            f"{repo} is not in the local cache and {why}, so it cannot be downloaded.",
            hint="Connect to the internet (or set HF_ENDPOINT to a reachable mirror before importing sdnb), "
            "put the model in SDNB_MODELS_DIR, or use tiny mode (SDNB_TINY=1) to try the notebooks offline.",
        )
    return SdnbError(f"Loading {repo} failed: {type(exc).__name__}: {exc}")


def _from_source(cls: type, kind: str, where: str, dtype: torch.dtype, spec: ModelSpec | None) -> Any:
    kwargs: dict[str, Any] = {"dtype": dtype}
    if kind == "file":
        return cls.from_single_file(where, **kwargs)
    kwargs["use_safetensors"] = True
    if kind == "hub" and dtype == torch.float16 and (spec is None or spec.fp16_variant):
        try:
            return cls.from_pretrained(where, variant="fp16", **kwargs)
        except (ValueError, OSError) as exc:  # no fp16 variant: fall back to the full weights
            if "variant" not in str(exc).lower():
                raise
    return cls.from_pretrained(where, **kwargs)


def _quiet_loading() -> None:
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def load_pipeline(
    model: str | os.PathLike | ModelSpec = "sd15",
    *,
    task: str = "txt2img",
    family: str | None = None,
    plan: MemoryPlan | None = None,
) -> Any:
    """Load (or reuse) the diffusers pipeline for ``model`` and ``task``, with the memory plan applied.

    ``model`` is a registry name (``"sd15"``, ``"sd21"``, ``"sdxl"``), a hub id, a local diffusers
    folder or a ``.safetensors`` file (then give ``family`` if it is not SD 1.5). In tiny mode registry
    names load tiny random-weight stand-ins through the same ``from_pretrained`` path.
    """
    with _LOAD_LOCK:
        return _load(model, task, family, plan)


def _load(model: str | os.PathLike | ModelSpec, task: str, family: str | None, plan: MemoryPlan | None) -> Any:
    kind, where, spec = _resolve(model)
    fam = family or (spec.family if spec else None)
    if fam is None and kind == "folder":
        fam = "sdxl" if (Path(where) / "text_encoder_2").is_dir() else "sd15"
    fam = fam or "sd15"
    key = (kind, where, task, fam)
    cached = _CACHE.get(key)
    if cached is not None and plan in (None, cached.sdnb_plan):
        return cached  # no new plan: free VRAM shrinks once a model is loaded, so re-planning would reload it
    plan = plan or plan_memory(family=fam)
    clear_cache()  # one pipeline in memory at a time: Colab's RAM and VRAM are small
    if kind == "tiny":  # no download to follow: keep notebook outputs free of loading bars
        _quiet_loading()
    cls = _pipeline_class(task, fam)
    try:
        pipe = _from_source(cls, kind, where, plan.dtype, spec)
        apply_plan(pipe, plan)
    except SdnbError:
        raise
    except Exception as exc:  # noqa: BLE001 - every hub/IO failure becomes one clear paragraph
        raise explain_error(exc, where) from exc
    pipe.sdnb_model = spec.key if spec else Path(where).name
    pipe.sdnb_family = fam
    pipe.sdnb_plan = plan
    _CACHE[key] = pipe
    return pipe
