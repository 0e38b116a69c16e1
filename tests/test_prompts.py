"""The one prompt path: the WebUI's prompt syntax (its own documented parse_prompt_attention examples),
75-token chunks with BREAK and the comma rule, "original" emphasis by its formula, Clip skip, and exact
agreement with diffusers' encode_prompt when no weights are given, for SD 1.5, SD 2.1 and SDXL."""

from __future__ import annotations

import warnings

import pytest
import torch

from sdnb.errors import SdnbError
from sdnb.images import parse_infotext
from sdnb.models import load_pipeline
from sdnb.params import Txt2ImgParams, params_from_infotext, to_infotext
from sdnb.prompts import (
    CHUNK,
    LoraTag,
    encode_prompt,
    extract_loras,
    parse_prompt_attention,
    prompt_chunks,
    set_lora_weight,
    token_count,
)


def _runs(text: str) -> list[list]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [list(r) for r in parse_prompt_attention(text)]


def test_the_webuis_documented_examples() -> None:
    # modules/prompt_parser.py, the docstring of parse_prompt_attention (AUTOMATIC1111/stable-diffusion-webui)
    assert _runs("normal text") == [["normal text", 1.0]]
    assert _runs("an (important) word") == [["an ", 1.0], ["important", 1.1], [" word", 1.0]]
    assert _runs("(unbalanced") == [["unbalanced", 1.1]]
    assert _runs("\\(literal\\]") == [["(literal]", 1.0]]
    assert _runs("(unnecessary)(parens)") == [["unnecessaryparens", 1.1]]
    assert _runs("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).") == [
        ["a ", 1.0], ["house", 1.5730000000000004], [" ", 1.1], ["on", 1.0], [" a ", 1.1], ["hill", 0.55],
        [", sun, ", 1.1], ["sky", 1.4641000000000006], [".", 1.1]]


def test_nesting_escapes_and_break() -> None:
    assert _runs("((a)) [[b]] (c:1.5)") == [["a", 1.1 * 1.1], [" ", 1.0], ["b", 1 / 1.1 / 1.1], [" ", 1.0],
                                            ["c", 1.5]]
    assert _runs("((x:2):0.5)") == [["x", 1.0]]
    assert _runs("\\(not weighted\\) \\\\ a:b") == [["(not weighted) \\ a:b", 1.0]]
    assert _runs("(x: 1.3 )") == [["x", 1.3]]
    assert _runs("a cat BREAK (a dog)") == [["a cat", 1.0], ["BREAK", -1.0], ["", 1.0], ["a dog", 1.1]]
    assert _runs("BREAKFAST") == [["BREAKFAST", 1.0]]  # only the whole word


def test_unbalanced_brackets_act_as_in_the_webui_and_say_so() -> None:
    with pytest.warns(UserWarning, match=r"unclosed bracket.*'red cat': 1.1"):
        assert parse_prompt_attention("a (red cat") == [("a ", 1.0), ("red cat", 1.1)]
    assert _runs("a red) cat]") == [["a red) cat]", 1.0]]  # a stray closing bracket is text, as in the WebUI
    assert _runs("(huge:100)") == [["huge", 100.0]]  # the WebUI accepts any weight
    with pytest.raises(SdnbError, match="not a weight"):
        parse_prompt_attention("(x:1.2.3)")


def test_lora_tags_are_taken_out() -> None:
    text, tags = extract_loras("a cat <lora:style:0.6>, <lora:detail> sharp <lora:style:0.8>")
    assert text == "a cat ,  sharp " and tags == (LoraTag("detail", 1.0), LoraTag("style", 0.8))
    with pytest.raises(SdnbError, match="hypernet"):
        extract_loras("<hypernet:x:1>")
    with pytest.raises(SdnbError, match="not a number"):
        extract_loras("<lora:x:strong>")
    assert set_lora_weight("a cat <lora:style:0.6>", "style", 0.25) == "a cat <lora:style:0.25>"
    assert set_lora_weight("a cat", "style", 1.0) == "a cat <lora:style:1>"


def test_chunks_break_and_the_comma_rule(pipe) -> None:
    tok = pipe.tokenizer
    assert len(tok("a", add_special_tokens=False).input_ids) == 1  # one token per "a" and per ","
    plain = prompt_chunks(tok, " ".join(["a"] * 80))
    assert [len(c.ids) for c in plain] == [75, 5]
    comma = prompt_chunks(tok, " ".join(["a"] * 70) + ", " + " ".join(["a"] * 10))
    assert [len(c.ids) for c in comma] == [71, 10]  # the words after the comma moved on
    far = prompt_chunks(tok, " ".join(["a"] * 40) + ", " + " ".join(["a"] * 40))
    assert [len(c.ids) for c in far] == [75, 6]  # a comma 35 tokens back is too far
    broken = prompt_chunks(tok, "a red cat BREAK (a dog:1.5)")
    assert [len(c.ids) for c in broken] == [3, 2] and broken[1].weights == (1.5, 1.5)
    assert prompt_chunks(tok, "")[0].ids == () and token_count(pipe, "a (red:1.2) cat <lora:x:1>") == 3


