"""Tiny random-weight Stable Diffusion pipelines and ControlNets for tests and CI (tiny mode).

Each family is built in-process once, written atomically with ``save_pretrained`` under
``cache_dir()/tiny/<family>-v<version>`` (ControlNets: ``controlnet-<family>-v<version>``) and then
loaded back with the ordinary ``from_pretrained(path, use_safetensors=True)`` path, exactly as a
real hub folder would be. Nothing here touches the network.

The tiny models keep the *shapes* of the real ones where it matters to a lesson: the VAE
downsamples by 8 and has 4 latent channels (a 64x64 image has 8x8 latents), the schedulers
carry the real training configs, SD 2.1 is a v-prediction model, SDXL has two text encoders
and the ``text_time`` micro-conditioning. The task checkpoints keep their UNet inputs: the
inpainting UNet takes 9 channels (latents, mask, masked-image latents), depth2img 5 (latents and
a depth map from its own DPT depth estimator), and the x4 upscaler 7 (latents and the low-res
image) with a noise-level class embedding and a VAE that downsamples by 4. Everything else
(channel counts, layer counts) is as small as the code allows: every folder is under 2 MB, and a
64x64 image takes well under a second on one CPU core. The images are noise: the weights are random.

"sd15-bert" stands in for Taiyi (IDEA-CCNL's Chinese Stable Diffusion): the SD 1.5 UNet and VAE with a
BERT text encoder and a ``BertTokenizer`` read from a small ``vocab.txt`` (a few hundred common Chinese
characters, ASCII letters and digits, BERT's special tokens), saved the way Taiyi's repo is (``vocab.txt``, no
``tokenizer.json``), with its 512-token maximum.

Default image sizes (``unet.sample_size * vae_scale_factor``) are the real ones divided by 8:
64 px for SD 1.5, inpainting and depth2img, 96 px for SD 2.1 768-v, 128 px for SDXL; the
upscaler turns 16 px into 64 px (the real one 128 px into 512 px).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdnb import settings
from sdnb.errors import SdnbError

if TYPE_CHECKING:
    import transformers

__all__ = ["CONTROLNET_FAMILIES", "FAMILIES", "build_bert_tokenizer", "build_tokenizer", "tiny_controlnet_dir",
           "tiny_model_dir"]

#: The pipeline families tiny mode can build (registry ``ModelSpec.family`` values).
FAMILIES: tuple[str, ...] = ("sd15", "sd21v", "sdxl", "sd15-inpaint", "sd2-depth", "x4-upscale", "sd15-bert")

#: The base families a tiny ControlNet can be built for.
CONTROLNET_FAMILIES: tuple[str, ...] = ("sd15", "sdxl")

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


def _vae(sample_size: int, scaling_factor: float, force_upcast: bool, *, blocks: int = 4) -> Any:
    """``blocks`` blocks (4: downscale 8 like the SD VAE; 3: downscale 4 like the x4 upscaler's), 4 latent
    channels, tiny widths."""
    import diffusers

    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(4, 8, 8, 8)[:blocks],
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=sample_size,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    )


def _sd2_text(family: str) -> bool:
    """Whether the family has SD 2's OpenCLIP-style text encoder (gelu) and UNet (linear projections)."""
    return family in ("sd21v", "sd2-depth", "x4-upscale")


#: UNet input channels of the task checkpoints: latents plus mask and masked image (9), plus depth (5).
_IN_CHANNELS = {"sd15-inpaint": 9, "sd2-depth": 5}


def _sd_unet(family: str) -> Any:
    """The seeded UNet of an SD 1.x/2.x family, so a ControlNet built from it copies the pipeline's weights."""
    import diffusers

    sd2 = _sd2_text(family)
    _torch_seed()
    return diffusers.UNet2DConditionModel(
        sample_size=12 if family == "sd21v" else 8,  # default image 96 px / 64 px: the real 768 / 512 divided by 8
        in_channels=_IN_CHANNELS.get(family, 4),
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=32,
        attention_head_dim=(2, 4) if sd2 else 2,
        use_linear_projection=sd2,
        upcast_attention=family == "sd21v",
    )


def _sd_scheduler(family: str) -> Any:
    """The real repos' schedulers: PNDM (SD 1.5, SD 2 depth) or DDIM (SD 1.5 inpainting), epsilon;
    SD 2.1 768-v: DDIM, v-prediction. All share SD's training noise schedule."""
    import diffusers

    common: dict[str, Any] = {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "set_alpha_to_one": False,
        "steps_offset": 1,
    }
    if family == "sd21v":
        return diffusers.DDIMScheduler(**common, clip_sample=False, prediction_type="v_prediction")
    if family == "sd15-inpaint":
        return diffusers.DDIMScheduler(**common, clip_sample=False, prediction_type="epsilon")
    return diffusers.PNDMScheduler(**common, skip_prk_steps=True, prediction_type="epsilon")


def _depth_estimator() -> tuple[Any, Any]:
    """A small ViT ``DPTForDepthEstimation`` (the real one is DPT-Hybrid/MiDaS at 384 px) and its processor."""
    import transformers

    _torch_seed()
    config = transformers.DPTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=4,
        backbone_out_indices=(0, 1, 2, 3),
        num_attention_heads=2,
        intermediate_size=32,
        is_hybrid=False,
        neck_hidden_sizes=(8, 8, 16, 16),
        fusion_hidden_size=16,
        initializer_range=0.2,  # with the default 0.02 the random depth map is flat (about 1e-11)
    )
    processor = transformers.DPTImageProcessor(
        size={"height": 32, "width": 32},
        keep_aspect_ratio=False,
        ensure_multiple_of=1,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    return transformers.DPTForDepthEstimation(config).eval(), processor


def _build_sd(family: str) -> Any:
    """SD 1.5 (epsilon, PNDM), SD 2.1 768-v (v-prediction, DDIM, linear projections, gelu), and the SD 1.5
    inpainting (9-channel UNet) and SD 2 depth2img (5-channel UNet, epsilon, PNDM, DPT) checkpoints."""
    import diffusers
    import transformers

    tokenizer = build_tokenizer()
    _torch_seed()
    text_encoder = transformers.CLIPTextModel(
        _text_config(tokenizer, hidden_size=32, hidden_act="gelu" if _sd2_text(family) else "quick_gelu")
    )
    unet = _sd_unet(family)
    _torch_seed()
    vae = _vae(unet.config.sample_size * 8, scaling_factor=0.18215, force_upcast=True)
    parts = {
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "unet": unet,
        "scheduler": _sd_scheduler(family),
    }
    if family == "sd2-depth":
        depth_estimator, feature_extractor = _depth_estimator()
        return diffusers.StableDiffusionDepth2ImgPipeline(
            **parts, depth_estimator=depth_estimator, feature_extractor=feature_extractor
        )
    cls = diffusers.StableDiffusionInpaintPipeline if family == "sd15-inpaint" else diffusers.StableDiffusionPipeline
    return cls(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)


#: Common Chinese characters (and a few prompt words' characters) that the tiny BERT vocabulary reads as one token
#: each; anything else is ``[UNK]``, as a character outside a real vocabulary would be.
_HANZI = """
    的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而
    能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进
    把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使
    教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件
    安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望
    直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近
    留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黑断线字夜猫狗鸟
    鱼龙虎马牛羊花草树木森林河湖雨雪云星阳春夏秋冬早晚古画油彩墨水彩素描风景人物城市街道房屋桥塔船灯火烟雾光影金银蓝绿
    紫粉灰棕黄橙宇航员骑穿戴帽裙剑书咖啡蛋糕苹果可爱漂亮美丽梦幻唯美插画照片摄影高清细节杰作壁纸动漫卡通科幻未来赛博朋克
"""
_BERT_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_PUNCTUATION = tuple(",.!?:;()[]'\"-") + tuple("，。、！？：；（）《》“”")


def _bert_vocab() -> list[str]:
    """BERT's layout: [PAD] first (id 0), the special tokens, punctuation, digits, letters (whole and as ##
    continuations, so any English word splits into letters), then the Chinese characters."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    digits = [str(d) for d in range(10)]
    hanzi = [ch for ch in _HANZI if not ch.isspace()]
    tokens = [*_BERT_SPECIAL, *_PUNCTUATION, *digits, *letters, *("##" + t for t in letters + digits), *hanzi]
    return list(dict.fromkeys(tokens))


def build_bert_tokenizer(folder: str | os.PathLike | None = None) -> transformers.BertTokenizer:
    """A small Chinese ``BertTokenizer`` built offline from a ``vocab.txt`` (written into ``folder``, or a temporary
    one): one token per common Chinese character, 512 tokens at most, as Taiyi's tokenizer."""
    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        vocab = Path(folder or tmp) / "vocab.txt"
        vocab.write_text("\n".join(_bert_vocab()) + "\n", encoding="utf-8")
        return transformers.BertTokenizer(vocab=str(vocab), model_max_length=512)


class _TaiyiLayout:
    """A pipeline whose ``save_pretrained`` writes the tokenizer as Taiyi's repo has it: ``vocab.txt``, no
    ``tokenizer.json``, so tiny mode loads it the way the real model is loaded."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def save_pretrained(self, folder: str | os.PathLike, safe_serialization: bool = True) -> None:
        self.pipe.save_pretrained(folder, safe_serialization=safe_serialization)
        tokenizer = Path(folder) / "tokenizer"
        (tokenizer / "tokenizer.json").unlink()
        build_bert_tokenizer(tokenizer)


def _build_sd_bert() -> _TaiyiLayout:
    """Taiyi's layout, tiny: a BERT text encoder (``BertModel``, post-layer-norm, no pooled projection) feeding
    the SD 1.5 UNet through cross-attention, the SD 1.5 VAE and PNDM scheduler."""
    import diffusers
    import transformers

    tokenizer = build_bert_tokenizer()
    _torch_seed()
    text_encoder = transformers.BertModel(transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id,
        # with BERT's default 0.02 the random token embeddings are tiny beside the position embeddings, and two
        # prompts give nearly the same picture; 1.0 makes the prompt change the tiny image as much as CLIP's does
        initializer_range=1.0,
    ))
    unet = _sd_unet("sd15-bert")
    _torch_seed()
    vae = _vae(unet.config.sample_size * 8, scaling_factor=0.18215, force_upcast=True)
    return _TaiyiLayout(diffusers.StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=_sd_scheduler("sd15-bert"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ))


def _build_x4_upscale() -> Any:
    """The x4 upscaler: 7-channel UNet with a noise-level class embedding, VAE downscaling 4, v-prediction
    DDIM plus the DDPM ``low_res_scheduler`` that noises the input (configs of the real repo)."""
    import diffusers
    import transformers

    tokenizer = build_tokenizer()
    _torch_seed()
    text_encoder = transformers.CLIPTextModel(_text_config(tokenizer, hidden_size=32, hidden_act="gelu"))
    _torch_seed()
    unet = diffusers.UNet2DConditionModel(
        sample_size=16,  # latents are as large as the input: 16 px in, 64 px out (real: 128 -> 512)
        in_channels=7,  # 4 latent channels + the 3 channels of the noised low-res image
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        num_class_embeds=1000,  # the noise level (0..max_noise_level) is a class label
    )
    _torch_seed()
    vae = _vae(64, scaling_factor=0.08333, force_upcast=True, blocks=3)
    betas: dict[str, Any] = {
        "num_train_timesteps": 1000,
        "beta_start": 0.0001,
        "beta_end": 0.02,
        "beta_schedule": "scaled_linear",
    }
    return diffusers.StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=diffusers.DDPMScheduler(
            **betas, clip_sample=True, prediction_type="epsilon", variance_type="fixed_small"
        ),
        scheduler=diffusers.DDIMScheduler(
            **betas, clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction"
        ),
        safety_checker=None,
        feature_extractor=None,
        watermarker=None,
        max_noise_level=350,
    )


_SDXL_HIDDEN = (32, 48)  # the two text encoders' widths; real SDXL: 768, 1280
_SDXL_TIME_DIM = 8  # real SDXL: 256


def _sdxl_unet() -> Any:
    """The seeded SDXL UNet: both encoders' hidden states as context, ``text_time`` micro-conditioning."""
    import diffusers

    _torch_seed()
    return diffusers.UNet2DConditionModel(
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
        cross_attention_dim=sum(_SDXL_HIDDEN),  # both encoders' hidden states, concatenated
        addition_embed_type="text_time",
        addition_time_embed_dim=_SDXL_TIME_DIM,
        # 6 micro-conditioning numbers (original size, crop corner, target size) + pooled text
        projection_class_embeddings_input_dim=6 * _SDXL_TIME_DIM + _SDXL_HIDDEN[1],
    )


def _build_sdxl() -> Any:
    """SDXL base: two text encoders (the second with a projection), ``text_time`` conditioning."""
    import diffusers
    import transformers

    tokenizer = build_tokenizer()
    tokenizer_2 = build_tokenizer()
    hidden_1, hidden_2 = _SDXL_HIDDEN
    _torch_seed()
    text_encoder = transformers.CLIPTextModel(
        _text_config(tokenizer, hidden_size=hidden_1, hidden_act="quick_gelu")
    )
    _torch_seed()
    text_encoder_2 = transformers.CLIPTextModelWithProjection(
        _text_config(tokenizer_2, hidden_size=hidden_2, hidden_act="gelu", projection_dim=hidden_2)
    )
    unet = _sdxl_unet()
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
    if family == "sd15-bert":
        return _build_sd_bert()
    if family == "sdxl":
        return _build_sdxl()
    if family == "x4-upscale":
        return _build_x4_upscale()
    return _build_sd(family)


def _build_controlnet(family: str) -> Any:
    """A ControlNet copied from the family's tiny UNet, re-initialised so the control image matters.

    A fresh ControlNet's output ("zero") convolutions are zero, so it adds nothing until trained;
    and through the default-initialised convolutions of the control-image encoder a black and a
    white control differ by about 1e-5 at the end. Seeded random weights, scaled by each
    convolution's fan-in, make two control images give visibly different tiny images.
    """
    import diffusers
    import torch

    unet = _sdxl_unet() if family == "sdxl" else _sd_unet(family)
    controlnet = diffusers.ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8, 16))
    generator = torch.Generator().manual_seed(_SEED)

    def randomize(conv: torch.nn.Conv2d, gain: float) -> None:
        conv.weight.normal_(0.0, gain / conv.weight[0].numel() ** 0.5, generator=generator)
        conv.bias.normal_(0.0, 0.1, generator=generator)

    with torch.no_grad():
        for module in controlnet.controlnet_cond_embedding.modules():  # its last conv is a zero conv
            if isinstance(module, torch.nn.Conv2d):
                randomize(module, gain=2.0)
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            randomize(conv, gain=1.0)
    return controlnet


