"""Settings from environment variables: tiny mode, where outputs, caches and local models live.

Everything that any notebook writes goes under :func:`output_dir`; nothing else in the
package hard-codes a path or reads the environment directly.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SdnbError

__all__ = [
    "REPO",
    "BRANCH",
    "colab_url",
    "is_tiny",
    "set_tiny",
    "output_dir",
    "cache_dir",
    "models_dir",
    "lora_dir",
    "set_lora_dir",
    "lora_fuse",
    "set_lora_fuse",
    "set_output_dir",
    "set_mirror",
    "apply_mirror",
    "DEFAULT_HUB",
    "DEFAULT_MIRROR",
    "SOURCES",
    "model_source",
    "set_source",
    "describe_source",
    "hub_offline",
    "env_token",
    "set_env_token",
    "world_size",
    "process_rank",
]

#: GitHub "owner/name" of this project: the one place badges and Colab installs read it from.
REPO = "sdnb-project/sdnb"
BRANCH = "main"

_TRUE = {"1", "true", "yes", "on"}


def colab_url(notebook_path: str) -> str:
    """The "Open in Colab" address of a notebook path inside the repository."""
    return f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{notebook_path}"


def is_tiny() -> bool:
    """True in tiny mode (``SDNB_TINY=1``): tiny random-weight models, no network, images are noise."""
    return os.environ.get("SDNB_TINY", "").strip().lower() in _TRUE


def set_tiny(on: bool = True) -> None:
    """Switch tiny mode on or off for this process (what ``SDNB_TINY`` does)."""
    os.environ["SDNB_TINY"] = "1" if on else "0"


def _dir_from_env(var: str, default: Path, what: str) -> Path:
    path = Path(os.environ.get(var) or default).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdnbError(
            f"Cannot {what} the folder '{path}': {exc.strerror or exc}.",
            hint=f"Set {var} to a folder you can write to (on Colab, e.g. os.environ['{var}'] = '/content/sdnb').",
        ) from exc
    return path


def output_dir() -> Path:
    """Root of everything the notebooks write (``SDNB_OUTPUT_DIR``, default ``./outputs``)."""
    return _dir_from_env("SDNB_OUTPUT_DIR", Path.cwd() / "outputs", "save images into")


def cache_dir() -> Path:
    """Cache for built tiny models and other reusable files (``SDNB_CACHE_DIR``)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sdnb"
    return _dir_from_env("SDNB_CACHE_DIR", default, "keep the tiny models in")


def models_dir() -> Path | None:
    """Folder of local models (``SDNB_MODELS_DIR``): ``<dir>/<name>`` is used before the hub."""
    value = os.environ.get("SDNB_MODELS_DIR")
    return Path(value).expanduser() if value else None


def lora_dir() -> Path | None:
    """Folder of LoRA files (``SDNB_LORA_DIR``): ``<lora:name:w>`` uses ``<dir>/**/name.safetensors``."""
    value = os.environ.get("SDNB_LORA_DIR")
    return Path(value).expanduser() if value else None


def set_lora_dir(path: str | os.PathLike) -> None:
    """Look for ``<lora:name:w>`` files in ``path`` from now on (what ``SDNB_LORA_DIR`` does)."""
    os.environ["SDNB_LORA_DIR"] = os.fspath(path)


def lora_fuse() -> bool:
    """True when LoRAs are fused into the weights for a run (``SDNB_LORA_FUSE=1``): faster steps, a slower
    start, and unfusing restores the weights only up to float rounding."""
    return os.environ.get("SDNB_LORA_FUSE", "").strip().lower() in _TRUE


def set_lora_fuse(on: bool = True) -> None:
    """Fuse a prompt's LoRAs into the weights for each run from now on (what ``SDNB_LORA_FUSE`` does)."""
    os.environ["SDNB_LORA_FUSE"] = "1" if on else "0"


def set_output_dir(path: str | os.PathLike) -> None:
    """Write everything under ``path`` from now on (what ``SDNB_OUTPUT_DIR`` does)."""
    os.environ["SDNB_OUTPUT_DIR"] = os.fspath(path)


#: The Hugging Face hub itself (what ``set_mirror(None)`` goes back to).
DEFAULT_HUB = "https://huggingface.co"
#: The hub mirror the "mirror" source uses unless ``HF_ENDPOINT`` names another.
DEFAULT_MIRROR = "https://hf-mirror.com"

#: Where models are downloaded from: the Hugging Face hub, a mirror of it (``HF_ENDPOINT``), or ModelScope.
SOURCES: tuple[str, ...] = ("hub", "mirror", "modelscope")


