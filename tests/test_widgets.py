import threading

import pytest

from sdnb.apps import txt2img_app
from sdnb.params import Txt2ImgParams
from sdnb.widgets import Form


def test_form_is_built_from_the_params_and_returns_them_validated() -> None:
    form = Form(Txt2ImgParams(prompt="a fox", steps=7, seed=5))
    assert form.fields["prompt"].value == "a fox" and form.fields["steps"].value == 7
    assert form.fields["width"].value == 64  # model's native size filled in
    assert form.fields["sampler"].options[0] == "DPM++ 2M Karras"
    form.fields["cfg_scale"].value = 3.5
    p = form.params()
    assert isinstance(p, Txt2ImgParams) and p.cfg_scale == 3.5 and p.seed == 5


def test_changing_the_model_sets_its_size_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_TINY", "0")
    form = Form(Txt2ImgParams())
    form.fields["model"].value = "sdxl"
    assert form.fields["width"].value == form.fields["height"].value == 1024
    assert (form.fields["width"].min, form.fields["width"].max) == (512, 2048)


def test_generate_runs_in_a_thread_and_shows_results(pipe) -> None:
    app = txt2img_app(Txt2ImgParams(steps=3, seed=9, batch_size=2))
    app.start()
    result = app.wait(120)
    assert result.seeds == [9, 10] and len(app.results.children) == 2
    assert app.progress.bar.value == app.progress.bar.max == 3
    assert not app.go.disabled and app.stop_button.disabled
    assert "seed 9" in app.results.children[0].children[1].value


def test_stop_button_ends_the_run_and_keeps_finished_images(pipe) -> None:
    app = txt2img_app(Txt2ImgParams(steps=4, seed=1, batch_count=50))
    started = threading.Event()
    original = app.progress.update

    def update(done, preview=None):
        original(done, preview)
        if done >= 6:
            started.set()

    app.progress.update = update
    app.start()
    assert started.wait(60)
    app.stop()
    result = app.wait(60)
    assert result.interrupted and 1 <= len(result.images) < 50
    assert "Stopped" in app.progress.label.value


def test_bad_form_values_show_an_error_instead_of_running() -> None:
    app = txt2img_app()
    app.form.fields["width"].value = 100
    app.start()
    assert app.thread is None
    assert "multiple of 8" in app.message.value and "Error" in app.message.value


def test_the_model_menu_shows_names_and_gives_registry_keys() -> None:
    form = Form(Txt2ImgParams())
    options = dict(form.fields["model"].options)
    assert options["Stable Diffusion 1.5"] == "sd15" and options["Stable Diffusion XL base 1.0"] == "sdxl"
    assert "Stable Diffusion 1.5 inpainting" not in options  # a txt2img form lists txt2img models only
    form.fields["model"].value = "sdxl"
    assert form.params().model == "sdxl"
