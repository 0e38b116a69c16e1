"""LoRA for one run: the ``<lora:name:weight>`` tags of a prompt, loaded, weighted, and taken off again.

A LoRA (low-rank adaptation) adds ``weight x B @ A`` to some of the model's weight matrices, with ``B`` and
``A`` thin (rank 4 to 128), so a file of a few MB changes a model of GBs. :func:`prompt_loras` is the
context the engine runs every batch loop in: it resolves each tag's name (a file in the LoRA folder,
:func:`sdnb.settings.lora_dir`, searched with its sub-folders as the WebUI does; a path; or a hub repo
``owner/name`` or ``owner/name/file.safetensors``), loads Kohya-format and diffusers-format ``.safetensors``
files through diffusers and peft, sets every LoRA's weight at once (``set_adapters``), optionally fuses them
(:func:`sdnb.settings.lora_fuse`), and unloads them when the run ends, so the next prompt without the tag
gets the clean model. It yields the ``Lora hashes`` infotext entry in the WebUI's form. Pickle files
(``.pt``, ``.ckpt``) are refused: loading one runs code from the file.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import settings
from .errors import SdnbError
from .fonts import use_in_matplotlib
from .models import PICKLE_SUFFIXES
from .prompts import LoraTag, extract_loras

__all__ = ["find_loras", "loaded_lora_modules", "lora_hash", "lora_module_count", "low_rank_diagram", "prompt_loras",
           "resolve_lora"]

SUFFIX = ".safetensors"
_COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
#: The "down" (A) matrix of one LoRA module in diffusers/peft, old diffusers and Kohya keys.
_MODULE_KEY = re.compile(r"(\.lora_A|\.lora\.down|\.lora_linear_layer\.down|\.lora_down)(\.[\w-]+)?\.weight$")


def _folders(pipe: Any) -> list[Path]:
    """Where names are looked up: the LoRA folder, then (tiny mode) the tiny LoRAs of the pipe's family."""
    folders = [d for d in [settings.lora_dir()] if d is not None]
    if settings.is_tiny():
        from .tiny import LORA_FAMILIES, tiny_lora_dir

        family = getattr(pipe, "sdnb_family", "sd15")
        if family in LORA_FAMILIES:
            folders.append(tiny_lora_dir(family))
    return folders


def find_loras(pipe: Any = None) -> dict[str, Path]:
    """Every ``.safetensors`` LoRA in the folders ``pipe`` looks in, by name (its file name without suffix)."""
    found: dict[str, Path] = {}
    for folder in _folders(pipe):
        for path in sorted(folder.rglob(f"*{SUFFIX}")) if folder.is_dir() else []:
            found.setdefault(path.stem, path)
    return found


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise SdnbError(f"LoRA '{path.name}' is a pickle file ({path.suffix}): loading it could run any code hidden "
                        "in it, so sdnb does not load it.",
                        hint="Use the .safetensors version of this LoRA (model sites offer one for nearly every LoRA).")


def resolve_lora(name: str, pipe: Any = None) -> Path:
    """The ``.safetensors`` file a ``<lora:name:...>`` tag means: a path, a name in the LoRA folder, or a hub repo."""
    path = Path(name).expanduser()
    _refuse_pickle(path)
    if path.suffix.lower() == SUFFIX and path.is_file():
        return path
    found = find_loras(pipe)
    if name in found:
        return found[name]
    for folder in _folders(pipe):
        for suffix in PICKLE_SUFFIXES:
            if folder.is_dir() and any(folder.rglob(f"{name}{suffix}")):
                _refuse_pickle(Path(name + suffix))
    if name.count("/") >= 1 and not path.exists():
        return _from_hub(name)
    where = " and ".join(str(f) for f in _folders(pipe)) or "no LoRA folder (none is set)"
    listed = ", ".join(sorted(found)) or "none"
    raise SdnbError(f"No LoRA named '{name}' in {where}. LoRAs found: {listed}.",
                    hint="Put the .safetensors file in the LoRA folder (sdnb.settings.set_lora_dir(...) or "
                         "SDNB_LORA_DIR) and write its file name without .safetensors, or give a hub repo "
                         "as <lora:owner/name:0.8>.")