def _check(family: str, known: tuple[str, ...], what: str) -> None:
    if family not in known:
        raise SdnbError(f"Unknown tiny {what} family {family!r}.", hint=f"Use one of: {', '.join(known)}.")


def tiny_model_dir(family: str) -> Path:
    """The folder of the tiny ``family`` pipeline, built and saved on first use.

    ``family`` is one of :data:`FAMILIES`. The folder is ``cache_dir()/tiny/<family>-v<N>`` and
    loads with ``<PipelineClass>.from_pretrained(folder, use_safetensors=True)``.
    """
    _check(family, FAMILIES, "model")
    return _saved_once(f"{family}-v{_VERSION}", "model_index.json", lambda: _build(family))


def tiny_controlnet_dir(family: str) -> Path:
    """The folder of a tiny ControlNet for the tiny ``family`` pipeline, built and saved on first use.

    ``family`` is one of :data:`CONTROLNET_FAMILIES`. The folder is
    ``cache_dir()/tiny/controlnet-<family>-v<N>`` and loads with
    ``ControlNetModel.from_pretrained(folder, use_safetensors=True)``.
    """
    _check(family, CONTROLNET_FAMILIES, "ControlNet")
    return _saved_once(f"controlnet-{family}-v{_VERSION}", "config.json", lambda: _build_controlnet(family))


