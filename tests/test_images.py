"""Tests for sdnb.images: infotext format, loading errors, collision-free saving, grids."""

from __future__ import annotations

import os
import random
import zipfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from sdnb.errors import SdnbError
from sdnb.images import (
    Infotext,
    format_infotext,
    image_grid,
    load_image,
    parse_infotext,
    read_infotext,
    save_image,
)

SETTINGS = {
    "Steps": "20",
    "Sampler": "DPM++ 2M",
    "Schedule type": "Karras",
    "CFG scale": "7",
    "Seed": "42",
    "Size": "512x512",
    "Model": "sd15",
}

# Infotexts as the WebUI (v1.10.1) writes them, with typical extensions' keys.
WEBUI_TEXTS = [
    (
        "masterpiece, best quality, 1girl, solo, long hair, looking at viewer, smile, "
        "(detailed eyes:1.2), <lora:add_detail:0.6>\n"
        "Negative prompt: (worst quality, low quality:1.4), easynegative, bad-hands-5\n"
        "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
        "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, "
        "Clip skip: 2, Hires upscale: 2, Hires steps: 10, Hires upscaler: R-ESRGAN 4x+ Anime6B, "
        'Lora hashes: "add_detail: 7c6bad76eb54", '
        'TI hashes: "easynegative: c74b4e810b03, bad-hands-5: aa7651be154c", Version: v1.10.1'
    ),
    (
        "cinematic photo of an old lighthouse on a cliff at dusk, dramatic clouds\n"
        "35mm photograph, film, bokeh, professional, 4k, highly detailed\n"
        "Steps: 30, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5, Seed: 3407, "
        "Size: 1024x1024, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.10.1"
    ),
    (
        "a watercolor painting of a fox in the snow, BREAK\n"
        "soft light, pastel colors\n"
        "Negative prompt: photo, realistic,\n"
        "lowres, blurry\n"
        "Steps: 20, Sampler: DPM++ SDE, Schedule type: Karras, CFG scale: 6.5, Seed: 42, Size: 768x512, "
        "Model hash: e6bb9ea85b, Model: dreamshaper_8, Denoising strength: 0.6, Mask blur: 4, "
        'ADetailer model: face_yolov8n.pt, ADetailer prompt: "a smiling face, detailed eyes", '
        "ADetailer confidence: 0.3, ADetailer version: 24.9.0, Version: v1.10.1"
    ),
]


# --- infotext ------------------------------------------------------------------------------


