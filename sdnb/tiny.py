"""Tiny random-weight Stable Diffusion pipelines for tests and CI (tiny mode).

Each family is built in-process once, written with ``save_pretrained`` under
``cache_dir()/tiny/<family>-v<version>`` and then loaded back with the ordinary
``from_pretrained(path, use_safetensors=True)`` path, exactly as a real hub folder would be.
Nothing here touches the network.

The tiny models keep the *shapes* of the real ones where it matters to a lesson: the VAE
downsamples by 8 and has 4 latent channels (a 64x64 image has 8x8 latents), the schedulers
carry the real training configs, SD 2.1 is a v-prediction model, SDXL has two text encoders
and the ``text_time`` micro-conditioning. Everything else (channel counts, layer counts) is
as small as the code allows: an SD 1.5 folder is about 0.7 MB, SDXL about 1.4 MB, and a 64x64
image takes well under a second on one CPU core. The images are noise: the weights are random.

Default image sizes (``unet.sample_size * 8``) are the real ones divided by 8: 64 px for
SD 1.5, 96 px for SD 2.1 768-v, 128 px for SDXL.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdnb import settings
from sdnb.errors import SdnbError

if TYPE_CHECKING:
    import transformers

__all__ = ["FAMILIES", "build_tokenizer", "tiny_model_dir"]

#: The pipeline families tiny mode can build.
FAMILIES: tuple[str, ...] = ("sd15", "sd21v", "sdxl")

#: Bump when any config below changes, so stale cached folders are not reused.
_VERSION = 1
_SEED = 0

_BOS = "<|startoftext|>"
_EOS = "<|endoftext|>"
_EOW = "</w>"  # CLIP's end-of-word suffix

#: Words that become a single token each, so a normal prompt has about one token per word,
#: as with the real CLIP vocabulary.
_WORD_TEXT = """
    a an the of in on at to with and or by for from into under over near above behind through
    is are it its this that his her their as like very one two three many no not without
    photo photograph photography picture image portrait closeup close up shot view scene
    landscape cityscape still life painting drawing sketch illustration render art artwork
    artist poster concept wallpaper sculpture statue
    watercolor oil acrylic pencil charcoal ink pastel digital pixel anime cartoon comic fantasy
    surreal abstract realistic photorealistic impressionist baroque vintage retro modern
    futuristic cyberpunk steampunk gothic minimalist style trending artstation unreal engine
    octane studio ghibli
    detailed highly intricate sharp focus masterpiece quality high resolution hd
    beautiful stunning epic dramatic cinematic lighting light glowing soft bright dark moody
    warm colorful vibrant golden silver neon hour volumetric shadow reflection bokeh depth
    field wide angle lens macro camera film grain
    red orange yellow green blue purple pink white black gray brown
    cat dog horse bird fish fox wolf bear lion tiger owl dragon rabbit deer butterfly squirrel
    man woman girl boy child people face eyes hair smile old young king queen knight warrior
    wizard witch princess robot astronaut pirate
    city town village street bridge house castle tower lighthouse church temple ruins
    building room kitchen library window garden park market harbor train car ship boat
    forest tree trees jungle mountain mountains hill valley river lake sea ocean beach island
    desert snow ice rain fog mist cloud clouds sky sun moon stars space planet galaxy meadow
    flower flowers rose grass leaves autumn winter spring summer dawn dusk sunrise sunset night
    day evening morning storm fire water waves stone crystal
    riding sitting standing walking flying reading eating holding wearing
    hat dress armor crown sword book coffee cake apple
    small big large tiny giant little tall
"""
_WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode map (used by CLIP's byte-level BPE)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    bs = printable[:]
    cs = printable[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def _bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply BPE merges to one word the way the tokenizers library does (lowest rank first)."""
    while len(symbols) > 1:
        pairs = [pair for pair in itertools.pairwise(symbols) if pair in ranks]
        if not pairs:
            break
        first, second = min(pairs, key=ranks.__getitem__)
        merged: list[str] = []
        i = 0
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def _word_merges(words: tuple[str, ...]) -> list[tuple[str, str]]:
    """Merges that turn every word into one token.

    Words are handled in order. Each word is first split with the merges so far; then the two
    leftmost pieces are merged, with a new lowest-priority merge, until one piece is left. A new
    merge comes last, so it cannot change how an earlier word (already one token) is split.
    """
    byte_map = _bytes_to_unicode()
    ranks: dict[tuple[str, str], int] = {}
    for word in dict.fromkeys(words):
        symbols = [byte_map[b] for b in word.lower().encode("utf-8")]
        symbols[-1] += _EOW
        pieces = _bpe(symbols, ranks)
        while len(pieces) > 1:
            ranks.setdefault((pieces[0], pieces[1]), len(ranks))
            pieces = _bpe(pieces, ranks)
    return sorted(ranks, key=ranks.__getitem__)