def model_source() -> str:
    """Where models come from (``SDNB_SOURCE``): "hub", "mirror" or "modelscope".

    Unset, it is "mirror" when ``HF_ENDPOINT`` names a mirror and "hub" otherwise, so a machine that already
    sets ``HF_ENDPOINT`` (common in mainland China) keeps using its mirror.
    """
    value = os.environ.get("SDNB_SOURCE", "").strip().lower()
    if not value:
        endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_HUB).strip().rstrip("/")
        return "hub" if endpoint == DEFAULT_HUB else "mirror"
    if value not in SOURCES:
        raise SdnbError(f"SDNB_SOURCE={value!r} is not a model source.",
                        hint=f"Set it to one of: {', '.join(SOURCES)} (or call sdnb.settings.set_source('hub')).")
    return value


def set_source(source: str, mirror: str | None = None) -> str:
    """Download models from ``source`` from now on (what ``SDNB_SOURCE`` does); returns a line saying where.

    "hub": huggingface.co (outside mainland China). "mirror": a mirror of the hub, ``mirror`` or
    ``HF_ENDPOINT`` or :data:`DEFAULT_MIRROR` (hub files from mainland China). "modelscope": modelscope.cn,
    the usual model source in mainland China (needs ``pip install modelscope``; registry models with a
    ModelScope copy, and ``owner/name`` ids read as ModelScope ids).
    """
    name = str(source).strip().lower()
    if name not in SOURCES:
        raise SdnbError(f"{source!r} is not a model source.",
                        hint=f"Use one of: {', '.join(SOURCES)}, e.g. set_source('modelscope').")
    if name == "mirror":
        set_mirror(mirror or os.environ.get("HF_ENDPOINT") or DEFAULT_MIRROR)
    elif name == "hub":
        set_mirror(None)
    else:
        if mirror is not None:
            raise SdnbError("A mirror address only applies to the 'mirror' source.",
                            hint="Call set_source('modelscope') without a mirror address.")
        from .sources import require_modelscope

        require_modelscope()  # say "pip install modelscope" now, not at the first download
        os.environ["SDNB_SOURCE"] = name
    return describe_source()


def describe_source() -> str:
    """One line saying where models are downloaded from now."""
    name = model_source()
    if name == "modelscope":
        return ("Models come from ModelScope (modelscope.cn), into the modelscope package's own cache; files only "
                f"the Hugging Face hub has (ControlNets, upscalers) come from the mirror at {apply_mirror()}.")
    return f"Models come from the Hugging Face {'hub' if name == 'hub' else 'mirror'} at {apply_mirror()}."


def set_mirror(url: str | None) -> str:
    """Download models from a hub mirror from now on (for example ``https://hf-mirror.com`` in mainland China);
    ``None`` goes back to the Hugging Face hub. Returns the address in use (the "mirror" or "hub" source).

    Works whenever it is called: huggingface_hub reads ``HF_ENDPOINT`` only when it is first imported, so
    sdnb re-applies the variable before every load (:func:`apply_mirror`).
    """
    if url is None:
        os.environ.pop("HF_ENDPOINT", None)
        os.environ["SDNB_SOURCE"] = "hub"
        return apply_mirror()
    from urllib.parse import urlsplit

    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SdnbError(f"{url!r} is not a web address of a hub mirror.",
                        hint="Give the mirror's address with https://, e.g. set_mirror('https://hf-mirror.com').")
    os.environ["HF_ENDPOINT"] = str(url).strip().rstrip("/")
    os.environ["SDNB_SOURCE"] = "mirror"
    return apply_mirror()


def apply_mirror() -> str:
    """Make huggingface_hub use the address of the current source (the hub, ``HF_ENDPOINT`` or the default
    mirror); returns the address."""
    import sys

    source = model_source()
    endpoint = DEFAULT_HUB if source == "hub" else os.environ.get("HF_ENDPOINT") or DEFAULT_MIRROR
    endpoint = endpoint.strip().rstrip("/")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and endpoint != constants.ENDPOINT:
        constants.ENDPOINT = endpoint
        constants.HUGGINGFACE_CO_URL_TEMPLATE = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    hf_api = sys.modules.get("huggingface_hub.hf_api")
    if hf_api is not None and getattr(hf_api, "api", None) is not None:
        hf_api.api.endpoint = endpoint  # the module-level client huggingface_hub.model_info() and friends use
    return endpoint


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` forbids downloads."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def env_token() -> str | None:
    """The token in the ``HF_TOKEN`` environment variable, if any (never printed)."""
    return os.environ.get("HF_TOKEN", "").strip() or None


def set_env_token(token: str) -> None:
    """Make ``token`` the one every download in this process uses (``HF_TOKEN``)."""
    os.environ["HF_TOKEN"] = token


def world_size() -> int:
    """How many processes ``accelerate launch`` (or ``torchrun``) started (1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_rank() -> int:
    """This process's number among them (0: the main process)."""
    return int(os.environ.get("RANK", "0"))