def test_parse_webui_full_example() -> None:
    info = parse_infotext(WEBUI_TEXTS[0])
    assert info.prompt.startswith("masterpiece, best quality")
    assert info.prompt.endswith("<lora:add_detail:0.6>")
    assert info.negative_prompt == "(worst quality, low quality:1.4), easynegative, bad-hands-5"
    assert list(info.settings)[:4] == ["Steps", "Sampler", "Schedule type", "CFG scale"]
    assert list(info.settings)[-1] == "Version"
    assert info.settings["Schedule type"] == "Karras"
    assert info.settings["Model hash"] == "6ce0161689"
    assert info.settings["Clip skip"] == "2"
    assert info.settings["Hires upscaler"] == "R-ESRGAN 4x+ Anime6B"
    assert info.settings["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert info.settings["TI hashes"] == "easynegative: c74b4e810b03, bad-hands-5: aa7651be154c"
    assert info.settings["Version"] == "v1.10.1"
    assert len(info.settings) == 16


def test_parse_webui_no_negative_multiline_prompt() -> None:
    info = parse_infotext(WEBUI_TEXTS[1])
    assert info.prompt == (
        "cinematic photo of an old lighthouse on a cliff at dusk, dramatic clouds\n"
        "35mm photograph, film, bokeh, professional, 4k, highly detailed"
    )
    assert info.negative_prompt == ""
    assert info.settings["Size"] == "1024x1024"
    assert info.settings["Schedule type"] == "Automatic"


def test_parse_webui_multiline_negative_and_quoted_extension_value() -> None:
    info = parse_infotext(WEBUI_TEXTS[2])
    assert info.prompt == "a watercolor painting of a fox in the snow, BREAK\nsoft light, pastel colors"
    assert info.negative_prompt == "photo, realistic,\nlowres, blurry"
    assert info.settings["ADetailer prompt"] == "a smiling face, detailed eyes"
    assert info.settings["CFG scale"] == "6.5"


@pytest.mark.parametrize("text", WEBUI_TEXTS)
def test_webui_texts_are_rewritten_verbatim(text: str) -> None:
    assert parse_infotext(text).to_text() == text


def test_last_line_is_settings_only_with_three_items() -> None:
    # The WebUI's rule: fewer than 3 `Key: value` items on the last line means it is prompt text.
    info = parse_infotext("a cat\nstyle: anime, mood: calm")
    assert info == Infotext("a cat\nstyle: anime, mood: calm", "", {})
    info = parse_infotext("a cat\nSteps: 20, Seed: 1, CFG scale: 7")
    assert info == Infotext("a cat", "", {"Steps": "20", "Seed": "1", "CFG scale": "7"})


@pytest.mark.parametrize(
    ("prompt", "negative"),
    [
        ("a cat", ""),
        ("a cat, sitting on a mat", "blurry, lowres"),
        ("line one\nline two, with commas\nline three: with colon", "bad\nworse\nworst"),
        (
            "a photo\nSteps: 20, Sampler: Euler, CFG scale: 7 written in the prompt\nthe end",
            "Seed: 1, a: b, c: d",
        ),
        ("日本語のプロンプト, 猫 🐱🎨, café crème", "ugly 😡, Übel"),
        ('(masterpiece:1.2), [blurry], {curly}, <lora:x:0.5>, "quoted", back\\slash', ""),
        ("", "only a negative prompt"),
    ],
)
def test_format_parse_round_trip(prompt: str, negative: str) -> None:
    settings = {**SETTINGS, "Lora hashes": "a: 1, b: 2", "Clip skip": "2", "Note": 'say "hi"'}
    text = format_infotext(prompt, negative, settings)
    assert parse_infotext(text) == Infotext(prompt, negative, settings)
    assert ("Negative prompt:" in text) == bool(negative)


def test_format_quotes_like_the_webui() -> None:
    text = format_infotext("p", "", {"Steps": 20, "Lora hashes": "a: 1, b: 2", "Seed": 1, "Skip": None})
    assert text == 'p\nSteps: 20, Lora hashes: "a: 1, b: 2", Seed: 1'
    assert format_infotext("p", "", {**SETTINGS, "Note": 'a"b'}).endswith(r'Note: "a\"b"')
    assert format_infotext("p", "", {**SETTINGS, "Note": "é 🐱"}).endswith("Note: é 🐱")


def test_format_round_trips_random_text() -> None:
    rng = random.Random(0)
    alphabet = list("abc XYZ,:;\"'\\\n()[]<>{}|=-_.0123456789") + ["é", "漢", "🐱", "\u200b", "Steps: 5, "]
    for _ in range(300):
        prompt, negative = ("".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(2))
        settings = {**SETTINGS, "Random": "".join(rng.choices(alphabet, k=rng.randint(0, 20)))}
        text = format_infotext(prompt, negative, settings)
        info = parse_infotext(text)
        assert info.prompt == "\n".join(line.strip() for line in prompt.split("\n")).strip()
        assert info.negative_prompt == "\n".join(line.strip() for line in negative.split("\n")).strip()
        assert info.settings == settings


def test_format_strips_lines_like_the_webui_reader() -> None:
    text = format_infotext("  a cat  \n\n  on a mat \n", "  \n", SETTINGS)
    assert parse_infotext(text) == Infotext("a cat\n\non a mat", "", SETTINGS)


def test_format_refuses_what_cannot_round_trip() -> None:
    with pytest.raises(SdnbError, match="at least 3 settings"):
        format_infotext("a cat", "", {"Steps": 20, "Seed": 1})
    with pytest.raises(SdnbError, match="Negative prompt"):
        format_infotext("a cat\nNegative prompt: dog", "", SETTINGS)
    for key in ("x", "CFG:scale", "Steps ", "Model.name"):
        with pytest.raises(SdnbError, match="setting name"):
            format_infotext("a cat", "", {**SETTINGS, key: "1"})
    assert format_infotext("just a prompt", "", {}) == "just a prompt"


# --- saving and reading back ---------------------------------------------------------------


def _image(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 32)) -> Image.Image:
    return Image.new("RGB", size, color)