def _saved_once(name: str, marker: str, build: Callable[[], Any]) -> Path:
    """``cache_dir()/tiny/<name>``, written with ``build().save_pretrained`` unless ``<name>/<marker>`` exists.

    The folder is written atomically (built in a temporary folder beside it, then renamed), so
    processes building at the same time never see a half-written folder; the first to finish wins.
    """
    parent = settings.cache_dir() / "tiny"
    target = parent / name
    if (target / marker).is_file():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        build().save_pretrained(tmp, safe_serialization=True)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache folder is an ordinary one
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if (target / marker).is_file():  # another process finished first: use theirs
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


# ---------------------------------------------------------------------------------------------
# Tiny Real-ESRGAN upscalers: spandrel state dicts in one .safetensors file each

#: The upscaler architectures tiny mode can build (registry ``UpscalerSpec.architecture`` values, spandrel's ids).
UPSCALER_ARCHITECTURES: tuple[str, ...] = ("ESRGAN", "Compact")

#: Bump when a tiny upscaler below changes.
_UPSCALER_VERSION = 1


class _WeightFile:
    """A state dict with the ``save_pretrained`` that :func:`_saved_once` calls: it writes ``model.safetensors``."""

    def __init__(self, tensors: dict[str, Any]) -> None:
        self.tensors = tensors

    def save_pretrained(self, folder: str | os.PathLike, safe_serialization: bool = True) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.tensors.items()}, os.path.join(folder, "model.safetensors"))