def _from_hub(name: str) -> Path:
    """Download ``owner/name`` (its one ``.safetensors`` file) or ``owner/name/file.safetensors`` from the hub."""
    import huggingface_hub

    parts = name.split("/")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    if settings.hub_offline():
        raise SdnbError(f"LoRA '{name}' would come from the hub, but downloads are off (HF_HUB_OFFLINE).",
                        hint="Download it once with a network, or put the file in the LoRA folder.")
    settings.apply_mirror()
    try:
        if not filename:
            files = [f for f in huggingface_hub.list_repo_files(repo) if f.endswith(SUFFIX)]
            if len(files) != 1:
                raise SdnbError(f"Hub repo '{repo}' has {len(files)} .safetensors files: {', '.join(files) or 'none'}.",
                                hint=f"Name the file in the tag: <lora:{repo}/FILE.safetensors:0.8>.")
            filename = files[0]
        _refuse_pickle(Path(filename))
        return Path(huggingface_hub.hf_hub_download(repo, filename))
    except SdnbError:
        raise
    except Exception as exc:  # network, missing repo, gated repo: one paragraph
        raise SdnbError(f"Could not download LoRA '{name}' from the hub: {exc}",
                        hint="Check the repo id on huggingface.co, or put the file in the LoRA folder.") from exc


def lora_hash(path: Path) -> str:
    """The WebUI's short hash of a ``.safetensors`` LoRA: the first 12 hex digits of the SHA-256 of the file
    after its header (the "addnet" hash the WebUI writes in ``Lora hashes``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        header = int.from_bytes(f.read(8), "little")
        f.seek(8 + header)
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _read(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise SdnbError(f"LoRA file '{path}' cannot be read ({exc}): it is damaged or not a safetensors file.",
                        hint="Download it again.") from exc


def lora_module_count(state: dict[str, Any]) -> int:
    """How many weight matrices a LoRA state dict changes (one A/down matrix each)."""
    return sum(1 for key in state if _MODULE_KEY.search(key))


def loaded_lora_modules(pipe: Any, adapter: str) -> int:
    """How many modules of ``pipe``'s UNet and text encoders carry the LoRA adapter ``adapter``."""
    import torch

    count = 0
    for name in _COMPONENTS:
        component = getattr(pipe, name, None)
        for module in component.modules() if component is not None else ():
            lora_a = getattr(module, "lora_A", None)  # peft keeps one matrix per adapter in a ModuleDict
            if isinstance(lora_a, torch.nn.ModuleDict):
                count += adapter in lora_a
    return count


def _made_for(state: dict[str, Any]) -> str:
    xl = any("text_encoder_2" in k or k.startswith("lora_te2_") for k in state)
    return "SDXL" if xl else "SD 1.x/2.x"


def _load(pipe: Any, tag: LoraTag, path: Path, adapter: str) -> None:
    import diffusers

    state = _read(path)
    expected = lora_module_count(state)
    model = getattr(pipe, "sdnb_model", type(pipe).__name__)
    mismatch = SdnbError(
        f"LoRA '{tag.name}' does not fit {model}: it looks made for {_made_for(state)}, and a LoRA only works "
        "on the model family it was trained for.",
        hint=f"Use a LoRA made for {model}'s family, or choose a model of the LoRA's family.")
    if not expected:
        raise SdnbError(f"'{path.name}' holds no LoRA matrices diffusers can load (LoHa, LoKr and other LyCORIS "
                        "types are not supported).", hint="Use a LoRA (Kohya or diffusers format).")
    import transformers

    levels = diffusers.utils.logging.get_verbosity(), transformers.utils.logging.get_verbosity()
    diffusers.utils.logging.set_verbosity_error()  # loading reports every key it converts,
    transformers.utils.logging.set_verbosity_error()  # and a "LOAD REPORT" table per text encoder
    try:
        with warnings.catch_warnings():  # peft's note that an unloaded model had adapters before
            warnings.filterwarnings("ignore", "Already found a `peft_config`")
            pipe.load_lora_weights(state, adapter_name=adapter)
    except (ValueError, RuntimeError, KeyError, IndexError) as exc:
        raise mismatch from exc
    finally:
        diffusers.utils.logging.set_verbosity(levels[0])
        transformers.utils.logging.set_verbosity(levels[1])
    if loaded_lora_modules(pipe, adapter) < expected:  # keys of another family match nothing, without a word
        raise mismatch


