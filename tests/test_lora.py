"""LoRA for one run: tiny LoRAs made with peft in diffusers and Kohya format load completely, give identical
images, weight 0 is the base image, unloading restores the clean model, two LoRAs mix, the WebUI's
``Lora hashes`` is written, a weight sweep goes through the one grid, and bad LoRAs get one clear message."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from sdnb.errors import SdnbError
from sdnb.generate import run_task
from sdnb.images import parse_infotext, read_infotext
from sdnb.lora import loaded_lora_modules, lora_hash, lora_module_count, prompt_loras, resolve_lora
from sdnb.models import load_pipeline
from sdnb.params import Txt2ImgParams
from sdnb.sweep import xy_grid
from sdnb.tiny import TINY_LORAS, tiny_lora_dir

FAST = dict(steps=2, seed=5, width=64, height=64, negative_prompt="")


def _image(model: str, prompt: str, **kw) -> np.ndarray:
    r = run_task(Txt2ImgParams(**FAST, model=model, prompt=prompt), save=False, **kw)
    return np.asarray(r.images[0]).astype(int)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_every_module_of_each_tiny_lora_loads(family: str) -> None:
    pipe = load_pipeline(family)
    for name in TINY_LORAS:
        path = tiny_lora_dir(family) / f"{name}.safetensors"
        expected = lora_module_count(load_file(path))
        assert expected == (80 if family == "sdxl" else 40)  # 4 projections x every attention, and the text encoders
        with prompt_loras(pipe, f"a cat <lora:{name}:1>"):
            assert loaded_lora_modules(pipe, "sdnb_0") == expected
        assert loaded_lora_modules(pipe, "sdnb_0") == 0  # unloaded after the run


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_weight_zero_unload_kohya_and_two_loras(family: str) -> None:
    base = _image(family, "a red fox")
    style = _image(family, "a red fox <lora:tiny_style:1>")
    assert np.abs(style - base).mean() > 0.5  # the LoRA changes the picture
    assert np.array_equal(_image(family, "a red fox <lora:tiny_style_kohya:1>"), style)  # same LoRA, Kohya keys
    assert np.array_equal(_image(family, "a red fox <lora:tiny_style:0>"), base)  # weight 0 = the base model
    assert np.array_equal(_image(family, "a red fox"), base)  # unloaded: the next prompt gets the clean model
    both = _image(family, "a red fox <lora:tiny_style:1> <lora:tiny_detail:1>")
    assert np.abs(both - style).mean() > 0.5


def test_fused_loras_match_and_are_taken_off(monkeypatch: pytest.MonkeyPatch) -> None:
    base, unfused = _image("sd15", "a red fox"), _image("sd15", "a red fox <lora:tiny_style:0.8>")
    monkeypatch.setenv("SDNB_LORA_FUSE", "1")
    fused = _image("sd15", "a red fox <lora:tiny_style:0.8>")
    assert np.abs(fused - unfused).max() <= 2 and np.abs(fused - base).mean() > 0.5  # same LoRA, summed first
    assert np.abs(_image("sd15", "a red fox") - base).max() <= 1  # unfused again: the base up to float rounding


def test_lora_hashes_infotext_in_the_webuis_form(tmp_path: Path) -> None:
    r = run_task(Txt2ImgParams(**FAST, prompt="a fox <lora:tiny_style:0.7> <lora:tiny_detail:0.3>"))
    path = tiny_lora_dir("sd15") / "tiny_style.safetensors"
    data = path.read_bytes()
    start = 8 + int.from_bytes(data[:8], "little")
    assert lora_hash(path) == hashlib.sha256(data[start:]).hexdigest()[:12]  # the WebUI's "addnet" hash
    info = parse_infotext(read_infotext(r.paths[0]))
    detail = lora_hash(tiny_lora_dir("sd15") / "tiny_detail.safetensors")
    assert info.settings["Lora hashes"] == f"tiny_style: {lora_hash(path)}, tiny_detail: {detail}"
    assert '"tiny_style: ' in read_infotext(r.paths[0])  # quoted, as the WebUI writes it
    assert info.prompt == "a fox <lora:tiny_style:0.7> <lora:tiny_detail:0.3>"  # the tags stay in the prompt


def test_a_lora_weight_sweep_uses_the_one_grid() -> None:
    p = Txt2ImgParams(**FAST, prompt="a red fox <lora:tiny_style:1>")
    cells: list[str] = []

    def run(q: Txt2ImgParams):
        cells.append(q.prompt)
        return run_task(q, save=False).images[0]

    grid = xy_grid(run, p, "lora:tiny_style", [0.0, 1.0])
    assert cells == ["a red fox <lora:tiny_style:0>", "a red fox <lora:tiny_style:1>"]
    assert grid.width >= 128


def test_bad_loras_get_one_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _outputs: Path) -> None:
    folder = tmp_path / "loras"
    folder.mkdir()
    monkeypatch.setenv("SDNB_LORA_DIR", str(folder))
    pipe = load_pipeline("sd15")
    with pytest.raises(SdnbError, match=r"No LoRA named 'nope'.*LoRAs found: tiny_detail, tiny_style"):
        resolve_lora("nope", pipe)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SdnbError, match="from the hub, but downloads are off"):
        resolve_lora("someone/some-lora", pipe)
    (folder / "old.pt").write_bytes(b"\x80\x04pickle")
    with pytest.raises(SdnbError, match="pickle"):
        resolve_lora("old", pipe)
    with pytest.raises(SdnbError, match="pickle"):
        resolve_lora(str(folder / "old.pt"), pipe)
    (folder / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    shutil.copy(tiny_lora_dir("sdxl") / "tiny_style.safetensors", folder / "xl_style.safetensors")
    for prompt, message in [("<lora:broken:1>", "damaged"), ("<lora:xl_style:1>", r"does not fit sd15.*SDXL"),
                            ("<lora:nope:1>", "No LoRA named")]:
        with pytest.raises(SdnbError, match=message):
            run_task(Txt2ImgParams(**FAST, prompt=f"a fox {prompt}"))
        assert loaded_lora_modules(pipe, "sdnb_0") == 0  # nothing left loaded
    assert not any(_outputs.rglob("*.png"))  # nothing written


def test_regenerate_brings_the_loras_back() -> None:
    import warnings

    from sdnb.generate import regenerate

    r = run_task(Txt2ImgParams(**FAST, prompt="a fox <lora:tiny_style:0.6>"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "regenerate cannot honour")  # until generate knows "Lora hashes"
        again = regenerate(r.paths[0], save=False)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(r.images[0]))
    assert np.abs(np.asarray(again.images[0]).astype(int) - _image("sd15", "a fox")).mean() > 0.5
