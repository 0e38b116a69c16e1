"""Fonts for every picture sdnb draws, so Chinese, Japanese and Korean text shows as written.

Pillow's default font and matplotlib's DejaVu Sans have no CJK glyphs (they draw empty boxes), and Colab has no
CJK font installed. sdnb ships one, :data:`CJK_FONT` (a subset of Noto Sans CJK SC, SIL OFL 1.1; see
``sdnb/data/FONTS.md``). Latin text keeps the fonts it always had; text with characters they lack is drawn with
the shipped font, and characters it lacks with a CJK font installed on the machine, when there is one. Nothing
else in sdnb loads a font.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path

from PIL import ImageFont

__all__ = ["CJK_FAMILY", "CJK_FONT", "PilFont", "covers", "pil_font", "system_cjk_fonts", "use_in_matplotlib"]

#: The shipped font file, and its family name as matplotlib knows it.
CJK_FONT = Path(__file__).resolve().parent / "data" / "sdnb-cjk-sans.otf"
CJK_FAMILY = "sdnb CJK Sans"

PilFont = ImageFont.FreeTypeFont | ImageFont.ImageFont

_PILLOW = "<Pillow's default font>"  # stands for Pillow's built-in font where a font file path is expected
_MIN_CJK_BYTES = 1_000_000  # a font with thousands of CJK glyphs is megabytes: smaller files are not opened
_MIN_CJK_CHARS = 1000  # ... and one that has fewer CJK characters than this is not a CJK font
_CJK_BLOCKS = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF))


@cache
def _font_info(source: str) -> tuple[frozenset[int], int]:
    """The characters font file ``source`` (its first face) or Pillow's default font has glyphs for, and its
    weight (400 regular, 700 bold); no characters when the file cannot be read."""
    from fontTools.ttLib import TTFont  # a dependency of matplotlib

    try:
        if source == _PILLOW:
            default = ImageFont.load_default(size=10)
            if not isinstance(default, ImageFont.FreeTypeFont):  # Pillow without FreeType: Latin-1 bitmaps
                return frozenset(range(0x20, 0x100)), 400
            file: BytesIO | str = BytesIO(default.font_bytes)
        else:
            file = source
        with TTFont(file, fontNumber=0, lazy=True) as font:
            weight = font["OS/2"].usWeightClass if "OS/2" in font else 400
            return frozenset(font.getBestCmap() or ()), weight
    except Exception:  # a broken or unreadable font file has no characters: never fatal
        return frozenset(), 400


def _codepoints(source: str) -> frozenset[int]:
    return _font_info(source)[0]


def covers(font_file: str | Path, text: str) -> bool:
    """Whether ``font_file`` has a glyph for every visible character of ``text``."""
    return not _needed(text) - _codepoints(str(font_file))


def _needed(text: str) -> set[int]:
    return {ord(c) for c in text if c.isprintable() and not c.isspace()}


@lru_cache(maxsize=1)
def system_cjk_fonts() -> tuple[Path, ...]:
    """CJK font files installed on this machine (the first face of each is used), regular sans-serif first."""
    from matplotlib import font_manager

    found: list[tuple[bool, bool, int, str]] = []
    for name in font_manager.findSystemFonts():
        try:
            if os.path.getsize(name) < _MIN_CJK_BYTES:
                continue
        except OSError:
            continue
        chars, weight = _font_info(name)
        if sum(low <= c <= high for c in chars for low, high in _CJK_BLOCKS) >= _MIN_CJK_CHARS:
            # regular weight first, then sans-serif, then the most characters
            found.append((abs(weight - 400) > 100, "serif" in Path(name).name.lower(), -len(chars), name))
    return tuple(Path(name) for *_, name in sorted(found))


def _candidates() -> Iterator[str]:
    yield _PILLOW
    yield str(CJK_FONT)
    yield from map(str, system_cjk_fonts())  # scanned only when the first two lack a character


@lru_cache(maxsize=64)
def _load(source: str, size: float) -> PilFont:
    if source != _PILLOW:
        try:
            return ImageFont.truetype(source, size)
        except (OSError, ImportError):  # unreadable file, or Pillow without FreeType
            pass
    return ImageFont.load_default(size=size)


def pil_font(size: float, text: str = "") -> PilFont:
    """A Pillow font of ``size`` pixels for drawing ``text``.

    Pillow's default font when it has every character (Latin labels look as they always did), else the shipped
    CJK font, else a CJK font installed on the machine; when none has them all, the one that has the most (the
    rest are drawn as boxes). Pass all the text one picture shows, so the picture uses one font throughout.
    """
    needed = _needed(text)
    best, best_missing = _PILLOW, len(needed)
    for source in _candidates():
        missing = len(needed - _codepoints(source))
        if missing < best_missing:
            best, best_missing = source, missing
        if not missing:
            break
    return _load(best, size)


@cache
def _matplotlib_family(path: str) -> str:
    """Register font file ``path`` with matplotlib (once) and return its family name."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    if all(entry.fname != path for entry in manager.ttflist):
        manager.addfont(path)
        if path == str(CJK_FONT):  # its one weight serves them all, so bold text logs no "failed to find" line
            entry = next(e for e in manager.ttflist if e.fname == path)
            manager.ttflist += [dataclasses.replace(entry, weight=w) for w in range(100, 1000, 100) if w != 400]
    return font_manager.get_font(path).family_name


def use_in_matplotlib() -> list[str]:
    """Let matplotlib draw CJK text: the shipped font, then the installed CJK fonts, become fallbacks after
    ``rcParams["font.family"]`` (Latin text keeps matplotlib's default font). Cheap to call before each figure;
    returns the family list now in use."""
    import matplotlib as mpl

    family = list(mpl.rcParams["font.family"])
    for path in (CJK_FONT, *system_cjk_fonts()):
        try:
            name = _matplotlib_family(str(path))
        except (OSError, RuntimeError, ValueError, KeyError):  # a font matplotlib cannot read is left out
            continue
        if name not in family:
            family.append(name)
    if family != list(mpl.rcParams["font.family"]):
        mpl.rcParams["font.family"] = family
    return family