def build_tokenizer() -> transformers.CLIPTokenizer:
    """A small CLIP tokenizer built offline: byte-level BPE plus whole-word merges for prompt words.

    The vocabulary has CLIP's layout: the 256 byte symbols, their ``</w>`` (end of word)
    forms, the merged tokens, then ``<|startoftext|>`` and ``<|endoftext|>`` last (so the
    end-of-text token has the largest id, as in the real vocabulary). Any text can be encoded;
    about 300 common prompt words are one token each. Padding uses ``<|endoftext|>`` like SD 1.5.
    """
    import transformers

    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + _EOW for s in symbols]
    merges = _word_merges(_WORDS)
    tokens += [a + b for a, b in merges]
    tokens += [_BOS, _EOS]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return transformers.CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=_EOS,
        bos_token=_BOS,
        eos_token=_EOS,
        pad_token=_EOS,
        model_max_length=77,
    )


def _text_config(
    tokenizer: Any, *, hidden_size: int, hidden_act: str, projection_dim: int | None = None
) -> Any:
    import transformers

    return transformers.CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        projection_dim=projection_dim or hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        hidden_act=hidden_act,
        layer_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _vae(sample_size: int, scaling_factor: float, force_upcast: bool) -> Any:
    """Four blocks (downscale 8) and 4 latent channels, like the real SD VAE, with tiny widths."""
    import diffusers

    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(4, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=sample_size,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    )


def _build_sd(family: str) -> Any:
    """SD 1.5 (epsilon, PNDM) or SD 2.1 768-v (v-prediction, DDIM, linear projections, gelu)."""
    import diffusers
    import transformers

    v2 = family == "sd21v"
    sample_size = 12 if v2 else 8  # default image 96 px / 64 px: the real 768 / 512 divided by 8
    tokenizer = build_tokenizer()
    _torch_seed()
    text_encoder = transformers.CLIPTextModel(
        _text_config(tokenizer, hidden_size=32, hidden_act="gelu" if v2 else "quick_gelu")
    )
    _torch_seed()
    unet = diffusers.UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=32,
        attention_head_dim=(2, 4) if v2 else 2,
        use_linear_projection=v2,
        upcast_attention=v2,
    )
    _torch_seed()
    vae = _vae(sample_size * 8, scaling_factor=0.18215, force_upcast=True)
    common: dict[str, Any] = {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "set_alpha_to_one": False,
        "steps_offset": 1,
    }
    if v2:
        scheduler = diffusers.DDIMScheduler(**common, clip_sample=False, prediction_type="v_prediction")
    else:
        scheduler = diffusers.PNDMScheduler(**common, skip_prk_steps=True, prediction_type="epsilon")
    return diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _build_sdxl() -> Any:
    """SDXL base: two text encoders (the second with a projection), ``text_time`` conditioning."""
    import diffusers
    import transformers

    tokenizer = build_tokenizer()
    tokenizer_2 = build_tokenizer()
    hidden_1, hidden_2, time_dim = 32, 48, 8  # real SDXL: 768, 1280, 256
    _torch_seed()
    text_encoder = transformers.CLIPTextModel(
        _text_config(tokenizer, hidden_size=hidden_1, hidden_act="quick_gelu")
    )
    _torch_seed()
    text_encoder_2 = transformers.CLIPTextModelWithProjection(
        _text_config(tokenizer_2, hidden_size=hidden_2, hidden_act="gelu", projection_dim=hidden_2)
    )
    _torch_seed()
    unet = diffusers.UNet2DConditionModel(
        sample_size=16,  # default image 128 px: the real 1024 divided by 8
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        transformer_layers_per_block=(1, 2),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        cross_attention_dim=hidden_1 + hidden_2,  # both encoders' hidden states, concatenated
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        # 6 micro-conditioning numbers (original size, crop corner, target size) + pooled text
        projection_class_embeddings_input_dim=6 * time_dim + hidden_2,
    )
    _torch_seed()
    vae = _vae(128, scaling_factor=0.13025, force_upcast=True)
    scheduler = diffusers.EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        interpolation_type="linear",
        use_karras_sigmas=False,
        timestep_spacing="leading",
        steps_offset=1,
    )
    return diffusers.StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    )


def _torch_seed() -> None:
    import torch

    torch.manual_seed(_SEED)


def _build(family: str) -> Any:
    return _build_sdxl() if family == "sdxl" else _build_sd(family)


def tiny_model_dir(family: str) -> Path:
    """The folder of the tiny ``family`` pipeline, built and saved on first use.

    ``family`` is one of :data:`FAMILIES`. The folder is ``cache_dir()/tiny/<family>-v<N>`` and
    loads with ``<PipelineClass>.from_pretrained(folder, use_safetensors=True)``. It is written
    atomically (built in a temporary folder beside it, then renamed), so processes building
    at the same time never see a half-written folder; the first to finish wins.
    """
    if family not in FAMILIES:
        raise SdnbError(
            f"Unknown tiny model family {family!r}.",
            hint=f"Use one of: {', '.join(FAMILIES)}.",
        )
    parent = settings.cache_dir() / "tiny"
    target = parent / f"{family}-v{_VERSION}"
    if (target / "model_index.json").is_file():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        _build(family).save_pretrained(tmp, safe_serialization=True)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache folder is an ordinary one
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if (target / "model_index.json").is_file():  # another process finished first: use theirs
            return target
        if target.exists():
            raise SdnbError(
                f"The tiny model folder {target} exists but is incomplete.",
                hint="Delete that folder; it is rebuilt on next use.",
            ) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
