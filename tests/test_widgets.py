"""The forms and apps, without a browser; run against ipywidgets 8 and, in `make test`, 7.7.1 (Colab's)."""

import io
import os
import threading
import time
from pathlib import Path

import ipywidgets
import pytest
from PIL import Image

from sdnb.apps import txt2img_app, walk_app
from sdnb.errors import Interrupted
from sdnb.images import read_infotext, save_image
from sdnb.params import Img2ImgParams, Txt2ImgParams, WalkParams, to_infotext
from sdnb.widgets import Form, save_upload, uploaded_files

REPO = Path(__file__).resolve().parents[1]
IPYWIDGETS_MAJOR = int(ipywidgets.__version__.split(".")[0])


def _upload(widget: ipywidgets.FileUpload, name: str, content: bytes) -> None:
    """What the browser does when a file is picked, in the value format of the installed ipywidgets."""
    if IPYWIDGETS_MAJOR >= 8:
        widget.set_state({"value": [{"name": name, "type": "image/png", "size": len(content),
                                     "content": memoryview(content), "last_modified": 0}]})
    else:  # ipywidgets 7: the frontend sends data and metadata; value is computed from them
        widget.set_state({"data": [memoryview(content)], "metadata": [{"name": name, "type": "image/png",
                          "size": len(content), "lastModified": 0}], "_counter": widget._counter + 1})


def test_the_ipywidgets_this_run_is_for() -> None:
    expected = os.environ.get("SDNB_EXPECT_IPYWIDGETS")
    if not expected:
        pytest.skip("SDNB_EXPECT_IPYWIDGETS not set (make test sets 7.7.1 for its Colab run)")
    assert ipywidgets.__version__ == expected


def test_form_is_built_from_the_params_and_returns_them_validated() -> None:
    form = Form(Txt2ImgParams(prompt="a fox", steps=7, seed=5))
    assert form.fields["prompt"].value == "a fox" and form.fields["steps"].value == 7
    assert form.fields["width"].value == 64  # model's native size filled in
    assert "DPM++ 2M" in form.fields["sampler"].options
    form.fields["cfg_scale"].value = 3.5
    p = form.params()
    assert isinstance(p, Txt2ImgParams) and p.cfg_scale == 3.5 and p.seed == 5


def test_sliders_and_number_boxes_move_together_and_out_of_range_is_an_error_not_a_clamp() -> None:
    form = Form(Txt2ImgParams())
    assert set(form.sliders) >= {"steps", "cfg_scale", "width", "height", "batch_size", "batch_count"}
    assert "seed" not in form.sliders  # 2**32 values: a number box only
    form.sliders["steps"].value = 42
    assert form.fields["steps"].value == 42 and form.params().steps == 42
    form.fields["cfg_scale"].value = 12.5
    assert form.sliders["cfg_scale"].value == 12.5
    form.fields["steps"].value = 200  # beyond the slider: kept as typed, shown as an error beside the field
    assert form.fields["steps"].value == 200 and form.sliders["steps"].value == 42
    assert "between 1 and 150" in form.rows["steps"].error.value
    with pytest.raises(Exception, match="Steps must be between 1 and 150"):
        form.params()
    form.fields["width"].value = 70
    assert "multiple of 8" in form.rows["width"].error.value
    form.fields["steps"].value, form.fields["width"].value = 30, 64
    assert form.rows["steps"].error.value == "" and form.params().steps == 30


def test_changing_the_model_moves_the_size_sliders_and_sets_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_TINY", "0")
    form = Form(Txt2ImgParams())
    form.fields["model"].value = "sdxl"
    assert form.fields["width"].value == form.fields["height"].value == 1024
    assert (form.sliders["width"].min, form.sliders["width"].max) == (512, 2048)
    form.fields["width"].value = 4000
    assert form.fields["width"].value == 4000 and "between 512 and 2048" in form.rows["width"].error.value


def test_dice_and_recycle_set_the_seed() -> None:
    app = txt2img_app(Txt2ImgParams(seed=5))
    dice, recycle = app.form.rows["seed"].extras
    dice.click()
    assert app.form.params().seed == -1
    recycle.click()  # no run yet: nothing to recycle
    assert app.form.fields["seed"].value == -1
    app.form.last_seed = 1234
    recycle.click()
    assert app.form.params().seed == 1234


