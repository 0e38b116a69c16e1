"""A model that reads Chinese prompts: Taiyi's BERT text encoder through the one prompt path, in tiny mode."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sdnb.errors import SdnbError
from sdnb.generate import txt2img
from sdnb.models import load_pipeline
from sdnb.params import Txt2ImgParams
from sdnb.prompts import chunk_size, encode_prompt, prompt_chunks, token_count, unreadable_scripts
from sdnb.registry import get_model
from sdnb.tiny import tiny_model_dir
from sdnb.widgets import Form, script_note

CAT = "一只在月光下的猫"
DOG = "一只在雪地里的狗"


@pytest.fixture
def taiyi():
    return load_pipeline("taiyi-zh")


def test_registry_entry_loads_safetensors_at_a_pinned_commit() -> None:
    spec = get_model("taiyi-zh")
    assert spec.repo == "IDEA-CCNL/Taiyi-Stable-Diffusion-1B-Chinese-v0.1" and spec.family == "sd15-bert"
    assert spec.revision and len(spec.revision) == 40 and spec.languages == ("zh",) and not spec.fp16_variant


def test_chinese_prompts_give_their_own_embeddings_equal_to_diffusers(taiyi) -> None:
    tokenizer = taiyi.tokenizer
    assert chunk_size(tokenizer) == 510
    cat, dog = encode_prompt(taiyi, CAT), encode_prompt(taiyi, DOG)
    assert cat.cond.shape == (1, 512, taiyi.text_encoder.config.hidden_size)
    assert not torch.allclose(cat.cond, dog.cond)
    assert torch.equal(cat.cond, encode_prompt(taiyi, CAT).cond)
    assert torch.equal(cat.uncond, dog.uncond)  # the same empty negative prompt
    ref, _ = taiyi.encode_prompt(CAT, "cpu", 1, False)  # diffusers' own: [CLS] tokens [SEP] [PAD]... to 512
    assert torch.allclose(cat.cond, ref, atol=1e-6)
    weighted = encode_prompt(taiyi, "一只在月光下的(猫:1.5)")
    assert not torch.allclose(weighted.cond, cat.cond)
    two = encode_prompt(taiyi, "一只猫 BREAK 月光")
    assert two.cond.shape[1] == 1024 and [len(c.ids) for c in prompt_chunks(tokenizer, "一只猫 BREAK 月光")] == [3, 2]


def test_a_chinese_prompt_runs_end_to_end_and_the_prompt_changes_the_picture(taiyi) -> None:
    run = {"model": "taiyi-zh", "steps": 3, "seed": 7, "sampler": "Euler"}
    cat = txt2img(Txt2ImgParams(prompt=CAT, **run))
    dog = txt2img(Txt2ImgParams(prompt=DOG, **run))
    again = txt2img(Txt2ImgParams(prompt=CAT, **run))
    a, b = (np.asarray(r.images[0]).astype(int) for r in (cat, dog))
    assert cat.images[0].size == (64, 64) and a.std() > 0
    assert np.array_equal(a, np.asarray(again.images[0]))
    assert np.abs(a - b).mean() > 0.5  # another prompt, same seed: another picture
    assert cat.paths[0].is_file()


def test_token_counter_counts_bert_tokens(taiyi) -> None:
    assert token_count(taiyi, CAT) == 8  # one token per character
    assert token_count(taiyi, "一只猫, oil") == 3 + 1 + 3  # an English word splits into letter pieces
    form = Form(Txt2ImgParams(model="taiyi-zh"))
    form.set_tokenizer(taiyi.tokenizer)
    form.fields["prompt"].value = CAT
    note = form.rows["prompt"].note.value
    assert "<b>8/510</b> tokens" in note and "cannot read" not in note


def test_script_notes_point_to_the_model_that_reads_the_prompt() -> None:
    assert unreadable_scripts(CAT, ("en",)) == {"zh"}
    assert unreadable_scripts(CAT + ", 4k, HD <lora:style:0.8> BREAK", ("zh",)) == set()
    assert unreadable_scripts(CAT + ", oil painting", ("zh",)) == {"en"}
    assert unreadable_scripts("кошка", ("en",)) == {"other"}
    english = script_note(CAT, "sd15")
    assert "not in English" in english and "'taiyi-zh'" in english
    assert script_note(CAT, "taiyi-zh") == ""
    chinese = script_note("a cat in the moonlight", "taiyi-zh")
    assert "reads Chinese" in chinese and "'sd15'" in chinese
    form = Form(Txt2ImgParams())
    form.fields["prompt"].value = CAT
    assert "taiyi-zh" in form.rows["prompt"].note.value  # a note beside the prompt, not an error
    assert form.problems() == {}
    form.fields["model"].value = "taiyi-zh"
    assert "not in English" not in form.rows["prompt"].note.value


def test_clip_skip_is_refused_for_a_bert_text_encoder(taiyi) -> None:
    with pytest.raises(SdnbError, match="Clip skip 2 is a setting for CLIP text encoders; .* BertModel"):
        encode_prompt(taiyi, CAT, clip_skip=2)


def test_a_tokenizer_that_cannot_be_built_offline_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "taiyi-without-vocab"
    shutil.copytree(tiny_model_dir("sd15-bert"), folder)
    (folder / "tokenizer" / "vocab.txt").unlink()  # transformers would build a tokenizer of 5 special tokens
    with pytest.raises(SdnbError, match="tokenizer of .*taiyi-without-vocab could not be built") as refused:
        load_pipeline(folder)
    assert "vocab.txt" in refused.value.hint


def test_sd15_controlnets_steer_the_chinese_model_and_sdxl_ones_are_refused(taiyi) -> None:
    from PIL import Image, ImageDraw

    from sdnb.generate import controlnet
    from sdnb.params import ControlNetParams

    edges = Image.new("RGB", (64, 64), (200, 200, 200))
    ImageDraw.Draw(edges).rectangle((16, 16, 48, 48), fill=(20, 20, 20))
    p = ControlNetParams(model="taiyi-zh", prompt="一只在月光下的猫", negative_prompt="", control_image=edges,
                         width=64, height=64, steps=3, seed=4)
    steered = np.asarray(controlnet(p, save=False).images[0], dtype=int)
    free = np.asarray(controlnet(p, control_weight=0.0, save=False).images[0], dtype=int)
    assert np.abs(steered - free).mean() > 0.5  # the SD 1.5 ControlNet acts on Taiyi's UNet
    with pytest.raises(SdnbError, match="made for sdxl models, not sd15-bert"):
        controlnet(p, control_model="sdxl-canny", save=False)
