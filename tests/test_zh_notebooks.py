"""The Chinese notebooks (notebooks/zh/) stay in step with the English ones: same cells, same code, translated prose.

No kernel: nbval runs only the English notebooks (the zh code cells are the same code). scripts/sync_zh.py does the
checking; the tests below run it on the real notebooks, then on small notebooks made here to show that each kind
of drift is caught and that --fix and --stamp repair what they should and nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sdnb.settings import colab_url

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str, folder: Path = ROOT / "scripts") -> ModuleType:
    """A script (or another test file) loaded from its path, under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"_zh_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


sync_zh = _script("sync_zh")
EN_NAMES, ORPHANS = sync_zh.notebook_names()


def test_every_english_notebook_has_a_chinese_version() -> None:
    assert len(EN_NAMES) >= 9
    assert sorted(p.name for p in (ROOT / "notebooks" / "zh").glob("*.ipynb")) == EN_NAMES
    assert ORPHANS == []


@pytest.mark.parametrize("name", EN_NAMES)
def test_chinese_notebook_in_step(name: str) -> None:
    """Same cells and code as English, every markdown cell translated from the current English text, own badge."""
    report = sync_zh.sync(name)
    assert report.todo == [], "\n".join(report.todo)
    en, zh = (json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "notebooks" / name, sync_zh.ZH_DIR / name))
    assert [c["cell_type"] for c in zh["cells"]] == [c["cell_type"] for c in en["cells"]]
    for e, z in zip(en["cells"], zh["cells"], strict=True):
        if e["cell_type"] == "code":
            assert (z["source"], z["outputs"], z["execution_count"]) == (e["source"], [], None)
        elif sync_zh.needs_chinese(sync_zh.source(z)):
            assert sync_zh.has_chinese(sync_zh.source(z))
    first = sync_zh.source(zh["cells"][0])
    assert f"]({colab_url('notebooks/zh/' + name)})" in first and f"](../{name})" in first
    assert zh["metadata"]["colab"]["gpuType"] == "T4"