def _build_upscaler(architecture: str) -> _WeightFile:
    """A seeded 4x RRDBNet (8 filters, 1 block) or SRVGGNetCompact (8 features, 2 convs).

    Both upscale the picture visibly: Compact adds the nearest-upsampled input to its output by design; the
    RRDBNet's convolutions outside its trunk get an identity on the RGB channels on top of small random
    weights, so its output is the input enlarged plus random texture instead of grey noise.
    """
    import torch
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    _torch_seed()
    if architecture == "Compact":
        return _WeightFile(Compact(num_feat=8, num_conv=2, upscale=4).state_dict())
    state = ESRGAN(num_filters=8, num_blocks=1, scale=4).state_dict()
    with torch.no_grad():
        for conv in ("model.0", "model.3", "model.6", "model.8", "model.10"):  # first, two upsampling, HR, last
            state[f"{conv}.weight"].mul_(0.2)
            state[f"{conv}.bias"].mul_(0.2)
            state[f"{conv}.weight"][:3, :3, 1, 1] += torch.eye(3)
    return _WeightFile(state)


def tiny_upscaler_file(architecture: str) -> Path:
    """The ``.safetensors`` file of a tiny random-weight 4x upscaler, built and saved on first use.

    ``architecture`` is one of :data:`UPSCALER_ARCHITECTURES`; the file is
    ``cache_dir()/tiny/upscaler-<architecture>-v<N>/model.safetensors`` and spandrel detects it as a 4x model of
    that architecture.
    """
    _check(architecture, UPSCALER_ARCHITECTURES, "upscaler")
    name = f"upscaler-{architecture.lower()}-v{_UPSCALER_VERSION}"
    return _saved_once(name, "model.safetensors", lambda: _build_upscaler(architecture)) / "model.safetensors"


