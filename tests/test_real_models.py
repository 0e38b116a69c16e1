"""Real weights on a real GPU: skipped by default (no hub access and no GPU in CI)."""

import numpy as np
import pytest

pytestmark = [pytest.mark.real, pytest.mark.gpu]


@pytest.fixture
def real_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_TINY", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


@pytest.mark.parametrize("model", ["sd15", "sd21", "sdxl"])
def test_registry_model_makes_a_real_image_in_fp16(real_mode, model: str) -> None:
    from sdnb.generate import txt2img
    from sdnb.models import load_pipeline

    pipe = load_pipeline(model)
    assert str(pipe.unet.dtype) == "torch.float16"
    r = txt2img(model=model, prompt="a red apple on a wooden table, photo", steps=20, seed=1, pipe=pipe)
    pixels = np.asarray(r.images[0]).astype(float)
    assert pixels.std() > 20  # a picture, not a black (NaN) or flat frame
    assert not r.flagged
