"""Interpolation walks (notebook 02): frame plan, slerp, MP4 output, resume, audio pacing, bad input."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from sdnb import walk
from sdnb.errors import SdnbError
from sdnb.images import parse_infotext, read_infotext, save_image
from sdnb.params import WalkParams
from sdnb.prompts import encode_prompt
from sdnb.seeds import initial_noise, slerp
from sdnb.video import check_video, click_track, probe_video
from sdnb.walk import frame_plan, preview_walk, render_walk, walk_plan

# 3 prompts, 4 + 3 frames and the closing keyframe = 8 frames; batches of 3 split a segment.
FAST = WalkParams(
    prompts=("a red fox in the snow", "a lighthouse at night", "a castle on a hill"),
    seeds=(1, 2, 3),
    frames=(4, 3),
    steps=3,
    batch_size=3,
)


class RaiseAt:
    """A progress reporter that raises ``exc`` once ``n`` frames are done (a Ctrl-C at a chosen moment)."""

    def __init__(self, n: int, exc: BaseException | None = None, stop: threading.Event | None = None) -> None:
        self.n, self.exc, self.stop, self.messages = n, exc, stop, []

    def start(self, total: int, what: str) -> None:
        self.messages.append(what)

    def update(self, done: int, preview: Image.Image | None = None) -> None:
        if preview is None and done >= self.n:
            if self.stop is not None:
                self.stop.set()
            elif self.exc is not None:
                raise self.exc

    def finish(self, message: str) -> None:
        self.messages.append(message)


def video_frames(path: Path) -> list[bytes]:
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)
    return list(reader)


def pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted((folder / "frames").glob("*.png"))]


# ---------------------------------------------------------------------------------------------
# Pure parts: the frame plan and the interpolation


def test_frame_plan_has_each_keyframe_once_and_ends_exactly_on_the_last_prompt() -> None:
    plan = frame_plan((4, 3), 3, easing="linear")
    assert len(plan) == 8
    assert plan.segments == (0, 0, 0, 0, 1, 1, 1, 1)
    assert plan.ts == (0.0, 0.25, 0.5, 0.75, 0.0, 1 / 3, 2 / 3, 1.0)
    assert plan.keyframes == (0, 4, 7)
    assert plan.pair(7) == (1, 2, 1.0)
    looped = frame_plan((2, 2, 2), 3, loop=True)
    assert len(looped) == 6 and looped.pair(5)[:2] == (2, 0)  # walks back towards the first prompt
    smooth = frame_plan((8,), 2, easing="smooth")
    steps = np.diff(smooth.ts)
    assert steps[0] < steps[3] and steps[-1] < steps[3]  # slow near the prompts, fast in between
    assert frame_plan((4, 3), 3).digest() != smooth.digest()


def test_slerp_keeps_endpoints_exact_and_the_norm_where_lerp_sags() -> None:
    a, b = initial_noise([1, 2], (4, 32, 32))
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    norms = [float(slerp(a, b, t).norm()) for t in np.linspace(0, 1, 11)]
    assert max(norms) / min(norms) < 1.02
    assert float(torch.lerp(a, b, 0.5).norm()) < 0.75 * float(a.norm())  # the sag slerp avoids


def test_prompt_embeddings_are_lerped_with_exact_endpoints(pipe) -> None:
    e1, e2 = encode_prompt(pipe, "a red fox"), encode_prompt(pipe, "a castle")
    assert torch.equal(e1.lerp(e2, 0.0).cond, e1.cond) and torch.equal(e1.lerp(e2, 1.0).cond, e2.cond)
    mid = e1.lerp(e2, 0.5).cond
    assert torch.allclose(mid, (e1.cond + e2.cond) / 2, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Bad input: one clear error before any model load or file


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prompts": ("only one",), "seeds": (1,)}, "at least two prompts"),
        ({"seeds": (1, 2)}, "one seed per prompt"),
        ({"frames": (0,)}, "from 1 to 10000"),
        ({"frames": (4, -2)}, "from 1 to 10000"),
        ({"frames": (4, 3, 2)}, "one per segment"),
        ({"width": 100}, "multiple of 8"),
        ({"height": 60}, "multiple of 8"),
        ({"sampler": "Euler a"}, "flicker"),
        ({"audio": "/no/such/song.wav"}, "does not exist"),
        ({"seeds": (1, 2, 2**40)}, "outside"),
    ],
)
def test_bad_settings_fail_before_anything_is_loaded_or_written(
    change: dict, message: str, _outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walk, "load_pipeline", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(SdnbError, match=message):
        render_walk(FAST, **change)
    assert not (_outputs / "walks").exists()


def test_all_problems_are_listed_in_one_error() -> None:
    with pytest.raises(SdnbError) as err:
        WalkParams(prompts=("a",), seeds=(1, 2), frames=(0,), width=100).validate()
    text = str(err.value)
    assert all(word in text for word in ("two prompts", "one seed per prompt", "Frames", "Width"))


def test_unreadable_audio_and_unwritable_output_fail_before_rendering(
    tmp_path: Path, _outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walk, "load_pipeline", lambda *a, **k: pytest.fail("a model was loaded"))
    fake = tmp_path / "song.wav"
    fake.write_text("this is not audio")
    with pytest.raises(SdnbError, match="Cannot read the audio file"):
        render_walk(FAST, audio=str(fake))
    assert not (_outputs / "walks").exists()
    short = click_track(tmp_path / "short.wav", seconds=0.3)
    with pytest.raises(SdnbError, match="would last"):
        render_walk(FAST, audio=str(short))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SDNB_OUTPUT_DIR", str(blocker / "outputs"))  # a folder inside a file cannot exist
    with pytest.raises(SdnbError, match="Cannot save images into"):
        render_walk(FAST)


# ---------------------------------------------------------------------------------------------
# Rendering


def test_walk_writes_numbered_pngs_config_and_a_playable_mp4(pipe) -> None:
    result = render_walk(FAST, fps=8)
    assert result.complete and result.done == result.total == 8
    assert result.video.name == f"{result.folder.name}.mp4"
    assert check_video(result.video, 8, (64, 64)).startswith("✓")
    info = probe_video(result.video)
    assert (info.fps, info.audio) == (8.0, False)
    assert [p.name for p in result.frames] == [f"{j:05d}.png" for j in range(8)]
    config = json.loads((result.folder / "config.json").read_text())
    assert config["seeds"] == [1, 2, 3] and config["complete"] and config["frames_total"] == 8
    assert config["keyframes"] == [0, 4, 7] and config["versions"]["diffusers"]
    text = parse_infotext(read_infotext(result.frames[5]))
    assert text.prompt == "a lighthouse at night"
    assert text.settings["Seed"] == "2" and text.settings["Walk next seed"] == "3"
    assert text.settings["Walk frame"] == "5 of 8"
    decoded = video_frames(result.video)
    assert len(decoded) == 8 and len(decoded[0]) == 64 * 64 * 3
    frames = pngs(result.folder)
    assert not np.array_equal(frames[0], frames[1])  # the walk moves
    assert "Done: 8/8 frames" in result._repr_html_() and "<video" in result._repr_html_()


def test_ctrl_c_leaves_a_playable_partial_video_and_resume_equals_an_uninterrupted_run(pipe) -> None:
    whole = render_walk(FAST, name="whole")
    progress = RaiseAt(4, KeyboardInterrupt())  # in the middle of the second batch (frames 3-5)
    with pytest.raises(KeyboardInterrupt):
        render_walk(FAST, name="cut", progress=progress)
    folder = whole.folder.parent / "cut"
    partial = folder / "cut.partial.mp4"
    assert len(list((folder / "frames").glob("*.png"))) == 4
    assert probe_video(partial).frames == 4  # playable, and holds exactly the frames on disk
    assert "Stopped: 4/8 frames" in progress.messages[-1]
    resumed = render_walk(FAST, name="cut")
    assert resumed.folder == folder and resumed.resumed_at == 4 and resumed.complete
    assert not partial.exists() and resumed.video == folder / "cut.mp4"
    for a, b in zip(pngs(whole.folder), pngs(folder), strict=True):
        assert np.array_equal(a, b)
    assert video_frames(whole.video) == video_frames(resumed.video)


def test_stop_keeps_finished_frames_and_a_second_run_never_overwrites(pipe) -> None:
    stop = threading.Event()
    stopped = render_walk(FAST, name="same", stop=stop, progress=RaiseAt(3, stop=stop))
    assert stopped.interrupted and stopped.done == 3 and probe_video(stopped.video).frames == 3
    done = render_walk(FAST, name="same")
    assert done.folder == stopped.folder and done.complete
    before = {p: p.read_bytes() for p in done.folder.rglob("*") if p.is_file() and p.name != "config.json"}
    again = render_walk(FAST, name="same")  # the same finished walk: nothing to do, nothing touched
    assert again.folder == done.folder and again.resumed_at == 8
    other = render_walk(FAST, name="same", cfg_scale=3.0)  # other settings, same name: a new folder
    assert other.folder.name == "same-2" and other.complete
    fresh = render_walk(FAST, name="same", resume=False)
    assert fresh.folder.name == "same-3"
    assert all(p.read_bytes() == data for p, data in before.items())


def test_random_seeds_are_resolved_once_and_written_down(pipe) -> None:
    a = render_walk(FAST, seeds=(-1, 5, -1), frames=(1, 1))
    config = json.loads((a.folder / "config.json").read_text())
    assert config["request"]["seeds"] == [-1, 5, -1]
    assert config["seeds"] == list(a.params.seeds) and -1 not in config["seeds"]
    b = render_walk(FAST, seeds=(-1, 5, -1), frames=(1, 1))  # finished random walk: a new one, new seeds
    assert b.folder != a.folder


def test_safety_checker_hits_are_reported_with_their_frame_numbers(pipe, monkeypatch) -> None:
    real = walk.call_pipeline
    calls = []

    def flag_second_frame(*args, **kwargs):
        images, nsfw, interrupted = real(*args, **kwargs)
        calls.append(len(images))
        if len(calls) == 1:
            nsfw = [False, True, False]
        return images, nsfw, interrupted

    monkeypatch.setattr(walk, "call_pipeline", flag_second_frame)
    result = render_walk(FAST, name="nsfw")
    assert calls == [3, 3, 2]  # batches aligned to frame numbers: 0-2, 3-5, 6-7
    assert result.flagged == [1]
    assert "flagged frame(s) 1" in result.summary()
    assert json.loads((result.folder / "config.json").read_text())["flagged"] == [1]
    assert len(result.frames) == 8 and pngs(result.folder)[1].any()  # kept, never replaced


def test_save_image_with_an_exact_index_never_overwrites(tmp_path: Path) -> None:
    image = Image.new("RGB", (8, 8), "red")
    assert save_image(image, tmp_path, index=7).name == "00007.png"
    with pytest.raises(SdnbError, match="already exists"):
        save_image(image, tmp_path, index=7)
    assert save_image(image, tmp_path).name == "00008.png"  # numbering continues after it


def test_preview_is_a_labelled_strip_of_evenly_spaced_frames(pipe, _outputs: Path) -> None:
    preview = preview_walk(FAST, keyframes=4, seeds=(-1, 2, 3))
    assert preview.frames == [0, 2, 5, 7]
    assert len(preview.images) == 4 and preview.images[0].size == (64, 64)
    assert preview.grid.width >= 4 * 64 and preview.params.seeds[0] != -1
    assert not (_outputs / "walks").exists()  # a preview writes nothing


# ---------------------------------------------------------------------------------------------
# Audio pacing


def test_audio_pacing_moves_more_near_the_beats(tmp_path: Path) -> None:
    song = click_track(tmp_path / "clicks.wav", seconds=5.0, bpm=120)  # a click every 0.5 s
    p = WalkParams(frames=(24, 24), audio=str(song), easing="linear", fps=12).validate()
    plan = walk_plan(p)
    position = np.array(plan.segments) + np.array(plan.ts)
    change = np.diff(position)
    clicks = np.arange(0, 5.0, 0.5)
    near = np.array([np.any(np.abs(clicks - (k + 0.5) / p.fps) <= 0.5 / p.fps + 0.03) for k in range(len(change))])
    assert change[near].mean() > 4 * change[~near].mean()
    assert plan.ts[0] == 0.0 and plan.ts[-1] == 1.0 and plan.keyframes == (0, 24, 48)


def test_audio_is_muxed_and_rendered_frames_change_on_the_beat(pipe, tmp_path: Path) -> None:
    song = click_track(tmp_path / "clicks.wav", seconds=3.0, bpm=120)
    result = render_walk(FAST, frames=(6, 6), fps=6, audio=str(song), easing="linear", batch_size=4)
    info = probe_video(result.video)
    assert info.audio and info.frames == 13
    frames = np.array(pngs(result.folder), dtype=float)
    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    position = np.array(walk_plan(result.params).ts) + np.array(walk_plan(result.params).segments)
    beat = np.diff(position) > np.median(np.diff(position))
    assert change[beat].mean() > 1.5 * change[~beat].mean()


def test_a_walk_frame_is_remade_from_its_png(pipe) -> None:
    from sdnb.generate import regenerate

    result = render_walk(FAST, name="remake", batch_size=1)
    for frame in (result.frames[0], result.frames[5]):
        again = regenerate(frame, save=False)
        assert np.array_equal(np.asarray(again.images[0]), np.asarray(Image.open(frame).convert("RGB")))
    assert regenerate(result.frames[5]).paths[0].parent.name == "walk-frames"


def test_a_long_audio_file_is_decoded_only_as_far_as_the_video_needs(tmp_path) -> None:
    from sdnb.video import load_onsets

    song = click_track(tmp_path / "long.wav", seconds=300.0, bpm=120)
    onsets = load_onsets(song, seconds=2.0)
    assert onsets.duration == pytest.approx(300.0, abs=0.01)  # the whole file's length, from its header
    assert onsets.times[-1] < 3.5  # but only the first ~3 s were decoded
    plan = walk_plan(WalkParams(frames=(2,), fps=4, audio=str(song)).validate())
    assert plan.onsets is not None and plan.onsets.times[-1] < 3.5


def test_a_partial_video_plays_even_when_python_and_ffmpeg_are_both_killed(tmp_path) -> None:
    """A lost machine kills ffmpeg too, so it never writes an index at the end: the MP4 must not need one."""
    import subprocess
    import sys

    import psutil

    video = tmp_path / "partial.mp4"
    script = (
        "import sys, time, numpy as np\nfrom PIL import Image\nfrom sdnb.video import Mp4Writer\n"
        f"w = Mp4Writer({str(video)!r}, (64, 64), fps=8)\n"
        "rng = np.random.default_rng(0)\n"
        "for i in range(160):\n"
        "    w.append(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)))\n"
        "time.sleep(3)\nprint('written', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
    finally:  # python and its ffmpeg child (in a session of its own), at once, as a lost runtime would
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
    assert probe_video(video).frames >= 16  # at least the first fragments play


def test_a_walk_being_rendered_by_another_process_is_not_joined_and_a_stale_lock_is_taken_over(pipe) -> None:
    import json
    import socket
    import subprocess
    import sys

    from sdnb.walk import prepare_walk

    folder = prepare_walk(FAST, name="locked")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"pid": other.pid, "host": socket.gethostname(), "started": "2026-12-02T10:00:00+00:00"}
        (folder / ".render.lock").write_text(json.dumps(holder))
        with pytest.raises(SdnbError, match=f"being rendered by process {other.pid}") as err:
            render_walk(FAST, name="locked")
        assert ".render.lock" in err.value.hint
        assert not list((folder / "frames").glob("*.png")) if (folder / "frames").exists() else True
    finally:
        other.kill()
        other.wait()
    result = render_walk(FAST, name="locked")  # the holder is gone: its lock is taken over
    assert result.complete and result.folder == folder and not (folder / ".render.lock").exists()
