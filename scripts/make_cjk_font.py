"""Make sdnb's CJK font, sdnb/data/sdnb-cjk-sans.otf, a subset of Noto Sans CJK SC Regular (SIL OFL 1.1).

Pillow's default font and matplotlib's DejaVu Sans have no Chinese, Japanese or Korean glyphs, and Colab has no
CJK font installed, so sdnb ships this one (see sdnb/data/FONTS.md). It keeps ASCII, Latin-1, common punctuation
and symbols, CJK punctuation, full- and half-width forms, kana, every character of GB2312 (simplified Chinese,
6763 hanzi), Big5's common level-1 hanzi (traditional Chinese, 5401), JIS X 0208's kanji (6355) and KS X 1001's
Hangul syllables (2350): about 13,800 characters in about 2.8 MB. Vertical metrics and OpenType features other
than kerning are dropped (sdnb draws horizontal text only); the family is renamed "sdnb CJK Sans", as the OFL
asks of modified versions.

Usage (Debian/Ubuntu: apt-get install fonts-noto-cjk, which ships Noto Sans CJK 2.004):
    python scripts/make_cjk_font.py [--source /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc] [--out PATH]
The source may also be NotoSansCJKsc-Regular.otf from https://github.com/notofonts/noto-cjk (Sans/OTF).
The same source gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
OUT = ROOT / "sdnb" / "data" / "sdnb-cjk-sans.otf"
SOURCE_FAMILY = "Noto Sans CJK SC"
FAMILY = "sdnb CJK Sans"
POSTSCRIPT = "sdnbCJKSans-Regular"

_RANGES = [
    (0x20, 0x7E),  # ASCII
    (0xA0, 0xFF),  # Latin-1
    (0x2010, 0x205E),  # general punctuation: dashes, quotes, ellipsis, per mille, primes
    (0x2190, 0x2193),  # arrows
    (0x2212, 0x2212), (0x221E, 0x221E), (0x2248, 0x2248), (0x2264, 0x2265),  # minus, infinity, approx, <= >=
    (0x3000, 0x30FF),  # CJK symbols and punctuation, hiragana, katakana
    (0x3131, 0x318E),  # Hangul compatibility jamo
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0xFF01, 0xFF5E),  # full-width forms
    (0xFF61, 0xFF9F),  # half-width katakana and CJK punctuation
]


def _two_byte(codec: str, leads: range, trails: list[int]) -> set[int]:
    """Every character a two-byte legacy encoding has in ``leads`` x ``trails``."""
    chars = set()
    for lead in leads:
        for trail in trails:
            try:
                text = bytes([lead, trail]).decode(codec)
            except UnicodeDecodeError:
                continue
            if len(text) == 1:
                chars.add(ord(text))
    return chars


def charset() -> set[int]:
    """The code points kept (see the module docstring)."""
    euc = list(range(0xA1, 0xFF))
    chars = {c for low, high in _RANGES for c in range(low, high + 1)}
    chars |= _two_byte("gb2312", range(0xA1, 0xF8), euc)  # symbols, level 1 and level 2 hanzi
    big5 = _two_byte("big5", range(0xA4, 0xC7), list(range(0x40, 0x7F)) + euc)  # level 1: the common hanzi
    chars |= {c for c in big5 if 0x4E00 <= c <= 0x9FFF}
    chars |= _two_byte("euc_jp", range(0xB0, 0xF5), euc)  # JIS X 0208 kanji, both levels
    chars |= {c for c in _two_byte("euc_kr", range(0xB0, 0xC9), euc) if 0xAC00 <= c <= 0xD7A3}  # Hangul
    return chars


def _open_source(path: Path) -> TTFont:
    if path.suffix.lower() in (".ttc", ".otc"):
        for font in TTCollection(str(path)).fonts:
            if font["name"].getDebugName(1) == SOURCE_FAMILY:
                return font
        raise SystemExit(f"{path} has no {SOURCE_FAMILY} face.")
    font = TTFont(str(path))
    if font["name"].getDebugName(1) != SOURCE_FAMILY:
        raise SystemExit(f"{path} is {font['name'].getDebugName(1)!r}, not {SOURCE_FAMILY}.")
    return font


def _rename(font: TTFont) -> None:
    """Give the subset its own names (nameIDs 1-4, 6 and the CFF names); keep copyright, licence and credits."""
    version = font["name"].getDebugName(5).split(";")[0].removeprefix("Version ")
    table = font["name"]
    table.names = [r for r in table.names if r.nameID not in (1, 2, 3, 4, 6, 16, 17)]
    for name_id, text in ((1, FAMILY), (2, "Regular"), (3, f"{version};sdnb;{POSTSCRIPT}"), (4, FAMILY),
                          (6, POSTSCRIPT)):
        table.setName(text, name_id, 3, 1, 0x409)
    cff = font["CFF "].cff
    cff.fontNames = [POSTSCRIPT]
    top = cff.topDictIndex[0]
    top.FullName, top.FamilyName = FAMILY, FAMILY


def make(source: Path, out: Path) -> TTFont:
    """Subset ``source`` to :func:`charset`, rename it and write it to ``out``."""
    font = _open_source(source)
    font.recalcTimestamp = False  # the same source gives the same bytes
    options = subset.Options()
    options.layout_features = ["kern"]  # no locl/vert: they pull in thousands of regional and vertical forms
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True  # a missing character shows as a box, not as nothing
    options.hinting = False
    options.drop_tables += ["VORG", "vhea", "vmtx"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=charset())
    subsetter.subset(font)
    _rename(font)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_suffix(".part")
    font.save(str(part))
    part.replace(out)
    return font


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=SOURCE, help="Noto Sans CJK Regular .ttc, or the SC .otf")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    font = make(args.source, args.out)
    data = args.out.read_bytes()
    print(f"{args.out}: {len(font.getBestCmap())} characters, {len(font.getGlyphOrder())} glyphs, "
          f"{len(data) / 1e6:.2f} MB, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