def test_generate_runs_in_a_thread_and_fills_the_gallery(pipe) -> None:
    app = txt2img_app(Txt2ImgParams(steps=3, seed=9, batch_size=2))
    app.start()
    result = app.wait(120)
    assert result.seeds == [9, 10] and len(app.gallery.children) == 2
    assert app.progress.bar.value == app.progress.bar.max == 3
    assert not app.go.disabled and app.stop_button.disabled
    card = app.gallery.children[0]
    text = card.children[1].value
    assert "seed 9" in text and "Seed: 9" in text and "download=" in text and "data:image/png;base64," in text
    card.children[2].click()  # Reuse seed
    assert app.form.fields["seed"].value == 9 and app.form.last_seed == 10
    assert "Final images (2)" in app.progress.stage_label.value
    assert "/75" in app.form.rows["prompt"].note.value  # the token counter, once the model is loaded
    app.clear_button.click()
    assert app.gallery.children == () and app.progress.stage_label.value == ""


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
    assert "Stopped" in app.progress.message and len(app.gallery.children) == len(result.images)


def test_stop_before_the_first_image_says_so_instead_of_a_blank_tile(pipe) -> None:
    app = txt2img_app(Txt2ImgParams(steps=20, seed=1))
    original = app.progress.update

    def update(done, preview=None):
        original(done, preview)
        if done == 2:
            app.stop()

    app.progress.update = update
    app.start()
    result = app.wait(60)
    assert result.interrupted and result.images == [] and app.gallery.children == ()
    assert "nothing was saved" in app.progress.stage_label.value


def test_run_in_a_plain_cell_stops_with_one_line_and_keeps_the_finished_images(pipe) -> None:
    app = txt2img_app(Txt2ImgParams(steps=4, seed=100, batch_count=20))
    original = app.progress.update

    def update(done, preview=None):
        original(done, preview)
        if done == 9:  # the click, as process_ui_events would deliver it during the run
            app.stop_button.click()

    app.progress.update = update
    with pytest.raises(Interrupted) as stopped:
        app.run()
    line = stopped.value._render_traceback_()
    assert len(line) == 1 and "after 2 of 20 image(s)" in line[0]
    assert len(app.gallery.children) == 2 and not app.running and not app.go.disabled


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


def test_side_by_side_rows_help_and_non_english_note() -> None:
    form = Form(Txt2ImgParams())
    pairs = [box for box in form.widget.children if isinstance(box, ipywidgets.HBox)]
    assert [[c.children[0].children[0].description for c in box.children] for box in pairs] == [
        ["Width", "Height"], ["Batch size", "Batch count"]]
    assert "Denoising steps" in form.rows["steps"].box.children[1].value  # help is visible, not a tooltip
    form.fields["prompt"].value = "一座灯塔"
    assert "not in English" in form.rows["prompt"].note.value
    form.fields["prompt"].value = "a café by the sea"
    assert "not in English" not in form.rows["prompt"].note.value


def test_walk_form_shows_every_prompt_and_puts_preview_first() -> None:
    app = walk_app()
    box = app.form.fields["prompts"]
    assert box.rows >= len(WalkParams().prompts) + 1
    assert [b.description for b in app.buttons.children][:2] == ["Preview", "Render video"]


def test_image_fields_get_an_upload_that_fills_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_OUTPUT_DIR", str(tmp_path))
    form = Form(Img2ImgParams(image="x.png"))
    upload = form.rows["image"].extras[0]
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    _upload(upload, "my photo.png", buf.getvalue())
    saved = Path(form.fields["image"].value)
    assert saved.parent == tmp_path / "uploads" and saved.read_bytes() == buf.getvalue()
    assert save_upload("my photo.png", b"other") != saved  # never overwritten


def test_uploaded_files_reads_both_ipywidgets_formats() -> None:
    class Fake:
        value = {"a.png": {"metadata": {"name": "a.png"}, "content": b"7"}}

    assert uploaded_files(Fake()) == [("a.png", b"7")]
    Fake.value = ({"name": "b.png", "content": memoryview(b"8")},)
    assert uploaded_files(Fake()) == [("b.png", b"8")]