@contextmanager
def prompt_loras(pipe: Any, prompt: str, fuse: bool | None = None) -> Iterator[dict[str, str]]:
    """Apply the prompt's ``<lora:name:weight>`` tags to ``pipe`` for the ``with`` block only.

    Yields ``{"Lora hashes": "name: hash, ..."}`` (empty without tags). Every LoRA is resolved and checked
    before anything loads; on leaving, fused LoRAs are unfused and all are unloaded, so ``pipe`` is clean.
    """
    tags = extract_loras(prompt)[1]
    if not tags:
        yield {}
        return
    if not hasattr(pipe, "load_lora_weights"):
        raise SdnbError(f"{type(pipe).__name__} does not take LoRAs.", hint="Remove the <lora:...> tags for this task.")
    paths = [resolve_lora(tag.name, pipe) for tag in tags]
    adapters = [f"sdnb_{i}" for i in range(len(tags))]
    fuse = settings.lora_fuse() if fuse is None else fuse
    fused = False
    try:
        for tag, path, adapter in zip(tags, paths, adapters, strict=True):
            _load(pipe, tag, path, adapter)
        pipe.set_adapters(adapters, adapter_weights=[tag.weight for tag in tags])
        if fuse:
            pipe.fuse_lora(adapter_names=adapters)
            fused = True
        aliases = (tag.name.replace(":", "").replace(",", "") for tag in tags)
        yield {"Lora hashes": ", ".join(f"{a}: {lora_hash(p)}" for a, p in zip(aliases, paths, strict=True))}
    finally:
        if fused:
            pipe.unfuse_lora()
        pipe.unload_lora_weights()


def low_rank_diagram(pipe: Any, lora: str) -> Any:
    """The lesson picture: one weight matrix ``W`` of ``pipe``'s UNet and the thin ``B`` and ``A`` a LoRA adds
    (drawn to scale), and the parameter counts of the LoRA ``lora`` (a name or path) against the model's."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    state = _read(resolve_lora(lora, pipe))
    down = next(v for k, v in state.items() if _MODULE_KEY.search(k) and ("unet" in k or "lora_unet" in k))
    rank = int(down.shape[0])
    layer = next(m for n, m in pipe.unet.named_modules() if n.endswith("attn1.to_q"))
    d_out, d_in = layer.weight.shape
    model = sum(p.numel() for name in _COMPONENTS if getattr(pipe, name, None) is not None
                for p in getattr(pipe, name).parameters())
    extra = sum(v.numel() for k, v in state.items() if not k.endswith(".alpha"))
    use_in_matplotlib()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1.6, 1]})
    scale = 1.0 / max(d_out, d_in)
    thin = max(rank * scale, 0.02)  # a rank-4 strip is still visible
    shapes = [("W", d_out, d_in, 0.0, "#adb5bd"), ("B", d_out, rank, 1.35, "#4dabf7"), ("A", rank, d_in, 1.35 + thin + 0.1,
                                                                                          "#f783ac")]
    for label, rows, cols, x, color in shapes:
        w = max(cols * scale, 0.02) if label != "B" else thin
        h = max(rows * scale, 0.02) if label != "A" else thin
        y = 1.0 - h if label == "A" else 0.0
        left.add_patch(Rectangle((x, y), w, h, color=color))
        left.text(x + w / 2, y + h + 0.04 if label == "A" else -0.1, f"{label}  {rows}x{cols}", ha="center", fontsize=9)
    left.text(1.17, 0.5, "+ w x", ha="center", va="center", fontsize=12)
    left.set_xlim(-0.1, 2.6)
    left.set_ylim(-0.2, 1.2)
    left.set_axis_off()
    left.set_title(f"W + w·(B·A): {d_out * d_in:,} numbers in W, {rank * (d_out + d_in):,} in B and A (rank {rank})",
                   fontsize=9)
    right.barh(["model (UNet + text encoders)", f"LoRA '{lora}'"], [model, extra], color=["#adb5bd", "#4dabf7"])
    right.set_xscale("log")
    right.set_title(f"parameters: the LoRA is {100 * extra / model:.2g}% of the model", fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig
