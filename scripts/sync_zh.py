"""Check (and with --fix, sync) the Chinese notebooks in notebooks/zh/ against the English ones.

    python scripts/sync_zh.py                  # check all: exit 1 with a numbered list of what to do
    python scripts/sync_zh.py --fix            # copy English code cells over; insert new English text to translate
    python scripts/sync_zh.py --stamp notebooks/zh/04_inpainting.ipynb   # after updating the listed translations

A zh notebook has the English notebook's cells, in the same order, with the same ids and types. Its code cells
are the English code cells exactly (outputs stripped); its markdown cells are translations, each stamped in its
metadata (``sdnb_zh.translates``) with a hash of the English text it translates, so an English edit shows up here
as "changed since it was translated". Cells are matched by id, so an added or removed English cell is named
with its index and first line. ``--fix`` never deletes or rewrites a translation: it copies code cells, inserts
code cells added in English, removes code cells removed in English, and inserts each new English markdown cell
(untranslated, for a translator to translate in place). ``--stamp`` records that the listed translations are
up to date again (only for cells that contain Chinese).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sdnb.errors import SdnbError  # noqa: E402 - after the path set-up above
from sdnb.settings import colab_url  # noqa: E402

EN_DIR = ROOT / "notebooks"
ZH_DIR = EN_DIR / "zh"
STAMP_KEY = "sdnb_zh"  # markdown cell metadata: {"translates": hash of the English source}
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"

Cell = dict[str, Any]
Notebook = dict[str, Any]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_FENCE = re.compile(r"```.*?```", re.S)
_CODE = re.compile(r"`[^`]*`")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
_TAG = re.compile(r"<[^>\n]+>")
_EMPHASIS = re.compile(r"\*\*[^*]+\*\*|\*[^*\n]+\*")
_URL = re.compile(r"https?://\S+")
#: English words that prose has and names, labels and identifiers rarely have.
_ENGLISH_WORDS = frozenset({
    "the", "and", "of", "to", "is", "are", "was", "were", "with", "that", "this", "from", "by", "as", "be", "an",
    "it", "its", "for", "on", "in", "or", "not", "than", "then", "so", "which", "what", "when", "where", "how",
    "you", "your", "can", "will", "into", "each", "every",
})
_ENGLISH_LIMIT = 3  # more English function words than this outside code, links and emphasis: untranslated prose


@dataclass
class Report:
    """What one zh notebook needs (``todo``, in cell order), which of it --fix does (``fixable``), what was done."""

    name: str
    todo: list[str] = field(default_factory=list)
    fixable: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    def can_fix(self, message: str) -> None:
        self.todo.append(message)
        self.fixable.append(message)


def source(cell: Cell) -> str:
    """A cell's source as one string (notebooks store it as a list of lines or one string)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def digest(text: str) -> str:
    """The hash a translation is stamped with: the English text it was made from."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def first_line(text: str, width: int = 70) -> str:
    """The first non-empty line of a cell, shortened, for messages."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "(empty)")
    return line if len(line) <= width else line[: width - 1] + "…"


def has_chinese(text: str) -> bool:
    """True if the text contains a CJK ideograph."""
    return bool(_CJK.search(text))


def prose(text: str) -> str:
    """The words a reader reads as sentences: without code, formulas, HTML, link targets and images (badges)."""
    for pattern in (_FENCE, _CODE, _MATH, _IMAGE, _URL):
        text = pattern.sub(" ", text)
    return _TAG.sub(" ", _LINK.sub(r"\1", text))


def needs_chinese(text: str) -> bool:
    """A markdown cell needs Chinese unless it is only a badge, link targets, a formula or code (no words)."""
    return bool(re.search(r"[A-Za-z]{2,}", prose(text)))


def english_left(text: str) -> list[str]:
    """English function words in a translation's running text (UI labels in **bold** or *italics* allowed)."""
    words = re.findall(r"[A-Za-z]+", _EMPHASIS.sub(" ", prose(text)))
    return [w for w in words if w.lower() in _ENGLISH_WORDS]


def load(path: Path) -> Notebook:
    """A notebook's JSON; an unreadable one is one clear error (a merge conflict is the usual cause)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SdnbError(f"{path} is not a readable notebook (JSON error at line {err.lineno}: {err.msg}).",
                        hint=f"Resolve any merge-conflict markers in it, or restore it with: git checkout -- {path}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SdnbError(f"{path} is not a notebook: it has no list of cells.", hint="Restore it from git.")
    return nb


def save(path: Path, nb: Notebook) -> None:
    """Write a notebook as Jupyter does (nbformat's layout), through a temporary file."""
    for cell in nb["cells"]:
        text = source(cell)
        cell["source"] = text.splitlines(keepends=True)
    tmp = path.with_suffix(".ipynb.tmp")
    tmp.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def clean_code(cell: Cell) -> Cell:
    """An English code cell as a zh notebook holds it: same id, source and metadata; no outputs."""
    out = copy.deepcopy(cell)
    out["outputs"], out["execution_count"], out["source"] = [], None, source(cell)
    return out


def untranslated(cell: Cell) -> Cell:
    """A new English markdown cell, copied for a translator to translate in place (not stamped)."""
    out = copy.deepcopy(cell)
    out.setdefault("metadata", {}).pop(STAMP_KEY, None)
    return out


def stamp_of(cell: Cell) -> str | None:
    return (cell.get("metadata") or {}).get(STAMP_KEY, {}).get("translates")


def align(en: list[Cell], zh: list[Cell]) -> list[tuple[int | None, int | None]]:
    """Pairs (English index, zh index) in notebook order, matched by cell id; None on the side that lacks it.

    Where both sides changed the same run of cells (ids differ) and the types agree one for one, the cells are
    paired by position, so a notebook whose ids were regenerated still lines up.
    """
    key_en = [c.get("id") or f"en-{i}" for i, c in enumerate(en)]
    key_zh = [c.get("id") or f"zh-{i}" for i, c in enumerate(zh)]
    pairs: list[tuple[int | None, int | None]] = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, key_en, key_zh, autojunk=False).get_opcodes():
        same_shape = a1 - a0 == b1 - b0 and all(
            en[a]["cell_type"] == zh[b]["cell_type"] for a, b in zip(range(a0, a1), range(b0, b1), strict=True)
        )
        if op == "equal" or (op == "replace" and same_shape):
            pairs += list(zip(range(a0, a1), range(b0, b1), strict=True))
        else:  # English-only cells first: an insertion lands before a removed cell at the same place
            pairs += [(a, None) for a in range(a0, a1)] + [(None, b) for b in range(b0, b1)]
    # a changed cell type is a removal plus an insertion
    out: list[tuple[int | None, int | None]] = []
    for a, b in pairs:
        if a is not None and b is not None and en[a]["cell_type"] != zh[b]["cell_type"]:
            out += [(a, None), (None, b)]
        else:
            out.append((a, b))
    return out


def _old_english(path: Path, cell_id: str, stamp: str) -> str | None:
    """The English text a translation was made from, found in the English notebook's git history (or None)."""
    try:
        rel = path.resolve().relative_to(ROOT).as_posix()
        commits = subprocess.run(["git", "-C", str(ROOT), "log", "--format=%H", "-n", "50", "--", rel],
                                 capture_output=True, text=True, timeout=20).stdout.split()
        for commit in commits:
            shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{rel}"],
                                   capture_output=True, text=True, timeout=20)
            if shown.returncode:
                continue
            for cell in json.loads(shown.stdout)["cells"]:
                if cell.get("id") == cell_id and digest(source(cell)) == stamp:
                    return source(cell)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None
    return None


def _changed_hint(en_path: Path, en_cell: Cell, stamp: str) -> str:
    old = _old_english(en_path, en_cell.get("id", ""), stamp)
    if old is None:
        return f" (see `git log -p {en_path}` for what changed)"
    diff = difflib.unified_diff(old.splitlines(), source(en_cell).splitlines(), "translated from", "English now",
                                lineterm="", n=0)
    return "; the English text changed like this:\n" + "\n".join("        " + line for line in diff)


