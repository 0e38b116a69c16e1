"""Fixtures for the real-browser tests: Debian's headless Chromium, driven by Playwright, on JupyterLab.

Fixtures
--------
``chromium_path`` (session)
    ``/usr/bin/chromium`` (or ``$SDNB_CHROMIUM``). Skips every test that needs a browser with one line
    when Chromium or the ``playwright`` package is missing; ``SDNB_REQUIRE_BROWSER=1`` makes that a
    failure instead (CI sets it).
``jupyter_server`` (session)
    A JupyterLab server on 127.0.0.1, a free port and a random token, serving a fresh temporary
    folder. Yields a :class:`JupyterServer` that unpacks as ``(url, token, root_dir)`` and also has
    ``output_dir`` (its ``SDNB_OUTPUT_DIR``), ``log_path``, ``api()`` and ``shutdown_kernels()``.
    Always stopped, kernels included, at teardown.
``page`` (function)
    A Playwright (sync API) page in headless Chromium with a fresh profile. ``lab.screenshot(page,
    name)`` writes to ``<tmp_path>/screenshots/`` and, when ``SDNB_SCREENSHOT_DIR`` is set, copies
    there too (``1``/``true``/``yes``/``on`` mean ``<repo>/outputs/browser/``; any other value is a
    folder, relative to the repository root). A failing test gets a ``FAILED`` screenshot and its
    browser console and server log tail printed. All kernels are shut down after each test.

Environment of the server and its kernels: ``SDNB_TINY=1``, ``HF_HUB_OFFLINE=1``,
``SDNB_OUTPUT_DIR=<tmp>/outputs``; ``SDNB_CACHE_DIR`` and ``SDNB_MODELS_DIR`` pass through unchanged;
``MPLBACKEND`` is dropped (figures render inline as for a user); the repository root is put on
``PYTHONPATH`` so notebooks can ``import sdnb``; the kernel is this
interpreter (``sys.executable``, i.e. the virtualenv's python), installed as kernelspec ``python3``
in a temporary ``JUPYTER_DATA_DIR``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

# Tests import the helpers as ``import lab``, whatever pytest's import mode.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

CHROMIUM = os.environ.get("SDNB_CHROMIUM") or "/usr/bin/chromium"
# A closed network makes Chromium retry updates, sync, QUIC... without these.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_TIMEOUT = 120.0  # seconds; JupyterLab on 2 busy cores can take a while
DEFAULT_TIMEOUT_MS = 30_000

_TRUE = {"1", "true", "yes", "on"}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


# --------------------------------------------------------------------------- chromium_path


def _browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "python package playwright not installed (pip install playwright)"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of the Chromium binary; skips (or fails, with ``SDNB_REQUIRE_BROWSER=1``) when unusable."""
    problem = _browser_problem()
    if problem:
        if _env_true("SDNB_REQUIRE_BROWSER"):
            pytest.fail(f"browser tests required (SDNB_REQUIRE_BROWSER=1) but {problem}", pytrace=False)
        pytest.skip(f"browser tests skipped: {problem}")
    return CHROMIUM


# --------------------------------------------------------------------------- jupyter_server


