"""Video and audio I/O for walks: streaming MP4 writing, reading back, audio onsets.

MP4s are written with imageio-ffmpeg (H.264, yuv420p), one frame at a time, so a video is never held in
memory; torchvision's ``write_video`` no longer exists. Audio is read with librosa (the ``audio`` extra) to
pace a walk by its onsets, and muxed into the MP4 as AAC.
"""

from __future__ import annotations

import base64
import os
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import SdnbError

__all__ = [
    "Mp4Writer",
    "Onsets",
    "load_onsets",
    "VideoInfo",
    "probe_video",
    "check_video",
    "video_html",
    "human_size",
    "click_track",
]

#: Share of the mean onset strength added everywhere, so frames still move a little between beats.
ONSET_FLOOR = 0.05
#: Videos larger than this are shown by path only, not embedded in the notebook.
EMBED_LIMIT_BYTES = 40 * 1024**2


class Mp4Writer:
    """Stream PIL frames into an H.264 MP4 (yuv420p), optionally with an audio track muxed in as AAC.

    Always close it (or use ``with``): a closed file is a playable video, also after Stop or Ctrl-C. The MP4 is
    fragmented (a keyframe and a self-contained fragment every two seconds), so even a file whose writer and
    ffmpeg were both killed (a lost Colab runtime) plays up to its last fragment. ``quality`` is
    imageio-ffmpeg's 1 (smallest) .. 10 (best). With audio, the file ends with the video (``-shortest``).
    The file is only created with the first frame.
    """

    def __init__(
        self, path: str | os.PathLike, size: tuple[int, int], fps: float, quality: int = 8, audio: str | None = None
    ) -> None:
        self.path, self.size, self.fps, self.quality, self.audio = Path(path), tuple(size), fps, quality, audio
        self.frames = 0
        self._gen: Any = None

    def _start(self) -> None:
        import imageio_ffmpeg

        self._gen = imageio_ffmpeg.write_frames(
            str(self.path),
            self.size,
            fps=self.fps,
            quality=self.quality,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=8,  # sizes are multiples of 8: never rescaled
            ffmpeg_log_level="error",
            audio_path=self.audio or None,
            audio_codec="aac" if self.audio else None,
            output_params=["-g", str(max(1, round(2 * self.fps))),
                           "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
                           *(["-shortest"] if self.audio else [])],
        )
        self._gen.send(None)

    def append(self, image: Image.Image) -> None:
        """Add one frame (it must have the video's size). ffmpeg starts with the first frame."""
        if image.size != self.size:
            raise SdnbError(f"Frame {self.frames} is {image.size}, but the video is {self.size}.")
        if self._gen is None:
            self._start()
        self._gen.send(np.ascontiguousarray(np.asarray(image.convert("RGB"))).tobytes())
        self.frames += 1

    def close(self) -> None:
        """Finish the file (ffmpeg writes the index): it is playable afterwards. No frame, no file."""
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Onsets:
    """An audio file's onset strength over time (librosa): how much "is happening" at each moment."""

    times: np.ndarray
    strength: np.ndarray
    duration: float

    def pace(self, start: float, end: float, n: int) -> np.ndarray:
        """Fractions 0 <= u < 1 for ``n`` frames evenly spaced in time from ``start`` to ``end`` (seconds).

        ``u`` follows the normalised cumulative onset strength over that span, so it moves fast across a
        beat and slowly between beats; with no onset at all it is uniform.
        """
        strength = self.strength + ONSET_FLOOR * float(self.strength.mean())
        cumulative = np.cumsum(strength)
        at = np.interp(np.linspace(start, end, n + 1), self.times, cumulative)
        span = at[-1] - at[0]
        if span <= 1e-12:
            return np.arange(n) / n
        return (at[:-1] - at[0]) / span


