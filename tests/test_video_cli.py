"""The walk from a terminal (``python -m sdnb walk``) and from the notebook form (``walk_app``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ipywidgets as W
import pytest

from sdnb.apps import walk_app
from sdnb.cli import main
from sdnb.errors import SdnbError
from sdnb.params import WalkParams
from sdnb.video import check_video
from sdnb.walk import WalkPreview, WalkResult
from sdnb.widgets import Form

ARGS = ["walk", "--prompts", "a red fox", "a castle", "--seeds", "1", "2", "--frames", "3", "--steps", "2"]


def test_help_lists_a_flag_for_every_parameter() -> None:
    out = subprocess.run([sys.executable, "-m", "sdnb", "walk", "--help"], capture_output=True, text=True, check=True)
    for flag in ("--prompts", "--seeds", "--frames", "--negative-prompt", "--cfg-scale", "--fps", "--loop",
                 "--easing", "--batch-size", "--quality", "--audio", "--name", "--preview"):
        assert flag in out.stdout


def test_cli_renders_then_reports_bad_input_clearly(pipe, _outputs: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([*ARGS, "--name", "cli"]) == 0
    video = _outputs / "walks" / "cli" / "cli.mp4"
    assert check_video(video, 4, (64, 64)).startswith("✓")
    assert "Done: 4/4 frames" in capsys.readouterr().out
    assert main([*ARGS, "--frames", "0"]) == 2
    assert "Frames per segment" in capsys.readouterr().err
    assert main([*ARGS, "--preview"]) == 0
    assert "Preview strip:" in capsys.readouterr().out


def test_form_shows_tuples_one_per_line_and_as_numbers() -> None:
    form = Form(WalkParams())
    assert isinstance(form.fields["prompts"], W.Textarea)
    assert form.fields["seeds"].value == "42, 1234, 2024"
    form.fields["prompts"].value = "a cat\n\n  a dog  \na bird"
    form.fields["seeds"].value = "1, 2 3"
    form.fields["frames"].value = "4"
    p = form.params()
    assert (p.prompts, p.seeds, p.frames) == (("a cat", "a dog", "a bird"), (1, 2, 3), (4,))
    form.fields["seeds"].value = "1, two, 3"
    with pytest.raises(SdnbError, match="not a list of whole numbers"):
        form.params()


def test_app_buttons_preview_and_render(pipe) -> None:
    app = walk_app(WalkParams(frames=(2,), steps=2))
    labels = [b.description for b in app.buttons.children]
    assert labels == ["Preview", "Render video", "Stop", "Clear"]  # the lesson previews first
    app.buttons.children[0].click()
    assert isinstance(app.wait(60), WalkPreview)
    app.go.click()
    result = app.wait(60)
    assert isinstance(result, WalkResult) and result.complete, app.message.value
    player = app.results.children[0].children[0]  # the video with play controls, and its download link
    assert "<video controls" in player.children[0].value and "Download video" in player.children[1].value
    assert not app.go.disabled and app.stop_button.disabled
