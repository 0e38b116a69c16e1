"""Chinese, Japanese and Korean text in everything sdnb draws: grid labels (Pillow) and lesson pictures
(matplotlib), on a machine with no CJK font installed (as Colab), with the font sdnb ships."""

from __future__ import annotations

import fnmatch
import warnings
from itertools import combinations
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageFont

from sdnb import fonts
from sdnb.fonts import CJK_FAMILY, CJK_FONT, pil_font, use_in_matplotlib
from sdnb.images import _wrap, image_grid

ROOT = Path(__file__).resolve().parents[1]
CAT = "一只在月光下的猫"
OTHERS = "ねこネコ고양이貓"  # Japanese kana, Korean Hangul, a traditional hanzi
_SCAN = fonts.system_cjk_fonts  # the real search, before the fixture below replaces it
DEJAVU = Path(mpl.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"  # stands in for an installed font


@pytest.fixture(autouse=True)
def _no_installed_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on Colab: whatever this machine has installed, only the shipped font has CJK glyphs."""
    monkeypatch.setattr(fonts, "system_cjk_fonts", lambda: ())


def _images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (160, 160), (30, 90 + 20 * i, 160)) for i in range(n)]


def _label_areas(labels: list[str]) -> list[np.ndarray]:
    """Each column label's area of a one-row grid, in grey levels."""
    grid = np.asarray(image_grid(_images(len(labels)), col_labels=labels).convert("L"))
    top = grid.shape[0] - 160
    return [grid[:top, 160 * i:160 * (i + 1)] for i in range(len(labels))]


def test_the_shipped_font_has_distinct_glyphs_not_boxes() -> None:
    font = ImageFont.truetype(str(CJK_FONT), 32)
    box = np.asarray(font.getmask("\ue000"))  # a private-use character: the font's .notdef box
    masks = {c: np.asarray(font.getmask(c)) for c in dict.fromkeys(CAT + OTHERS)}
    for char, mask in masks.items():
        assert mask.max() > 0 and not np.array_equal(mask, box), char
    for (a, mask_a), (b, mask_b) in combinations(masks.items(), 2):
        assert mask_a.shape != mask_b.shape or not np.array_equal(mask_a, mask_b), (a, b)
    assert fonts.covers(CJK_FONT, CAT + OTHERS + "，。「」：ＡＢＣ abc é×→")


def test_grid_draws_chinese_labels_as_glyphs() -> None:
    chars = list(dict.fromkeys(CAT))
    areas = _label_areas(chars)
    boxes = _label_areas(["\ue000"] * len(chars))  # what a font without the characters draws
    for char, area, box in zip(chars, areas, boxes, strict=True):
        assert (area < 128).sum() > 5, char  # ink (一 is one stroke)
        assert area.shape != box.shape or not np.array_equal(area, box), char
    for (a, area_a), (b, area_b) in combinations(zip(chars, areas, strict=True), 2):
        assert not np.array_equal(area_a, area_b), (a, b)  # Pillow's default font draws them all as one box
    assert pil_font(20, CAT).path == str(CJK_FONT)


def test_japanese_and_korean_labels_draw_too() -> None:
    areas = _label_areas(list(OTHERS))
    assert all((area < 128).sum() > 20 for area in areas)
    assert len({area.tobytes() for area in areas}) == len(areas)


def test_latin_labels_keep_pillows_default_font() -> None:
    assert pil_font(20, "seed 1, CFG 7 (x1.5)").getname() == ImageFont.load_default(size=20).getname()
    assert fonts.covers(pil_font(20, "café").path, "café")  # Pillow's own font has ASCII only, no é
    latin = image_grid(_images(2), col_labels=["CFG 1", "CFG 12"])
    drawn_before = image_grid(_images(2), col_labels=["CFG 1", "CFG 12"])  # same call: nothing cached changes it
    assert np.array_equal(np.asarray(latin), np.asarray(drawn_before))
    # one label with a CJK character switches the whole grid to the CJK font (one font per picture)
    mixed = np.asarray(image_grid(_images(2), col_labels=["CFG 1", "猫"]))
    assert not np.array_equal(np.asarray(latin)[:, :160], mixed[: latin.height, :160])


def test_long_chinese_label_wraps_within_its_cell() -> None:
    label = "一只在月光下的猫，安静地坐在屋顶上，看着远处的城市灯火。"
    grid = image_grid(_images(2), col_labels=[label, ""])
    one_line = image_grid(_images(2), col_labels=["猫", ""])
    pixels = np.asarray(grid.convert("L"))
    top = grid.height - 160
    assert top - (one_line.height - 160) >= 2 * 17  # two more lines of 17 px (14 px text)
    assert (pixels[:top, :160] < 128).sum() > 500  # the label is drawn ...
    assert pixels[:top, 160:].min() == 255  # ... and nothing spills into the next column's label
    rows = np.flatnonzero((pixels[:top, :160] < 128).any(axis=1))
    assert len(np.flatnonzero(np.diff(rows) > 1)) >= 2  # ink in three or more separate bands


@pytest.mark.parametrize("width", range(60, 330, 9))  # 3 characters and up
def test_wrapping_breaks_between_characters_and_keeps_punctuation_and_words(width: int) -> None:
    text = "一只在月光下的猫，安静地坐在屋顶上。它看着moonlight里的城市「灯火」，想起了家"
    font = pil_font(20, text)
    lines = _wrap(text, font, width)
    assert "".join(lines) == text  # no character lost or added (no spaces to break at)
    assert all(font.getlength(line) <= width for line in lines if len(line) > 1)
    assert not any(line[0] in "，。」" for line in lines[1:])  # closing punctuation stays with its character
    assert not any(line[-1] == "「" for line in lines[:-1])  # an opening bracket goes with the next one
    if font.getlength("moonlight") <= width:
        assert any("moonlight" in line for line in lines)  # a Latin word is not cut when it fits a line


def test_a_character_no_shipped_glyph_has_comes_from_an_installed_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "system_cjk_fonts", lambda: (DEJAVU,))
    assert pil_font(20, "Աբգ").path == str(DEJAVU)  # Armenian: in DejaVu Sans, not in the subset
    assert pil_font(20, CAT).path == str(CJK_FONT)  # the shipped font still comes first