def check_markdown(en_path: Path, i: int, j: int, en_cell: Cell, zh_cell: Cell) -> list[str]:
    """What is wrong with zh cell j as the translation of English cell i."""
    en_text, zh_text = source(en_cell), source(zh_cell)
    where = f"English cell {i} (markdown: {first_line(en_text)!r}) / zh cell {j}"
    stamp = stamp_of(zh_cell)
    if needs_chinese(zh_text) and (zh_text == en_text or not has_chinese(zh_text)):
        return [f"{where}: not translated yet (no Chinese text); translate it in place, then run --stamp"]
    problems = []
    if stamp is None:
        problems.append(f"{where}: has no translation stamp; check that it translates the English cell, "
                        "then run --stamp")
    elif stamp != digest(en_text):
        problems.append(f"{where}: the English cell changed since it was translated; update the translation, "
                        f"then run --stamp{_changed_hint(en_path, en_cell, stamp)}")
    leftover = english_left(zh_text)
    if len(leftover) > _ENGLISH_LIMIT:
        problems.append(f"{where}: English prose left in the translation ({', '.join(leftover[:8])}); translate "
                        "it (English UI labels belong in **bold** or *italics*, code in `backticks`)")
    return problems


def check_first_cell(name: str, en: Notebook, zh: Notebook) -> list[str]:
    """The zh badge opens the zh notebook and the two versions link to each other."""
    problems = []
    zh_first = source(zh["cells"][0]) if zh["cells"] else ""
    own = colab_url(f"notebooks/zh/{name}")
    if not zh_first.startswith("# "):
        problems.append("zh cell 0: must start with the title (# ...)")
    if f"]({own})" not in zh_first:
        problems.append(f"zh cell 0: no Open-in-Colab badge for this notebook ({own})")
    text = json.dumps(zh, ensure_ascii=False)
    wrong = sorted({u for u in re.findall(r"colab\.research\.google\.com/github/[^)\s\"]+", text)
                    if not u.endswith(f"notebooks/zh/{name}")})
    if wrong:
        problems.append(f"a Colab link opens another notebook: {', '.join(wrong)}; it must end in notebooks/zh/{name}")
    if f"](../{name})" not in zh_first:
        problems.append(f"zh cell 0: no link back to the English version (../{name})")
    if en["cells"] and f"](zh/{name})" not in source(en["cells"][0]):
        problems.append(f"English notebooks/{name} cell 0: no link to its Chinese version (zh/{name})")
    return problems


def check_links(zh: Notebook, folder: Path) -> list[str]:
    """Every relative link or image in the zh markdown resolves from notebooks/zh/."""
    problems = []
    for j, cell in enumerate(zh["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", source(cell)) + re.findall(r"src=\"([^\"]+)\"", source(cell)):
            if re.match(r"[a-z]+:|#", target):
                continue
            if not (folder / target.split("#")[0]).exists():
                problems.append(f"zh cell {j}: link {target!r} does not resolve from notebooks/zh/")
    return problems


def sync(name: str, fix: bool = False, stamp: bool = False, en_dir: Path = EN_DIR, zh_dir: Path = ZH_DIR) -> Report:
    """Check one zh notebook against its English notebook; with ``fix`` or ``stamp``, write the changes."""
    report = Report(name)
    en_path, zh_path = en_dir / name, zh_dir / name
    en = load(en_path)
    if not zh_path.exists():
        report.todo.append(f"missing: notebooks/zh/{name} (--fix creates it with the English text to translate)")
        if not fix:
            return report
        zh = {**copy.deepcopy(en), "cells": []}
        report.fixed.append("created from the English notebook")
    else:
        zh = load(zh_path)
    for key in ("metadata", "nbformat", "nbformat_minor"):
        if zh.get(key) != en.get(key):
            report.can_fix(f"notebook {key} differs from the English notebook's (--fix copies it)")
            zh[key] = copy.deepcopy(en.get(key))
    en_cells, zh_cells = en["cells"], zh["cells"]
    new_cells: list[Cell] = []
    for i, j in align(en_cells, zh_cells):
        here = len(new_cells)  # this cell's index in the zh notebook once --fix has run
        if i is None:
            cell = zh_cells[j]
            if cell["cell_type"] == "code":
                report.can_fix(f"zh cell {j} (code: {first_line(source(cell))!r}) was removed in English "
                                   "(--fix removes it)")
            else:
                new_cells.append(cell)
                report.todo.append(f"zh cell {j} (markdown: {first_line(source(cell))!r}) translates an English cell "
                                   f"that was removed (id {cell.get('id')!r}): delete it, or move its text into the "
                                   "cell that replaced it")
            continue
        en_cell = en_cells[i]
        if j is None:
            if en_cell["cell_type"] == "code":
                report.can_fix(f"English cell {i} (code: {first_line(source(en_cell))!r}) is new (--fix copies "
                                   f"it in as zh cell {here})")
                new_cells.append(clean_code(en_cell))
            else:
                report.can_fix(f"English cell {i} (markdown: {first_line(source(en_cell))!r}) is new: translate "
                                   f"it as zh cell {here} (--fix inserts the English text there to translate in "
                                   "place), then run --stamp")
                new_cells.append(untranslated(en_cell))
            continue
        zh_cell = zh_cells[j]
        if en_cell["cell_type"] == "code":
            if {**zh_cell, "source": source(zh_cell)} != clean_code(en_cell):
                what = "source" if source(zh_cell) != source(en_cell) else "id, metadata or outputs"
                report.can_fix(f"English cell {i} (code: {first_line(source(en_cell))!r}): zh cell {j} "
                                   f"differs in its {what} (--fix copies the English cell)")
            new_cells.append(clean_code(en_cell))
            continue
        cell = copy.deepcopy(zh_cell)
        if cell.get("id") != en_cell.get("id"):
            report.can_fix(f"zh cell {j}: id {cell.get('id')!r} should be English cell {i}'s "
                               f"{en_cell.get('id')!r} (--fix sets it)")
            cell["id"] = en_cell.get("id")
        if stamp and has_chinese(source(cell)) and stamp_of(cell) != digest(source(en_cell)):
            cell.setdefault("metadata", {})[STAMP_KEY] = {"translates": digest(source(en_cell))}
            report.fixed.append(f"zh cell {here}: stamped as the translation of English cell {i}")
        report.todo += check_markdown(en_path, i, j, en_cell, cell)
        new_cells.append(cell)
    zh["cells"] = new_cells
    report.todo += check_first_cell(name, en, zh) + check_links(zh, zh_dir)
    if stamp and not fix and report.fixable:
        report.todo.append("--stamp wrote nothing: the code or structure differs (see above); run --fix first")
        report.fixed = []
    elif fix or stamp:
        before = zh_path.read_text(encoding="utf-8") if zh_path.exists() else None
        zh_dir.mkdir(parents=True, exist_ok=True)
        save(zh_path, zh)
        if before != zh_path.read_text(encoding="utf-8"):
            report.fixed += report.fixable
        report.todo = sync(name, en_dir=en_dir, zh_dir=zh_dir).todo  # what is left after the changes
    return report


def notebook_names(en_dir: Path = EN_DIR, zh_dir: Path = ZH_DIR) -> tuple[list[str], list[str]]:
    """English notebook names, and zh notebooks that have no English notebook."""
    en = sorted(p.name for p in en_dir.glob(NOTEBOOK_GLOB))
    orphans = sorted(p.name for p in zh_dir.glob("*.ipynb") if p.name not in en)
    return en, orphans


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path, help="zh or English notebooks to check (default: all)")
    ap.add_argument("--fix", action="store_true", help="copy code cells and structure over from English")
    ap.add_argument("--stamp", action="store_true",
                    help="mark the translations of the given notebooks as up to date with the English text")
    args = ap.parse_args(argv)
    names, orphans = notebook_names(EN_DIR, ZH_DIR)
    if args.notebooks:
        wanted = {p.name for p in args.notebooks}
        unknown = sorted(wanted - set(names))
        if unknown:
            print(f"no English notebook notebooks/{unknown[0]}; choose from: {', '.join(names)}", file=sys.stderr)
            return 2
        names, orphans = [n for n in names if n in wanted], []
    left = 0
    for name in orphans:
        print(f"notebooks/zh/{name}: there is no English notebooks/{name}; delete it or add the English notebook")
        left += 1
    for name in names:
        try:
            report = sync(name, fix=args.fix, stamp=args.stamp, en_dir=EN_DIR, zh_dir=ZH_DIR)
        except SdnbError as err:
            print(f"notebooks/zh/{name}: not checked: {err}")
            left += 1
            continue
        for line in report.fixed:
            print(f"notebooks/zh/{name}: fixed: {line}")
        for k, line in enumerate(report.todo, 1):
            print(f"notebooks/zh/{name}: {k}. {line}")
        left += len(report.todo)
    if left:
        print(f"\n{left} problem(s) left. Code and structure: python scripts/sync_zh.py --fix; translations: edit the "
              "zh cells named above, then python scripts/sync_zh.py --stamp notebooks/zh/NAME.ipynb")
        return 1
    print(f"{len(names)} Chinese notebook(s) in step with the English ones.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