def test_nbval_browser_smoke_and_demo_run_only_the_english_notebooks(monkeypatch) -> None:
    """nbval's collection (the root conftest's collect_ignore), the browser smoke test and `make demo` leave
    notebooks/zh/ alone: its code is the English notebooks' code, run once."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval-lax",
           "--collect-only", "-q", "notebooks"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300).stdout
    collected = {line.split("::")[0] for line in out.splitlines() if "::Cell " in line}
    assert collected == {f"notebooks/{n}" for n in EN_NAMES}, out[-2000:]
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "browser"))
    smoke = _script("test_notebooks_smoke", ROOT / "tests" / "browser")
    assert {p.name for p in smoke.NOTEBOOKS} | smoke.COVERED == set(EN_NAMES)
    assert all(p.parent == ROOT / "notebooks" for p in smoke.NOTEBOOKS)
    assert [p.name for p in _script("run_notebooks").default_notebooks()] == EN_NAMES


# --- the sync script on small notebooks made here -------------------------------------------------------------

NAME = "01_demo.ipynb"


def _md(cell_id: str, text: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def _code(cell_id: str, text: str) -> dict:
    return {"cell_type": "code", "id": cell_id, "metadata": {}, "execution_count": None, "outputs": [], "source": text}


def _english() -> dict:
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url('notebooks/' + NAME)})"
    return {
        "cells": [
            _md("t", f"# 01 · Demo\n\n{badge}\n\n中文版：[zh/{NAME}](zh/{NAME})\n\n**You will learn:** the seed."),
            _code("c1", "import sys"),
            _md("m2", "## 1 · The seed\n\nThe seed fixes the starting noise."),
            _code("c3", "print(42)"),
            _md("m4", "**Next:** [02 · More](02_more.md)."),
        ],
        "metadata": {"accelerator": "GPU", "colab": {"gpuType": "T4"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


CHINESE = {
    "t": f"# 01 · 演示\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         f"({colab_url('notebooks/zh/' + NAME)})\n\n英文版：[{NAME}](../{NAME})\n\n**你将学到：** 种子。",
    "m2": "## 1 · 种子\n\n种子决定了起始噪声。",
    "m4": "**下一课：** [02 · 更多](02_more.md)。",
}


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """An English notebook and its translated, stamped zh notebook (made with --fix, translated, --stamp)."""
    en_dir, zh_dir = tmp_path / "notebooks", tmp_path / "notebooks" / "zh"
    zh_dir.mkdir(parents=True)
    _write(en_dir / NAME, _english())
    (zh_dir / "02_more.md").write_text("the next lesson")
    made = sync_zh.sync(NAME, fix=True, en_dir=en_dir, zh_dir=zh_dir)
    assert made.fixed[0] == "created from the English notebook"
    assert sum("not translated yet" in t for t in made.todo) == 3, made.todo
    zh = _read(zh_dir / NAME)
    for cell in zh["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = CHINESE[cell["id"]]
    _write(zh_dir / NAME, zh)
    unstamped = _sync(en_dir, zh_dir)
    assert len(unstamped.todo) == 3 and all("no translation stamp" in t for t in unstamped.todo), unstamped.todo
    stamped = sync_zh.sync(NAME, stamp=True, en_dir=en_dir, zh_dir=zh_dir)
    assert stamped.todo == [] and len(stamped.fixed) == 3
    return en_dir, zh_dir


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, nb: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")


def _sync(en_dir: Path, zh_dir: Path, **kw):
    return sync_zh.sync(NAME, en_dir=en_dir, zh_dir=zh_dir, **kw)


def _edit(path: Path, change) -> None:
    nb = _read(path)
    change(nb["cells"])
    _write(path, nb)


def test_code_drift_is_reported_and_fixed_from_english(dirs) -> None:
    en_dir, zh_dir = dirs
    _edit(zh_dir / NAME, lambda cells: cells[3].update(source="print(43)", outputs=[{"output_type": "stream"}]))
    report = _sync(en_dir, zh_dir)
    assert report.todo == ["English cell 3 (code: 'print(42)'): zh cell 3 differs in its source (--fix copies the "
                           "English cell)"]
    drifted = (zh_dir / NAME).read_text(encoding="utf-8")
    assert _sync(en_dir, zh_dir, stamp=True).todo[-1].startswith("--stamp wrote nothing")
    assert (zh_dir / NAME).read_text(encoding="utf-8") == drifted
    fix = _sync(en_dir, zh_dir, fix=True)
    assert (fix.todo, fix.fixed) == ([], report.todo)
    fixed = _read(zh_dir / NAME)["cells"][3]
    assert (sync_zh.source(fixed), fixed["outputs"]) == ("print(42)", [])
    assert sync_zh.source(_read(zh_dir / NAME)["cells"][2]) == CHINESE["m2"]  # translations untouched


def test_new_english_code_cell_is_copied_in_at_its_place(dirs) -> None:
    en_dir, zh_dir = dirs
    _edit(en_dir / NAME, lambda cells: cells.insert(2, _code("new", "x = 1\ny = 2")))
    assert _sync(en_dir, zh_dir).todo == ["English cell 2 (code: 'x = 1') is new (--fix copies it in as zh cell 2)"]
    assert _sync(en_dir, zh_dir, fix=True).todo == []
    assert [c["id"] for c in _read(zh_dir / NAME)["cells"]] == ["t", "c1", "new", "m2", "c3", "m4"]


def test_new_english_markdown_cell_is_named_with_index_and_first_line(dirs) -> None:
    en_dir, zh_dir = dirs
    _edit(en_dir / NAME, lambda cells: cells.insert(4, _md("m-new", "\n## 2 · Batches\n\nA batch shares one pass.")))
    (todo,) = _sync(en_dir, zh_dir).todo
    assert todo.startswith("English cell 4 (markdown: '## 2 · Batches') is new: translate it as zh cell 4")
    fixed = _sync(en_dir, zh_dir, fix=True)
    assert fixed.todo == ["English cell 4 (markdown: '## 2 · Batches') / zh cell 4: not translated yet (no Chinese "
                          "text); translate it in place, then run --stamp"]
    assert sync_zh.source(_read(zh_dir / NAME)["cells"][4]).startswith("\n## 2 · Batches")
    assert _sync(en_dir, zh_dir, stamp=True).todo == fixed.todo  # an English text is never stamped as translated
    _edit(zh_dir / NAME, lambda cells: cells[4].update(source="## 2 · 批次\n\n一个批次共用一次前向计算。"))
    assert _sync(en_dir, zh_dir, stamp=True).todo == []


def test_removed_english_markdown_cell_is_reported_and_kept_for_the_translator(dirs) -> None:
    en_dir, zh_dir = dirs
    _edit(en_dir / NAME, lambda cells: cells.pop(2))
    expected = ["zh cell 2 (markdown: '## 1 · 种子') translates an English cell that was removed (id 'm2'): delete "
                "it, or move its text into the cell that replaced it"]
    assert _sync(en_dir, zh_dir).todo == expected
    assert _sync(en_dir, zh_dir, fix=True).todo == expected
    assert len(_read(zh_dir / NAME)["cells"]) == 5
    _edit(zh_dir / NAME, lambda cells: cells.pop(2))
    assert _sync(en_dir, zh_dir).todo == []


def test_changed_english_text_needs_a_new_translation_and_stamp(dirs) -> None:
    en_dir, zh_dir = dirs
    _edit(en_dir / NAME, lambda cells: cells[2].update(source="## 1 · The seed\n\nThe seed fixes the noise."))
    (todo,) = _sync(en_dir, zh_dir).todo
    assert todo.startswith("English cell 2 (markdown: '## 1 · The seed') / zh cell 2: the English cell changed since "
                           "it was translated")
    assert _sync(en_dir, zh_dir, fix=True).todo == [todo]  # --fix does not pretend to translate
    assert _sync(en_dir, zh_dir, stamp=True).todo == []


def test_cells_in_another_order_or_type_are_structure_problems(dirs) -> None:
    en_dir, zh_dir = dirs
    _edit(zh_dir / NAME, lambda cells: cells.insert(1, cells.pop(3)))  # code cell 3 moved before code cell 1
    assert any("code" in t for t in _sync(en_dir, zh_dir).todo)
    assert _sync(en_dir, zh_dir, fix=True).todo == []
    assert [c["id"] for c in _read(zh_dir / NAME)["cells"]] == ["t", "c1", "m2", "c3", "m4"]
    _edit(en_dir / NAME, lambda cells: cells.__setitem__(2, _code("m2", "pass")))  # markdown became code
    todo = _sync(en_dir, zh_dir).todo
    assert any(t.startswith("English cell 2 (code: 'pass') is new") for t in todo), todo
    assert any(t.startswith("zh cell 2 (markdown: '## 1 · 种子') translates an English cell that was removed")
               for t in todo), todo


@pytest.mark.parametrize(("change", "expected"), [
    (lambda c: c[2].update(source="## 1 · The seed\n\nThe seed fixes the starting noise."), "not translated yet"),
    (lambda c: c[2].update(source=CHINESE["m2"] + "\n\nThe seed is the number that fixes the noise of the first step."),
     "English prose left in the translation"),
    (lambda c: c[0].update(source=CHINESE["t"].replace("notebooks/zh/", "notebooks/")), "no Open-in-Colab badge"),
    (lambda c: c[0].update(source=CHINESE["t"].replace(f"../{NAME}", NAME)), "no link back to the English version"),
    (lambda c: c[4].update(source="**下一课：** [02 · 更多](../zh/03_missing.ipynb)。"), "does not resolve"),
])
def test_translation_problems_are_caught(dirs, change, expected: str) -> None:
    en_dir, zh_dir = dirs
    _edit(zh_dir / NAME, change)
    todo = _sync(en_dir, zh_dir, stamp=True).todo
    assert any(expected in t for t in todo), todo


def test_badge_formula_and_code_only_cells_need_no_chinese() -> None:
    badge = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://example.org/x)"
    for text in (badge, "$$\\hat\\epsilon = \\epsilon_u + s(\\epsilon_c - \\epsilon_u)$$", "`W + w·B·A`", "---"):
        assert not sync_zh.needs_chinese(text), text
    assert sync_zh.needs_chinese("[Next](02.ipynb)") and sync_zh.needs_chinese("Seeds")
    assert sync_zh.english_left("用 **Crop and resize**（裁剪后缩放）和 *Inpaint not masked*，`from x import y`") == []


def test_missing_and_orphan_zh_notebooks_are_reported(dirs, monkeypatch, capsys) -> None:
    en_dir, zh_dir = dirs
    (zh_dir / NAME).unlink()
    assert _sync(en_dir, zh_dir).todo[0].startswith(f"missing: notebooks/zh/{NAME}")
    _write(zh_dir / "09_gone.ipynb", _english())
    assert sync_zh.notebook_names(en_dir, zh_dir) == ([NAME], ["09_gone.ipynb"])
    monkeypatch.setattr(sync_zh, "EN_DIR", en_dir)
    monkeypatch.setattr(sync_zh, "ZH_DIR", zh_dir)
    assert sync_zh.main([]) == 1
    out = capsys.readouterr().out
    assert "notebooks/zh/09_gone.ipynb: there is no English notebooks/09_gone.ipynb" in out
    assert f"notebooks/zh/{NAME}: 1. missing" in out


def test_zh_fixture_round_trip_keeps_english_untouched(dirs) -> None:
    en_dir, _ = dirs
    assert _read(en_dir / NAME) == _english()


def test_unreadable_notebook_is_one_clear_message(dirs, monkeypatch, capsys) -> None:
    en_dir, zh_dir = dirs
    (zh_dir / NAME).write_text('{"cells": [\n<<<<<<< HEAD\n', encoding="utf-8")
    monkeypatch.setattr(sync_zh, "EN_DIR", en_dir)
    monkeypatch.setattr(sync_zh, "ZH_DIR", zh_dir)
    assert sync_zh.main([]) == 1
    out = capsys.readouterr().out
    assert "is not a readable notebook (JSON error at line 2" in out and "git checkout --" in out
    assert "Traceback" not in out
