import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from sdnb import auth
from sdnb.errors import SdnbError

FAKE = "hf_FakeTokenForTests0123456789abcdefXYZ"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setitem(sys.modules, "google.colab", None)


def fake_colab(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    colab = types.ModuleType("google.colab")
    userdata = types.ModuleType("google.colab.userdata")

    def get(name: str) -> str:
        if token is None:
            raise KeyError(name)
        return token

    userdata.get = get
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)


def test_sources_are_tried_in_order(no_sources, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    assert auth.find_token() == (None, None)
    cached = tmp_path / "token"
    cached.write_text(FAKE + "C\n")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(cached))
    assert auth.find_token() == (FAKE + "C", "cached login")
    monkeypatch.setenv("HF_TOKEN", FAKE + "E")
    assert auth.find_token() == (FAKE + "E", "environment variable HF_TOKEN")
    fake_colab(monkeypatch, FAKE + "S")
    assert auth.find_token() == (FAKE + "S", "colab secret HF_TOKEN")
    fake_colab(monkeypatch, None)  # secret missing: fall through to the environment
    assert auth.find_token()[1] == "environment variable HF_TOKEN"


def test_login_reports_source_and_never_the_token(no_sources, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("HF_TOKEN", FAKE)
    monkeypatch.setattr(auth, "_whoami", lambda token: "student42")
    monkeypatch.setenv("SDNB_TINY", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    result = auth.login()
    assert result.source == "environment variable HF_TOKEN" and result.user == "student42"
    shown = repr(result) + result.message + result._repr_markdown_() + capsys.readouterr().out
    assert "student42" in shown and FAKE not in shown
    assert auth.redact(f"header: Bearer {FAKE}") == "header: Bearer hf_***"


def test_no_token_explains_how_to_add_one(no_sources, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDNB_TINY", "0")
    result = auth.login(interactive=False)
    assert result.source is None and "HF_TOKEN" in result.message
    monkeypatch.setenv("SDNB_TINY", "1")
    assert "no Hugging Face token is needed" in auth.login().message


def test_malformed_token_is_a_clear_error(no_sources, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "paste your token here")
    with pytest.raises(SdnbError, match="does not look like a Hugging Face token") as err:
        auth.login()
    assert "paste your token here" not in str(err.value)


def _run_notebooks(folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Execute every notebook with the token set; return the names whose outputs contain it."""
    monkeypatch.setenv("HF_TOKEN", FAKE)
    monkeypatch.setenv("SDNB_OUTPUT_DIR", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    hits = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
        if FAKE in nbformat.writes(nb):
            hits.append(path.name)
    return hits


def test_token_never_appears_in_any_notebook_output_or_file(request, tmp_path: Path, monkeypatch) -> None:
    """Every notebook ran with a token set: grep their outputs and every file they wrote for it.

    In a full run nbval has already executed every notebook with a canary token (see the root conftest,
    which fails any cell that shows it); otherwise the notebooks are executed here.
    """
    state = request.config.sdnb_nbval
    expected = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    if state["notebooks"] >= expected:
        token, folder, hits = state["canary"], Path(state["output_dir"]), list(state["leaks"])
    else:
        token, folder = FAKE, tmp_path / "outputs"
        hits = _run_notebooks(folder, monkeypatch)
    written = [p for p in folder.rglob("*") if p.is_file()]
    assert written, "the notebooks wrote nothing"
    hits += [str(p) for p in written if token.encode() in p.read_bytes()]
    assert hits == []