def test_png_info_fills_the_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_OUTPUT_DIR", str(tmp_path))
    made = Txt2ImgParams(prompt="a red fox in the snow", negative_prompt="blurry", steps=33, cfg_scale=5.5,
                         width=64, height=64)
    png = save_image(Image.new("RGB", (64, 64)), tmp_path, infotext=to_infotext(made, 777), stem="777")
    app = txt2img_app()
    _upload(app.pnginfo_upload, png.name, png.read_bytes())
    p = app.form.params()
    assert (p.prompt, p.negative_prompt, p.steps, p.cfg_scale, p.seed) == ("a red fox in the snow", "blurry", 33,
                                                                          5.5, 777)
    assert "Filled:" in app.pnginfo_text.value and read_infotext(png) is not None
    app.read_png_info(save_image(Image.new("RGB", (8, 8)), tmp_path))
    assert "no generation parameters" in app.pnginfo_text.value


KERNEL_CODE = """
import time, threading
from sdnb.apps import txt2img_app
from sdnb.params import Txt2ImgParams
app = txt2img_app(Txt2ImgParams(steps=4, seed=500, batch_count=100))
display(app)
print("STOP-COMM", app.stop_button.comm.comm_id)
"""


def test_stop_is_heard_while_a_plain_cell_runs_in_a_real_kernel(tmp_path: Path) -> None:
    """A real ipykernel: the Stop click (a comm message) arrives while `app.run()` blocks the kernel; the cell
    ends with one line, and the cell queued behind it (Run all) is not run, as after the kernel's stop."""
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "SDNB_OUTPUT_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(
        p for p in (os.environ.get("PYTHONPATH", ""), str(REPO)) if p)}
    km, kc = start_new_kernel(kernel_name="python3", env=env, extra_arguments=[], cwd=str(tmp_path))
    try:
        comm_id = []
        kc.execute_interactive(KERNEL_CODE, timeout=120, output_hook=lambda m: comm_id.extend(
            m["content"]["text"].split()[1:2] if m["msg_type"] == "stream" and "STOP-COMM" in m["content"].get(
                "text", "") else []))
        assert comm_id, "the app did not start in the kernel"
        run = kc.execute("app.run()")
        queued = kc.execute("print('the next cell ran')")
        outputs: dict[str, list] = {run: [], queued: []}
        replies: dict[str, dict] = {}
        clicked = False
        deadline = time.monotonic() + 180
        while not (run in replies and queued in replies) and time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=0.2)
                parent = msg["parent_header"].get("msg_id")
                if parent in outputs:
                    outputs[parent].append(msg)
                    text = str(msg["content"])
                    if not clicked and msg["msg_type"] == "comm_msg" and "Steps: 1" in text:
                        # the run is under way (its status line updated): click Stop, as the browser does
                        kc.shell_channel.send(kc.session.msg("comm_msg", {
                            "comm_id": comm_id[0], "data": {"method": "custom", "content": {"event": "click"}}}))
                        clicked = True
            except Exception:  # noqa: BLE001 - queue.Empty
                pass
            try:
                reply = kc.get_shell_msg(timeout=0.05)
                replies[reply["parent_header"]["msg_id"]] = reply["content"]
            except Exception:  # noqa: BLE001 - queue.Empty
                pass
        assert clicked and run in replies, f"the run never started or never ended: {replies}"
        while not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in outputs[run]):
            msg = kc.get_iopub_msg(timeout=10)  # the run's outputs may come after the replies
            if msg["parent_header"].get("msg_id") == run:
                outputs[run].append(msg)
        assert replies[run]["status"] == "error" and replies[run]["ename"] == "Interrupted"
        [error] = [m for m in outputs[run] if m["msg_type"] == "error"]
        assert len(error["content"]["traceback"]) == 1 and "image(s)" in error["content"]["traceback"][0]
        saved = sorted((tmp_path / "txt2img").glob("*.png")) if (tmp_path / "txt2img").exists() else []
        assert len(saved) < 100, "Stop was not heard: the whole run finished"
        assert replies.get(queued, {}).get("status") == "aborted"  # Run all stops here
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_outside_a_kernel_processing_ui_events_does_nothing() -> None:
    from sdnb.uipoll import process_ui_events

    assert process_ui_events() == 0