__all__ += ["UPSCALER_ARCHITECTURES", "tiny_upscaler_file"]


# ---------------------------------------------------------------------------------------------
# Tiny LoRAs for the tiny SD 1.5 and SDXL pipelines: made with peft, in diffusers and Kohya format

#: The base families tiny LoRAs are built for.
LORA_FAMILIES: tuple[str, ...] = ("sd15", "sdxl")

#: The tiny LoRA files of each family: ``tiny_style`` (diffusers keys), the same LoRA in Kohya keys
#: (``tiny_style_kohya``) and a second, different one (``tiny_detail``).
TINY_LORAS: tuple[str, ...] = ("tiny_style", "tiny_style_kohya", "tiny_detail")

_LORA_VERSION = 2
_UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
_TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


class _LoraFiles:
    """LoRA state dicts with the ``save_pretrained`` that :func:`_saved_once` calls: one file per name."""

    def __init__(self, files: dict[str, dict[str, Any]]) -> None:
        self.files = files

    def save_pretrained(self, folder: str | os.PathLike, safe_serialization: bool = True) -> None:
        from safetensors.torch import save_file

        for name, tensors in self.files.items():
            save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(folder, f"{name}.safetensors"))


def _peft_lora(family: str, seed: int) -> dict[str, Any]:
    """A rank-4 LoRA on every attention projection of the tiny UNet and text encoder(s), in diffusers keys
    (``unet.<module>.lora_A.weight``; straight from peft, not through ``convert_state_dict_to_diffusers``,
    whose mixed key styles reload only part of a LoRA). Both LoRA matrices are random (peft's
    ``init_lora_weights=False``), so the LoRA changes the image from weight 0 on."""
    import diffusers
    import torch
    import transformers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    folder = tiny_model_dir(family)
    transformers.utils.logging.disable_progress_bar()  # a "Loading weights" bar per text encoder
    parts: dict[str, Any] = {"unet": diffusers.UNet2DConditionModel.from_pretrained(folder / "unet")}
    parts["text_encoder"] = transformers.CLIPTextModel.from_pretrained(folder / "text_encoder")
    if family == "sdxl":
        parts["text_encoder_2"] = transformers.CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder_2")
    torch.manual_seed(seed)
    state: dict[str, Any] = {}
    for prefix, model in parts.items():
        targets = _UNET_TARGETS if prefix == "unet" else _TEXT_TARGETS
        model.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=targets, init_lora_weights=False))
        with torch.no_grad():
            for module in model.modules():  # strong enough to see in a 64 px image, not so strong it is noise
                if hasattr(module, "lora_B") and "default" in module.lora_B:
                    module.lora_B["default"].weight.mul_(3.0)
        state |= {f"{prefix}.{k}": v for k, v in get_peft_model_state_dict(model).items()}
    transformers.utils.logging.enable_progress_bar()
    return state