def test_installed_fonts_are_not_searched_when_the_shipped_font_has_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def scan() -> tuple[Path, ...]:
        raise AssertionError("the installed fonts were searched")

    monkeypatch.setattr(fonts, "system_cjk_fonts", scan)
    pil_font(20, "seed 1")
    pil_font(24, CAT + OTHERS)


def test_text_no_font_has_is_drawn_as_far_as_it_goes() -> None:
    grid = image_grid(_images(1), col_labels=["猫 \U0001f600 \u0531"], title="\U0001f600")  # emoji: in no font here
    top = grid.height - 160
    assert (np.asarray(grid.convert("L"))[:top] < 128).sum() > 30
    assert pil_font(20, "猫 \U0001f600").path == str(CJK_FONT)  # the font with the most of the characters


def test_system_scan_keeps_big_cjk_fonts_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from matplotlib import font_manager

    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"\0" * 2_000_000)
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda: [str(DEJAVU), str(broken), str(CJK_FONT)])
    assert _SCAN.__wrapped__() == (CJK_FONT,)  # DejaVu is small, the broken file has no glyphs


def _draw(text: str, weight: str = "normal") -> np.ndarray:
    fig = Figure(figsize=(0.8, 0.8), dpi=50)
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=28, weight=weight)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., 0].copy()


def test_matplotlib_falls_back_to_the_shipped_font_and_keeps_latin(caplog: pytest.LogCaptureFixture) -> None:
    from matplotlib.font_manager import FontProperties, findfont

    with mpl.rc_context(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        family = use_in_matplotlib()
        assert use_in_matplotlib() == family == list(mpl.rcParams["font.family"])  # no duplicates when called again
        assert family[0] == "sans-serif" and CJK_FAMILY in family
        assert Path(findfont(FontProperties())).name == "DejaVuSans.ttf"  # Latin text looks as before
        drawn = {c: _draw(c) for c in dict.fromkeys(CAT + OTHERS)}
        bold = _draw("猫", weight="bold")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert "Failed to find font weight" not in caplog.text  # bold CJK text uses the one weight, quietly
    assert np.array_equal(bold, drawn["猫"])
    for char, pixels in drawn.items():
        assert (pixels < 128).sum() > 5, char
    for (a, pixels_a), (b, pixels_b) in combinations(drawn.items(), 2):
        assert not np.array_equal(pixels_a, pixels_b), (a, b)  # DejaVu Sans alone draws one box for them all


def test_lesson_picture_with_a_chinese_title() -> None:
    from sdnb.explain import depth_figure

    with mpl.rc_context({"font.family": ["sans-serif"]}), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = depth_figure(Image.new("RGB", (64, 48), "gray"), np.zeros((48, 64)), title=CAT + "：深度图")
        FigureCanvasAgg(fig).draw()
        title = fig.axes[1].title
        box = title.get_window_extent()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., 0]
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert CJK_FAMILY in title.get_fontfamily()
    height = pixels.shape[0]
    region = pixels[int(height - box.y1):int(height - box.y0) + 1, int(box.x0):int(box.x1) + 1]
    assert (region < 128).sum() > 50 and box.width > 8 * title.get_fontsize()  # eight wide glyphs, drawn


def test_the_font_ships_with_the_package() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "sdnb.data" in config["tool"]["setuptools"]["packages"]
    patterns = config["tool"]["setuptools"]["package-data"]["sdnb.data"]
    for path in (CJK_FONT, CJK_FONT.parent / "OFL.txt", CJK_FONT.parent / "FONTS.md"):
        assert path.is_file() and any(fnmatch.fnmatch(path.name, p) for p in patterns), path.name
    assert CJK_FONT.stat().st_size < 3_000_000