def test_save_then_read_infotext_round_trip(tmp_path: Path) -> None:
    text = format_infotext("a cat 🐱, 猫", "blurry, ugly", SETTINGS)
    path = save_image(_image(), tmp_path / "out", infotext=text, stem="a cat")
    assert path == tmp_path / "out" / "00000-a-cat.png"
    assert read_infotext(path) == text
    assert parse_infotext(read_infotext(path) or "") == Infotext("a cat 🐱, 猫", "blurry, ugly", SETTINGS)
    assert b"iTXt" in path.read_bytes()  # not Latin-1: stored as UTF-8
    latin = save_image(_image(), tmp_path / "out", infotext=Infotext("café", "", SETTINGS))
    assert read_infotext(latin) == format_infotext("café", "", SETTINGS)
    assert b"tEXt" in latin.read_bytes()  # what the WebUI writes for plain text


def test_read_infotext_none_when_absent(tmp_path: Path) -> None:
    assert read_infotext(save_image(_image(), tmp_path)) is None


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("prompt", ["a fox 🦊, snow", "一只狐狸在雪地里", "ab"])
@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_read_infotext_from_exif_user_comment(tmp_path: Path, fmt: str, prompt: str, encoding: str) -> None:
    # The WebUI stores JPEG/WebP infotext as EXIF UserComment, "UNICODE\0" + UTF-16 big-endian (piexif);
    # Windows tools write little-endian. A prompt starting with 一 (U+4E00: bytes 4E 00) once fooled the check.
    text = format_infotext(prompt, "", SETTINGS)
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = b"UNICODE\0" + text.encode(encoding)
    path = tmp_path / f"image.{fmt.lower()}"
    _image().save(path, format=fmt, exif=exif)
    assert read_infotext(path) == text
    plain = tmp_path / f"plain.{fmt.lower()}"
    _image().save(plain, format=fmt)
    assert read_infotext(plain) is None


def test_names_increment_and_never_overwrite(tmp_path: Path) -> None:
    (tmp_path / "00000-x.png").write_bytes(b"keep me 0")
    (tmp_path / "00007-y.png").write_bytes(b"keep me 7")
    (tmp_path / "notes.txt").write_text("not numbered")
    first = save_image(_image(), tmp_path, stem="a cat")
    second = save_image(_image(), tmp_path)
    assert first.name == "00008-a-cat.png"
    assert second.name == "00009.png"
    assert (tmp_path / "00000-x.png").read_bytes() == b"keep me 0"
    assert (tmp_path / "00007-y.png").read_bytes() == b"keep me 7"


def test_stem_becomes_a_short_safe_slug(tmp_path: Path) -> None:
    path = save_image(_image(), tmp_path, stem="../../etc/passwd: a cat, 🐱 on a mat" + "x" * 100)
    assert path.parent == tmp_path
    slug = path.name[len("00000-") : -len(".png")]
    assert slug.startswith("etc-passwd-a-cat-on-a-mat")
    assert len(slug) <= 40 and "/" not in slug and "\\" not in slug
    assert save_image(_image(), tmp_path, stem="///").name == "00001.png"


def test_concurrent_threads_get_distinct_files(tmp_path: Path) -> None:
    def save(i: int) -> Path:
        return save_image(_image((i % 256, 0, 0)), tmp_path, infotext=f"image {i}", stem="t")

    with ThreadPool(8) as pool:
        paths = pool.map(save, range(160))
    assert len(set(paths)) == 160
    assert sorted(int(p.name[:5]) for p in paths) == list(range(160))
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in paths)  # no temp files left
    texts = set()
    for path in paths:
        with Image.open(path) as image:
            image.verify()
        texts.add(read_infotext(path))
    assert len(texts) == 160


def _save_in_process(folder: str) -> list[str]:
    return [save_image(_image(), folder, stem="p").name for _ in range(10)]


def test_concurrent_processes_get_distinct_files(tmp_path: Path) -> None:
    with ProcessPoolExecutor(2) as pool:
        names = [name for batch in pool.map(_save_in_process, [str(tmp_path)] * 2) for name in batch]
    assert len(set(names)) == 20
    assert sorted(os.listdir(tmp_path)) == sorted(names)


def test_falls_back_when_hard_links_are_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "00003-old.png").write_bytes(b"old")
    with ThreadPool(4) as pool:
        paths = pool.map(lambda i: save_image(_image(), tmp_path, infotext="x y z"), range(20))
    assert sorted(int(p.name[:5]) for p in paths) == list(range(4, 24))
    assert (tmp_path / "00003-old.png").read_bytes() == b"old"
    assert len(os.listdir(tmp_path)) == 21
    assert all(read_infotext(p) == "x y z" for p in paths)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError, OSError])