def _kohya(family: str, state: dict[str, Any]) -> dict[str, Any]:
    """The same LoRA in Kohya's keys (``lora_unet_..._to_q.lora_down.weight`` with ``.alpha``), as sd-scripts
    writes them: text encoder keys under ``text_model`` and ``lora_te_`` (SD 1.5) or ``lora_te1_``/``lora_te2_``."""
    from diffusers.utils import convert_state_dict_to_kohya

    def with_text_model(key: str) -> str:  # transformers 5 dropped the level in CLIPTextModel only
        prefix, _, rest = key.partition(".")
        return key if prefix == "unet" or rest.startswith("text_model.") else f"{prefix}.text_model.{rest}"

    named = {with_text_model(k): v for k, v in state.items()}
    kohya = convert_state_dict_to_kohya(named)
    if family == "sd15":
        kohya = {k.replace("lora_te1_", "lora_te_", 1): v for k, v in kohya.items()}
    return kohya


def _build_loras(family: str) -> _LoraFiles:
    style = _peft_lora(family, seed=1)
    return _LoraFiles({"tiny_style": style, "tiny_style_kohya": _kohya(family, style),
                       "tiny_detail": _peft_lora(family, seed=2)})


def tiny_lora_dir(family: str) -> Path:
    """The folder of the tiny LoRAs (:data:`TINY_LORAS`, ``<name>.safetensors``) for the tiny ``family``
    pipeline, built and saved on first use under ``cache_dir()/tiny/lora-<family>-v<N>``."""
    _check(family, LORA_FAMILIES, "LoRA")
    return _saved_once(f"lora-{family}-v{_LORA_VERSION}", "tiny_detail.safetensors", lambda: _build_loras(family))


__all__ += ["LORA_FAMILIES", "TINY_LORAS", "tiny_lora_dir"]
