"""Several processes (issue 10): a walk and a txt2img job split with accelerate, on the CPU with two processes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from sdnb.errors import SdnbError
from sdnb.generate import txt2img
from sdnb.params import Txt2ImgParams, WalkParams
from sdnb.video import probe_video
from sdnb.walk import assemble_walk, prepare_walk, render_frames, render_walk, walk_batches

# 3 prompts x 3 frames and the closing keyframe = 7 frames in 4 batches of 2.
SMALL = WalkParams(prompts=("a red fox", "a castle", "a cat"), seeds=(1, 2, 3), frames=(3,), steps=2, batch_size=2)
FLAGS = ["--prompts", *SMALL.prompts, "--seeds", "1", "2", "3", "--frames", "3", "--steps", "2", "--batch-size", "2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], outputs: Path, processes: int = 2) -> subprocess.CompletedProcess:
    """``accelerate launch`` (torchrun underneath) of ``args`` on the CPU, offline, without a config file."""
    env = {**os.environ, "SDNB_TINY": "1", "SDNB_OUTPUT_DIR": str(outputs), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=Path(__file__).parents[1])


def decoded(video: Path) -> list[bytes]:
    reader = imageio_ffmpeg.read_frames(str(video))
    next(reader)
    return list(reader)


def pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted((folder / "frames").iterdir())}


@pytest.fixture
def one_thread():
    """The launched processes run with one thread each; the reference render too, so sums add up alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_two_processes_render_each_frame_once_and_the_video_equals_one_process(
    pipe, _outputs: Path, one_thread: None
) -> None:
    out = launch(["-m", "sdnb", "walk", *FLAGS, "--name", "split"], _outputs)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.count("Done: 7/7 frames") == 1  # one report, from the main process
    folder = _outputs / "walks" / "split"
    # every frame exactly once: 7 PNGs, numbered 0..6 (a second write of a number would have failed the run)
    assert sorted(p.name for p in (folder / "frames").iterdir()) == [f"{j:05d}.png" for j in range(7)]
    assert "process 0: frames 0-3; process 1: frames 4-6" in out.stdout  # whole batches of 2 each
    config = json.loads((folder / "config.json").read_text())
    assert config["complete"] and config["frames_done"] == 7 and config["video"] == "split.mp4"
    info = probe_video(folder / "split.mp4")
    assert info.frames == 7 and (info.width, info.height) == (64, 64)

    one = render_walk(SMALL, name="one")
    assert one.complete
    ours, theirs = pixels(folder), pixels(one.folder)
    assert ours.keys() == theirs.keys()
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert decoded(folder / "split.mp4") == decoded(one.video)


def test_parts_cover_every_frame_once_and_assembling_names_the_missing_frames(pipe, _outputs: Path) -> None:
    folder = prepare_walk(SMALL, name="parts")
    assert walk_batches(folder) == [0, 1, 2, 3]
    first = render_frames(folder, [0, 2], pipe=pipe)
    assert [p.name for p in first.frames] == ["00000.png", "00001.png", "00004.png", "00005.png"]
    with pytest.raises(SdnbError, match=r"3 of 7 frame\(s\) are missing: 2-3, 6") as err:
        assemble_walk(folder)
    assert "run the same render again" in (err.value.hint or "")
    assert not list(folder.glob("*.mp4"))
    second = render_frames(folder, [1, 3, 0], pipe=pipe)  # batch 0 is on disk already: skipped
    assert second.resumed_at == 2 and second.done == 5
    result = assemble_walk(folder)
    assert result.complete and probe_video(result.video).frames == 7
    assert assemble_walk(folder).video == result.video  # assembled once
    with pytest.raises(SdnbError, match="outside"):
        render_frames(folder, [4], pipe=pipe)
    (folder / "config.json").unlink()
    with pytest.raises(SdnbError, match="not a walk folder"):
        assemble_walk(folder)


def test_txt2img_batches_keep_the_seeds_of_the_whole_run(pipe) -> None:
    p = Txt2ImgParams(prompt="a red fox", seed=10, steps=2, batch_size=2, batch_count=3, width=64, height=64)
    whole = txt2img(p, pipe=pipe, save=False)
    odd = txt2img(p, pipe=pipe, save=False, batches=[1])
    assert odd.seeds == [12, 13] == whole.seeds[2:4]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(odd.images, whole.images[2:4], strict=True))
    with pytest.raises(SdnbError, match="Batch numbers"):
        txt2img(p, pipe=pipe, save=False, batches=[3])


def test_two_processes_share_the_batches_of_a_txt2img_job(pipe, _outputs: Path, one_thread: None) -> None:
    p = Txt2ImgParams(prompt="a red fox", seed=10, steps=2, batch_size=2, batch_count=3, width=64, height=64)
    flags = ["--prompt", p.prompt, "--seed", "10", "--steps", "2", "--batch-size", "2", "--batch-count", "3",
             "--width", "64", "--height", "64"]
    out = launch(["-m", "sdnb", "txt2img", *flags], _outputs)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    saved = {int(path.stem.split("-")[1]): path for path in (_outputs / "txt2img").glob("*.png")}
    assert sorted(saved) == list(range(10, 16))  # every image once, each with its one-process seed
    assert sorted(int(s) for s in re.findall(r"seed (\d+): ", out.stdout)) == list(range(10, 16))  # each reported
    whole = txt2img(p, pipe=pipe, save=False)
    for seed, image in zip(whole.seeds, whole.images, strict=True):
        assert np.array_equal(np.asarray(Image.open(saved[seed]).convert("RGB")), np.asarray(image))