def load_onsets(path: str | os.PathLike, seconds: float | None = None) -> Onsets:
    """Read an audio file and compute its onset strength, or raise a clear error (before any rendering).

    With ``seconds``, only that much of the sound (plus a second) is decoded: a 3-frame video of an hour-long
    song reads a few seconds, not the hour. ``duration`` is always the whole file's length.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise SdnbError(f"The audio file '{file}' does not exist.", hint="Check the path; on Colab upload it first.")
    try:
        import librosa
    except ImportError as exc:
        raise SdnbError(
            "Audio pacing needs librosa, which is not installed.", hint="pip install 'sdnb[audio]' (librosa, soundfile)."
        ) from exc
    try:
        with warnings.catch_warnings():  # librosa warns before falling back to audioread; failures raise below
            warnings.simplefilter("ignore")
            total = float(librosa.get_duration(path=str(file)))
            span = None if seconds is None else min(total, seconds + 1.0)
            y, sr = librosa.load(str(file), sr=22050, mono=True, duration=span)
    except Exception as exc:  # noqa: BLE001 - soundfile/audioread raise many types; all mean "cannot read"
        raise SdnbError(
            f"Cannot read the audio file '{file}': {type(exc).__name__}: {exc}",
            hint="Use a WAV, FLAC, OGG or MP3 file; convert other formats first.",
        ) from exc
    if y.size == 0:
        raise SdnbError(f"The audio file '{file}' contains no sound (0 samples).", hint="Use another file.")
    hop = 512
    strength = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    times = librosa.times_like(strength, sr=sr, hop_length=hop)
    return Onsets(times=times, strength=np.asarray(strength, dtype=np.float64), duration=total)


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read back with ffmpeg: frame count, size, fps, length, audio."""

    frames: int
    width: int
    height: int
    fps: float
    seconds: float
    audio: bool


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Decode ``path`` with imageio-ffmpeg and report what is really in it."""
    import imageio_ffmpeg

    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        raise SdnbError(f"The video '{file}' is missing or empty.")
    reader = imageio_ffmpeg.read_frames(str(file))
    try:
        meta = next(reader)
    finally:
        reader.close()
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(file))
    width, height = meta["size"]
    return VideoInfo(frames, width, height, float(meta["fps"]), float(seconds), "audio_codec" in meta)


def check_video(path: str | os.PathLike, frames: int, size: tuple[int, int]) -> str:
    """Confirm that the MP4 at ``path`` plays back with ``frames`` frames of ``size``; raise if not."""
    info = probe_video(path)
    if info.frames != frames:
        raise SdnbError(f"{Path(path).name} has {info.frames} frames, expected {frames}.")
    if (info.width, info.height) != tuple(size):
        raise SdnbError(f"{Path(path).name} is {info.width}x{info.height}, expected {size[0]}x{size[1]}.")
    sound = ", with audio" if info.audio else ""
    return f"✓ {path}: {info.frames} frames at {info.width}x{info.height}, {info.seconds:.1f} s{sound}"


def human_size(n: int) -> str:
    """Bytes as a short human-readable size (``1.4 MB``)."""
    if n < 1024:
        return f"{n} bytes"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def video_html(path: str | os.PathLike, caption: str = "") -> str:
    """HTML that plays the MP4 inline (embedded as base64 when small enough), with its path and size."""
    import html

    file = Path(path)
    size = file.stat().st_size
    text = f"<div><code>{html.escape(str(file))}</code> · {human_size(size)}{html.escape(caption)}</div>"
    if size > EMBED_LIMIT_BYTES:
        return text + "<div>(too large to embed here: open the file to watch it)</div>"
    data = base64.b64encode(file.read_bytes()).decode("ascii")
    return f"<video controls loop style='width:min(512px,100%)'><source src='data:video/mp4;base64,{data}' type='video/mp4'></video>{text}"


def click_track(
    path: str | os.PathLike | None = None, seconds: float = 4.0, bpm: float = 120.0, sr: int = 22050
) -> Path:
    """Write a metronome WAV (a short click on every beat), a test signal for audio-paced walks.

    Without ``path`` it goes to ``output_dir()/audio/metronome-<bpm>bpm-<seconds>s.wav`` (reused when it
    exists: the content is always the same). An existing file at a given ``path`` is never overwritten.
    """
    from .settings import output_dir

    if path is None:
        out = output_dir() / "audio" / f"metronome-{bpm:g}bpm-{seconds:.2f}s.wav"
        if out.is_file():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
    else:
        out = Path(path)
    n = int(seconds * sr)
    signal = np.zeros(n, dtype=np.float32)
    width = int(0.015 * sr)
    click = np.sin(2 * np.pi * 1500 * np.arange(width) / sr) * np.hanning(width)
    for start in (np.arange(0, seconds, 60.0 / bpm) * sr).astype(int):
        part = click[: n - start]
        signal[start : start + part.size] += part
    try:
        file = open(out, "xb")  # noqa: SIM115 - closed by the wave writer below
    except FileExistsError:
        raise SdnbError(f"'{out}' already exists; sdnb never overwrites a file.", hint="Pass another path.") from None
    with file, wave.open(file, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sr)
        wav.writeframes((np.clip(signal, -1, 1) * 32000).astype("<i2").tobytes())
    return out