@pytest.mark.parametrize("model", ["sd15", "sd21", "sdxl"])
def test_unweighted_prompts_equal_diffusers_encode_prompt(model: str) -> None:
    pipe = load_pipeline(model)
    device = pipe._execution_device
    ours = encode_prompt(pipe, "a red fox, in the snow <lora:anything:0.5>", "blurry")
    with torch.no_grad():
        theirs = pipe.encode_prompt("a red fox, in the snow", device=device, num_images_per_prompt=1,
                                    do_classifier_free_guidance=True, negative_prompt="blurry")
    mine = [ours.cond, ours.uncond] + ([ours.pooled, ours.uncond_pooled] if model == "sdxl" else [])
    assert len(mine) == len(theirs) and all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))


@pytest.mark.parametrize("model", ["sd15", "sdxl"])
def test_weights_follow_the_original_emphasis_formula(model: str) -> None:
    pipe = load_pipeline(model)
    plain, weighted = encode_prompt(pipe, "a red cat"), encode_prompt(pipe, "a (red:1.5) [cat]")
    assert not torch.equal(plain.cond, weighted.cond) and torch.equal(plain.uncond, weighted.uncond)
    widths = [pipe.text_encoder.config.hidden_size]
    if model == "sdxl":
        widths.append(pipe.text_encoder_2.config.hidden_size)
        assert torch.equal(plain.pooled, weighted.pooled)  # the pooled vector is not weighted
    w = torch.ones(77)
    w[2], w[3] = 1.5, 1 / 1.1  # start token, "a", "red", "cat"
    start = 0
    for width in widths:  # each text encoder's part on its own, as the WebUI does
        z = plain.cond[0, :, start : start + width]
        scaled = z * w[:, None]
        expected = scaled * (z.mean() / scaled.mean())
        torch.testing.assert_close(weighted.cond[0, :, start : start + width], expected, rtol=1e-5, atol=1e-6)
        start += width


@pytest.mark.parametrize("model", ["sd15", "sdxl"])
def test_long_prompts_break_and_padded_negatives(model: str) -> None:
    pipe = load_pipeline(model)
    long_prompt = ", ".join(["a red cat", "a blue dog", "a green tree", "a small house"] * 12)
    chunks = prompt_chunks(pipe.tokenizer, long_prompt)
    e = encode_prompt(pipe, long_prompt, "blurry")
    assert len(chunks) >= 2 and e.cond.shape[1] == e.uncond.shape[1] == 77 * len(chunks)
    empty = encode_prompt(pipe, "", "")
    for k in range(1, len(chunks)):  # the negative's extra chunks are empty prompts
        assert torch.equal(e.uncond[:, 77 * k : 77 * (k + 1)], empty.uncond)
    first = encode_prompt(pipe, "a cat BREAK a dog")
    assert first.cond.shape[1] == 154
    assert torch.equal(first.cond[:, :77], encode_prompt(pipe, "a cat").cond)
    assert torch.equal(first.cond[:, 77:], encode_prompt(pipe, "a dog").cond)


def test_clip_skip(pipe) -> None:
    xl = load_pipeline("sdxl")
    with torch.no_grad():  # diffusers' SDXL clip_skip=1 is the WebUI's Clip skip 2 (one layer before its default)
        theirs = xl.encode_prompt("a red fox", device=xl._execution_device, num_images_per_prompt=1,
                                  do_classifier_free_guidance=True, negative_prompt="", clip_skip=1)
    ours = encode_prompt(xl, "a red fox", "", clip_skip=2)
    assert torch.equal(ours.cond, theirs[0]) and torch.equal(ours.pooled, theirs[2])
    ids = pipe.tokenizer("a red fox", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():  # SD 1.x: the second-to-last layer through the final layer norm
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        expected = pipe.text_encoder.final_layer_norm(hidden)
    assert torch.equal(encode_prompt(pipe, "a red fox", clip_skip=2).cond, expected)
    assert not torch.equal(expected, encode_prompt(pipe, "a red fox").cond)
    with pytest.raises(SdnbError, match="Clip skip 5 .* 2 layers"):
        encode_prompt(pipe, "a red fox", clip_skip=5)


def test_clip_skip_infotext_as_the_webui_writes_it() -> None:
    p = Txt2ImgParams(prompt="a cat <lora:style:0.5>", seed=3, width=64, height=64)
    assert "Clip skip" not in to_infotext(p, 3)
    text = to_infotext(Txt2ImgParams(**{**p.__dict__, "clip_skip": 2}), 3)
    assert parse_infotext(text).settings["Clip skip"] == "2"
    back = params_from_infotext(text)
    assert back.clip_skip == 2 and back.prompt == "a cat <lora:style:0.5>"  # LoRA tags come back with the prompt
    with pytest.raises(SdnbError, match="Clip skip"):
        Txt2ImgParams(clip_skip=0).validate()


def test_chunk_size_constant() -> None:
    assert CHUNK == 75


@pytest.mark.parametrize("prompt", ["a [cat:dog:0.5]", "a [cat|dog]", "a [dog:5]"])
def test_prompt_editing_and_alternation_are_refused_not_read_as_text(pipe, prompt: str) -> None:
    with pytest.raises(SdnbError, match="prompt editing"):
        encode_prompt(pipe, prompt)
    assert token_count(pipe, "a \\[cat:dog\\] [deep]") > 0  # escaped brackets and plain [word] are fine
