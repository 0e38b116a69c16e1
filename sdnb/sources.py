"""Models from ModelScope (modelscope.cn), the usual model source in mainland China.

:func:`modelscope_download` fetches a diffusers-format repo through the ``modelscope`` package's own
``snapshot_download`` into its own cache (``MODELSCOPE_CACHE``, default ``~/.cache/modelscope``), configs and
``.safetensors`` weights only: no ``.bin``/``.ckpt`` pickle is ever fetched. The folder it returns is then loaded
by :func:`sdnb.models.load_pipeline` exactly like a local diffusers folder.

``modelscope`` is an optional extra (``pip install modelscope``, or ``pip install "sdnb[modelscope]"``): only
users who pick ModelScope as their source need it, and it brings its own HTTP client and hub library.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from .errors import SdnbError

__all__ = ["CONFIG_PATTERNS", "FP16", "WEIGHTS", "modelscope_download", "require_modelscope"]

#: What a diffusers pipeline needs besides weights: its index, each component's config, tokenizer files.
CONFIG_PATTERNS: tuple[str, ...] = ("model_index.json", "*/*.json", "*/*.txt", "*/*.model")

#: Weights only inside component folders (a root-level ``.safetensors`` is a single-file copy of the same model).
WEIGHTS = "*/*.safetensors"
FP16 = "*/*.fp16.safetensors"


def _missing() -> SdnbError:
    return SdnbError(
        "Downloading from ModelScope needs the modelscope package, which is not installed.",
        hint='Install it with `pip install modelscope` (in a notebook: %pip install modelscope) and run the cell '
        "again; or pick another source: sdnb.settings.set_source('mirror') or set_source('hub').",
    )


def require_modelscope() -> None:
    """Raise the "pip install modelscope" paragraph now if the package is missing (without importing it)."""
    if importlib.util.find_spec("modelscope") is None:
        raise _missing()


def _snapshot_download() -> Any:
    try:
        return importlib.import_module("modelscope").snapshot_download
    except ImportError:
        raise _missing() from None


def modelscope_download(model_id: str, *, fp16: bool = False, revision: str | None = None) -> Path:
    """The local folder of ModelScope repo ``model_id`` (``owner/name``), downloaded on first use.

    With ``fp16`` the ``*.fp16.safetensors`` variant weights are fetched (half the download) and the
    full-precision ``.safetensors`` only for components that have no fp16 file; without, the full-precision
    files only. A repo that is not in diffusers format (no ``model_index.json``), or whose weights exist only as
    pickles, is refused with a clear message.
    """
    download = _snapshot_download()
    folder = _fetch(download, model_id, revision, [*CONFIG_PATTERNS, FP16 if fp16 else WEIGHTS], [] if fp16 else [FP16])
    if not (folder / "model_index.json").is_file():
        raise SdnbError(
            f"The ModelScope repo {model_id} is not a diffusers model: it has no model_index.json (it may hold a "
            "single checkpoint file, or a model for ModelScope's own pipelines).",
            hint="Use a diffusers-format copy (its file list shows model_index.json and unet/, vae/, text_encoder/ "
            "folders), or download a single .safetensors checkpoint and pass its path as the model.",
        )
    missing = _without_weights(folder)
    if missing and fp16:
        folder = _fetch(download, model_id, revision, [*CONFIG_PATTERNS, *(f"{m}/*.safetensors" for m in missing)],
                        [FP16])
        missing = _without_weights(folder)
    if missing:
        raise SdnbError(
            f"The ModelScope repo {model_id} has no .safetensors weights for {', '.join(missing)} (only pickle files "
            "such as .bin or .ckpt, which can run code hidden in them), so sdnb does not download them.",
            hint="Load the same model from the Hugging Face hub or its mirror (sdnb.settings.set_source('mirror')), "
            "or use another ModelScope copy that has .safetensors files.",
        )
    return folder


def _without_weights(folder: Path) -> list[str]:
    """The component folders (those with a model ``config.json``) that have no ``.safetensors`` file."""
    return sorted(d.name for d in folder.iterdir()
                  if d.is_dir() and (d / "config.json").is_file() and not any(d.glob("*.safetensors")))


def _fetch(download: Any, model_id: str, revision: str | None, allow: list[str], ignore: list[str]) -> Path:
    try:
        return Path(download(model_id=model_id, revision=revision, allow_patterns=allow, ignore_patterns=ignore))
    except Exception as exc:  # noqa: BLE001 - every ModelScope failure becomes one clear paragraph
        raise _explain(exc, model_id) from exc


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


_NOT_FOUND = ("NotExistError", "NoValidRevisionError", "RepositoryNotFoundError")


def _explain(exc: BaseException, model_id: str) -> SdnbError:
    chain = _chain(exc)
    text = " ".join(str(e).lower() for e in chain)
    if any(type(e).__name__ in _NOT_FOUND for e in chain) or any(
        getattr(e, "status_code", None) == 404 for e in chain
    ) or "404" in text or "not exist" in text:
        return SdnbError(
            f"ModelScope has no model {model_id!r} (or it is private).",
            hint="Check the id on modelscope.cn/models (owner/name, e.g. AI-ModelScope/stable-diffusion-v1-5), "
            "or use a registry name such as 'sd15'.",
        )
    if any(isinstance(e, (ConnectionError, TimeoutError)) for e in chain) or any(
        type(e).__name__ in ("ConnectionError", "Timeout", "ConnectTimeout", "MaxRetryError") for e in chain
    ):
        return SdnbError(
            f"modelscope.cn could not be reached, so {model_id} cannot be downloaded.",
            hint="Check the internet connection; outside mainland China ModelScope can be slow or blocked, so "
            "pick the Hugging Face hub instead (sdnb.settings.set_source('hub')); or use tiny mode (SDNB_TINY=1) "
            "to try the notebooks offline.",
        )
    return SdnbError(f"Downloading {model_id} from ModelScope failed: {type(exc).__name__}: {exc}",
                     hint="Run the cell again; if it fails again, pick another source with sdnb.settings.set_source.")