def test_no_files_left_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG\r\n\x1a\n half an image")  # type: ignore[attr-defined]
        raise error("disk trouble")

    save_image(_image(), tmp_path)
    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(SdnbError if error is OSError else error):
        save_image(_image(), tmp_path, stem="broken")
    assert os.listdir(tmp_path) == ["00000.png"]


def test_unwritable_folder(tmp_path: Path) -> None:
    # Running as root makes chmod useless; a folder "under" a regular file can never be created.
    (tmp_path / "file.txt").write_text("x")
    folder = tmp_path / "file.txt" / "sub"
    with pytest.raises(SdnbError) as info:
        save_image(_image(), folder)
    assert str(folder) in str(info.value)
    assert "SDNB_OUTPUT_DIR" in str(info.value)


def test_save_refuses_non_images(tmp_path: Path) -> None:
    with pytest.raises(SdnbError, match="PIL image"):
        save_image(np.zeros((8, 8, 3), np.uint8), tmp_path)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_save_converts_modes_png_cannot_store(tmp_path: Path) -> None:
    path = save_image(Image.new("CMYK", (8, 8)), tmp_path)
    assert load_image(path).size == (8, 8)


# --- loading -------------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    noise.save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("a cat sitting on a mat\n")
    with zipfile.ZipFile(tmp_path / "model.ckpt.png", "w") as archive:  # torch checkpoints are zips
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    (tmp_path / "folder.png").mkdir()
    return {
        "missing": (tmp_path / "missing.png", "no such file"),
        "folder": (tmp_path / "folder.png", "folder"),
        "empty": (tmp_path / "empty.png", "empty"),
        "truncated": (tmp_path / "truncated.png", "damaged or incomplete"),
        "text": (tmp_path / "notes.png", "not an image"),
        "checkpoint": (tmp_path / "model.ckpt.png", "not an image"),
    }


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "truncated", "text", "checkpoint"])
def test_load_image_errors_name_the_file(tmp_path: Path, kind: str) -> None:
    path, words = _bad_files(tmp_path)[kind]
    before = _open_fds()
    with pytest.raises(SdnbError, match=words) as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert info.value.hint  # says what to do
    assert _open_fds() == before
    with pytest.raises(SdnbError):
        read_infotext(path)


def test_load_image_unsupported_mode(tmp_path: Path) -> None:
    save_image(_image(), tmp_path)
    with pytest.raises(SdnbError, match="Unsupported image mode"):
        load_image(tmp_path / "00000.png", mode="XYZ")
    Image.new("LAB", (8, 8)).save(tmp_path / "lab.tif")
    with pytest.raises(SdnbError, match="from mode LAB to mode L"):
        load_image(tmp_path / "lab.tif", mode="L")


