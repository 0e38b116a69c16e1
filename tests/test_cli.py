"""``python -m sdnb TASK``: one command per task with flags from its params; the package's layers hold."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sdnb
from sdnb.cli import COMMANDS, main
from sdnb.params import PARAMS

PACKAGE = Path(sdnb.__file__).parent


def test_help_lists_every_task_and_each_task_its_own_flags() -> None:
    out = subprocess.run([sys.executable, "-m", "sdnb", "--help"], capture_output=True, text=True, check=True).stdout
    for task in (*PARAMS, "walk"):
        assert task in out
    img = subprocess.run([sys.executable, "-m", "sdnb", "img2img", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for flag in ("--image", "--strength", "--resize-mode", "--prompt", "--seed", "--batch-count"):
        assert flag in img
    inp = subprocess.run([sys.executable, "-m", "sdnb", "inpaint", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--mask" in inp and "--mask-blur" in inp and "--inpaint-area" in inp
    assert set(COMMANDS) == {*PARAMS, "walk"}


def test_an_unknown_task_is_refused_with_the_list(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["paint", "--prompt", "a cat"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'paint'" in err and "img2img" in err


def test_img2img_from_the_terminal_then_bad_input(tmp_path: Path, _outputs: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "source.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(source)
    assert main(["img2img", "--image", str(source), "--steps", "2", "--seed", "3", "--strength", "0.5"]) == 0
    out = capsys.readouterr().out
    saved = sorted((_outputs / "img2img").glob("*.png"))
    assert len(saved) == 1 and f"seed 3: {saved[0]}" in out
    assert main(["depth2img", "--image", str(tmp_path / "missing.png"), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no such file" in err and "Traceback" not in err
    assert main(["img2img", "--image", str(source), "--steps", "2", "--strength", "0.1"]) == 2
    assert "no step to run" in capsys.readouterr().err
    assert len(list(_outputs.rglob("*.png"))) == 1  # nothing written by the refused runs


def test_the_package_example_works(pipe) -> None:
    from sdnb import Txt2ImgParams, txt2img

    result = txt2img(Txt2ImgParams(prompt="a red fox in the snow", seed=42, steps=2), save=False)
    assert result.seeds == [42] and result.images[0].size == (64, 64)


def _imports(module: Path) -> set[str]:
    """The sdnb modules ``module`` imports anywhere in it (also inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sdnb."):
            names.add(node.module.split(".")[1])
    return names


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    graph = {name: _imports(path) & set(modules) - {name} for name, path in modules.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    circles = sorted(name for name in graph if reaches(name, name, {name}))
    assert not circles, f"import circle through: {circles}"
    assert "cli" not in set().union(*graph.values()), "the command line is the top layer"
    assert not graph["engine"] & {"generate", "walk", "cli", "distributed"}, "tasks sit above the engine"


def test_model_flag_takes_hub_ids_and_files_and_names_the_replacement_of_a_deleted_id(capsys) -> None:
    assert main(["txt2img", "--model", "runwayml/stable-diffusion-v1-5", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "deleted" in err and "stable-diffusion-v1-5/stable-diffusion-v1-5" in err
    assert main(["txt2img", "--model", "nobody/not-a-model", "--steps", "2"]) == 2  # tried, and offline here
    assert "cannot be downloaded" in capsys.readouterr().err


def test_the_command_line_parses_without_loading_torch() -> None:
    """--help once took 22 s and 400 MB because torch loaded first; the parser needs none of it."""
    code = "import sys; from sdnb.cli import _parser; _parser(); print(sorted({'torch', 'diffusers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