class JupyterServer(NamedTuple):
    """A running JupyterLab server; unpacks as ``url, token, root_dir``."""

    url: str  # "http://127.0.0.1:PORT", no trailing slash
    token: str
    root_dir: Path

    @property
    def base(self) -> Path:
        return self.root_dir.parent

    @property
    def output_dir(self) -> Path:
        """``SDNB_OUTPUT_DIR`` of the server and its kernels."""
        return self.base / "outputs"

    @property
    def log_path(self) -> Path:
        return self.base / "jupyter.log"

    def api(self, path: str, method: str = "GET", body: Any = None, timeout: float = 10.0) -> Any:
        """Call the REST API (``path`` like ``"api/kernels"``); returns the decoded JSON or None."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def shutdown_kernels(self) -> None:
        """Delete every session and kernel (best effort)."""
        for kind in ("sessions", "kernels"):
            try:
                items = self.api(f"api/{kind}")
            except (OSError, ValueError):
                return
            for item in items or []:
                with contextlib.suppress(OSError, ValueError):
                    self.api(f"api/{kind}/{item['id']}", method="DELETE", timeout=30)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> list[tuple[int, str | None]]:
    """(pid, start time) of every process below ``pid`` (kernels run in their own sessions)."""
    if not Path("/proc").is_dir():
        return []
    tree = _proc_children()
    found, todo = [], list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append((child, _start_time(child)))
        todo.extend(tree.get(child, []))
    return found


def _write_jupyter_dirs(base: Path) -> dict[str, str]:
    """Private Jupyter/JupyterLab config, data, runtime, settings and workspace folders."""
    dirs = {
        name: base / sub
        for name, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
            ("IPYTHONDIR", "ipython"),
        ]
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)

    # The kernel is exactly this interpreter (the venv's python; not resolved, that would leave the venv).
    spec_dir = dirs["JUPYTER_DATA_DIR"] / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {"debugger": True},
            },
            indent=1,
        )
    )

    # No news, no update checks (closed network), no toast asking about them.
    (dirs["JUPYTER_CONFIG_DIR"] / "jupyter_lab_config.json").write_text(
        json.dumps(
            {
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    "extension_manager": "readonly",  # the "pypi" one queries PyPI
                }
            }
        )
    )
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab"
    lab_settings = {
        # every cell stays in the DOM, so selectors see all prompts and outputs
        "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    }
    for rel, value in lab_settings.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return {k: str(v) for k, v in dirs.items()}


def _server_env(base: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_write_jupyter_dirs(base))
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO_ROOT), env.get("PYTHONPATH", "")] if p)
    env["SDNB_TINY"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    env["SDNB_OUTPUT_DIR"] = str(base / "outputs")
    env["PYTHONUNBUFFERED"] = "1"
    # a real Jupyter's inline figures, not the Agg backend the root conftest sets for headless tests
    env.pop("MPLBACKEND", None)
    env.pop("JUPYTER_PATH", None)  # only our kernelspec and the venv's extensions
    env.pop("JUPYTER_TOKEN", None)
    return env


def _wait_ready(proc: subprocess.Popen, url: str, token: str, timeout: float) -> bool:
    """True once /api/status answers; False if the process died first."""
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"JupyterLab did not answer {url}/api/status within {timeout:.0f} s")


def _stop_server(proc: subprocess.Popen, server: JupyterServer) -> None:
    children = _descendants(proc.pid)
    if proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):  # graceful: kernels first, then the server exits
            server.api("api/shutdown", method="POST", timeout=30)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    # kernels that outlived the server (they run in their own sessions): only ours, by pid + start time
    for pid, started in children:
        if started is not None and _start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def jupyter_server(chromium_path, tmp_path_factory):
    """A JupyterLab server for the whole session: ``url, token, root_dir = jupyter_server``."""
    base = tmp_path_factory.mktemp("jupyter")
    root = base / "root"
    root.mkdir()
    (base / "outputs").mkdir()
    env = _server_env(base)
    token = secrets.token_hex(24)
    log_path = base / "jupyter.log"

    proc = server = None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--KernelSpecManager.ensure_native_kernel=False",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, used by lab.py
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers / CI runners
        log_start = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        server = JupyterServer(url, token, root)
        try:
            ready = _wait_ready(proc, url, token, SERVER_START_TIMEOUT)
        except BaseException:
            _stop_server(proc, server)
            raise
        if ready:
            break
        with open(log_path, "rb") as log:
            log.seek(log_start)
            attempt_log = log.read().decode(errors="replace")
        if "already in use" not in attempt_log:
            break
    if not ready:
        raise RuntimeError(
            f"JupyterLab failed to start (exit code {proc.returncode}); log {log_path}:\n{server.log_tail()}"
        )

    try:
        yield server
    finally:
        _stop_server(proc, server)


# --------------------------------------------------------------------------- page


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _extra_screenshot_dir() -> Path | None:
    value = os.environ.get("SDNB_SCREENSHOT_DIR", "").strip()
    if not value or value.lower() in {"0", "false", "no", "off"}:
        return None
    if value.lower() in _TRUE:
        return REPO_ROOT / "outputs" / "browser"
    path = Path(value).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


@pytest.fixture(scope="session")
def _playwright(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def page(_playwright, chromium_path, jupyter_server, tmp_path, request):
    """A fresh headless Chromium page; after the test the browser closes and all kernels shut down."""
    context = _playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),  # fresh user-data-dir
        executable_path=chromium_path,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=VIEWPORT,
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    pg = context.pages[0] if context.pages else context.new_page()

    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    console: list[str] = []
    pg.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    pg.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    # read by lab.screenshot() / lab.console_messages()
    pg.sdnb_screenshot_dir = tmp_path / "screenshots"
    pg.sdnb_screenshot_copy_dir = _extra_screenshot_dir()
    pg.sdnb_screenshot_prefix = prefix
    pg.sdnb_console = console
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            import lab

            try:
                print(f"failure screenshot: {lab.screenshot(pg, 'FAILED')}")
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                print(f"failure screenshot failed: {exc}")
            print("---- browser console (last 40) ----")
            print("\n".join(console[-40:]))
            print("---- jupyter server log (tail) ----")
            print(jupyter_server.log_tail())
        try:
            context.close()
        finally:
            jupyter_server.shutdown_kernels()