def test_load_image_applies_exif_orientation_and_mode(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # rotated 90 degrees: the camera was held upright
    Image.new("RGB", (40, 20), (0, 128, 255)).save(tmp_path / "phone.jpg", exif=exif)
    before = _open_fds()
    image = load_image(tmp_path / "phone.jpg")
    assert image.size == (20, 40) and image.mode == "RGB"
    assert load_image(tmp_path / "phone.jpg", mode="L").mode == "L"
    assert _open_fds() == before
    image.load()  # still usable after the file was closed


# --- grids ---------------------------------------------------------------------------------


def _colored(n: int, size: int = 160) -> list[Image.Image]:
    return [Image.new("RGB", (size, size), (40 * i % 256, 100, 200)) for i in range(n)]


def test_grid_layout_and_label_pixels() -> None:
    images = _colored(4)
    grid = image_grid(images, cols=2, col_labels=["CFG 1", "CFG 12"], row_labels=["seed 1", "seed 2"])
    left, top = grid.width - 320, grid.height - 320
    assert left > 0 and top > 0  # labels add margins
    assert grid.mode == "RGB"
    for index, image in enumerate(images):
        x, y = left + (index % 2) * 160 + 5, top + (index // 2) * 160 + 5
        assert grid.getpixel((x, y)) == image.getpixel((0, 0))
    pixels = np.asarray(grid)
    assert pixels[:top, left:].min() < 100  # column labels drawn in black
    assert pixels[top:, :left].min() < 100  # row labels drawn in black
    assert pixels[:top, :left].min() == 255  # the corner stays white


def test_grid_title_and_wrapping_grow_the_margin() -> None:
    images = _colored(2)
    short = image_grid(images, col_labels=["a", "b"])
    wrapped = image_grid(images, col_labels=["a much longer label that must wrap", "b"])
    titled = image_grid(images, col_labels=["a", "b"], title="a cat sitting on a mat, CFG sweep")
    assert short.width == wrapped.width == titled.width == 320
    assert wrapped.height > short.height
    assert titled.height > short.height


def test_grid_single_image_and_default_columns() -> None:
    image = _colored(1)[0]
    assert np.array_equal(np.asarray(image_grid([image])), np.asarray(image))
    assert image_grid(_colored(5)).size == (5 * 160, 160)
    assert image_grid(_colored(8)).size == (8 * 160, 160)
    assert image_grid(_colored(9)).size == (3 * 160, 3 * 160)
    assert image_grid(_colored(6), col_labels=list("abc")).width == 3 * 160  # cols from labels


def test_grid_resizes_to_the_first_image() -> None:
    grid = image_grid([Image.new("RGB", (200, 200), "red"), Image.new("RGBA", (50, 70), (0, 0, 255, 255))])
    assert grid.size == (400, 200)
    assert grid.getpixel((300, 100)) == (0, 0, 255)


def test_grid_enlarges_tiny_images_so_labels_fit() -> None:
    grid = image_grid(_colored(2, size=64), col_labels=["CFG scale: 1", "CFG scale: 12"])
    assert grid.width == 2 * 192  # 64 px cells enlarged 3x (nearest) to reach MIN_CELL
    assert grid.getpixel((100, grid.height - 5)) == (0, 100, 200)


def test_grid_errors() -> None:
    with pytest.raises(SdnbError, match="no images"):
        image_grid([])
    with pytest.raises(SdnbError, match="3 column labels for 2 columns"):
        image_grid(_colored(4), cols=2, col_labels=["a", "b", "c"])
    with pytest.raises(SdnbError, match="1 row labels for 2 rows"):
        image_grid(_colored(4), cols=2, row_labels=["a"])
    with pytest.raises(SdnbError, match="PIL images"):
        image_grid([np.zeros((4, 4, 3))])  # type: ignore[list-item]
    with pytest.raises(SdnbError, match="at least one column"):
        image_grid(_colored(2), cols=0)


def test_move_no_replace_never_replaces_with_or_without_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdnb.images import move_no_replace

    for links in (True, False):
        if not links:
            monkeypatch.setattr(os, "link", lambda src, dst: (_ for _ in ()).throw(PermissionError(1, "no links")))
        folder = tmp_path / f"links-{links}"
        folder.mkdir()
        taken, src = folder / "video.mp4", folder / "video.partial.mp4"
        taken.write_bytes(b"keep me")
        src.write_bytes(b"new")
        with pytest.raises(FileExistsError):
            move_no_replace(src, taken)
        assert taken.read_bytes() == b"keep me" and src.read_bytes() == b"new"
        move_no_replace(src, folder / "video-2.mp4")
        assert not src.exists() and (folder / "video-2.mp4").read_bytes() == b"new"
        assert sorted(p.name for p in folder.iterdir()) == ["video-2.mp4", "video.mp4"]


def test_settings_line_reader_agrees_with_the_webuis_regex() -> None:
    """The linear scanner finds exactly what the WebUI's pattern finds, on many awkward random lines."""
    import random
    import re

    from sdnb.images import _settings_items

    webui = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
    rng = random.Random(0)
    alphabet = 'ab1_ -/:,"\\(一\t'
    for _ in range(20_000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert _settings_items(line) == webui.findall(line), repr(line)


@pytest.mark.parametrize("unit", ["a b c ", " " * 8, 'k: "x', "ab:"])
def test_a_hostile_one_megabyte_parameters_chunk_parses_in_linear_time(unit: str) -> None:
    """The WebUI's regex is quadratic: a 200 KB line of spaces between two letters took 9 minutes. Measured as
    a ratio in one run (the machine is shared): ten times the text must take about ten times as long, not 100."""
    import time

    def seconds(size: int) -> float:
        text = "a cat\na" + unit * (size // len(unit)) + "b"
        start = time.perf_counter()
        parse_infotext(text)
        return time.perf_counter() - start

    small, large = min(seconds(100_000) for _ in range(3)), seconds(1_000_000)
    assert large < max(small, 1e-3) * 40
