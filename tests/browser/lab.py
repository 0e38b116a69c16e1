"""Playwright (sync API) helpers for JupyterLab 4.6 notebooks with ipywidgets 8 forms.

They need the server started with ``--LabApp.expose_app_in_browser=True`` (``window.jupyterapp``,
the ``jupyter_server`` fixture does it) and work on the current notebook: the one opened last.
With the fixture's lab settings (``windowingMode: none``) every cell stays in the DOM.

Main entry points::

    open_notebook(page, base_url, token, path)       # opens it, waits for its kernel to be idle
    run_all(page)                                    # clears outputs, then Run All Cells
    wait_idle(page, timeout=240)                     # all code cells ran (or one failed), kernel idle
    cell_errors(page) -> list[str]                   # error outputs and tracebacks on stderr
    set_widget_text(page, "Prompt", "a cat")         # Text / Textarea / IntText / Dropdown / slider
    widget_value(page, "Seed") -> str
    click_button(page, "Generate")
    n = count_images(page); wait_for_new_image(page, n, timeout=60)
    wait_for_output_text(page, "done", timeout=30)
    screenshot(page, "after-generate") -> Path
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from re import Pattern
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

#: every image rendered in an output area, widget outputs (``ipywidgets.Image``, ``Output``) included
IMAGE_SELECTOR = ".jp-Notebook .jp-OutputArea-output img"
STDERR_SELECTOR = '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
DIALOG_SELECTOR = ".jp-Dialog"
DIALOG_ACCEPT_SELECTOR = ".jp-Dialog .jp-Dialog-button.jp-mod-accept"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_POLL = 0.25  # seconds

# The notebook panel the helpers act on: the current widget if it is a notebook, else the last one.
_PANEL_JS = """
const app = window.jupyterapp;
if (!app) throw new Error('window.jupyterapp missing: start JupyterLab with --LabApp.expose_app_in_browser=True');
const isNb = (w) => w && w.content && w.sessionContext && w.content.widgets !== undefined && w.context;
let panel = isNb(app.shell.currentWidget) ? app.shell.currentWidget : null;
if (!panel) { for (const w of app.shell.widgets('main')) { if (isNb(w)) panel = w; } }
"""

_STATE_JS = (
    "(path) => {"
    + _PANEL_JS
    + """
if (path) {
  panel = null;
  for (const w of app.shell.widgets('main')) { if (isNb(w) && w.context.path === path) panel = w; }
}
if (!panel) return {panel: false};
const sc = panel.sessionContext;
const kernel = sc.session && sc.session.kernel;
let running = 0, unexecuted = 0, errors = 0, code = 0;
for (const cell of panel.content.widgets) {
  if (cell.model.type !== 'code') continue;
  code++;
  const prompt = cell.node.querySelector('.jp-InputArea-prompt');
  if (prompt && prompt.textContent.includes('*')) running++;
  const src = cell.model.sharedModel.getSource().trim();
  if (src && cell.model.executionCount == null) unexecuted++;
  for (const out of cell.model.outputs.toJSON()) { if (out.output_type === 'error') errors++; }
}
return {
  panel: true, path: panel.context.path, ready: panel.context.isReady && sc.isReady,
  status: kernel ? kernel.status : 'none', display: sc.kernelDisplayStatus,
  running, unexecuted, errors, code,
};
}"""
)


# --------------------------------------------------------------------------- state and dialogs


def notebook_state(page: Page, path: str | None = None) -> dict[str, Any]:
    """Kernel status and cell counters of the current notebook (or the one at ``path``)."""
    return page.evaluate(_STATE_JS, path)


def dismiss_dialogs(page: Page) -> list[str]:
    """Accept any open JupyterLab dialog ("Select Kernel" and the like); returns their titles."""
    titles = []
    for _ in range(3):
        dialog = page.locator(DIALOG_SELECTOR)
        if dialog.count() == 0:
            break
        title = dialog.first.locator(".jp-Dialog-header").inner_text(timeout=2000).strip()
        titles.append(title)
        accept = page.locator(DIALOG_ACCEPT_SELECTOR)
        if accept.count():
            accept.first.click(timeout=5000)
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(200)
    return titles


# --------------------------------------------------------------------------- notebook


def open_notebook(
    page: Page, base_url: str, token: str, path: str, timeout: float = 90, collapse_sidebar: bool = True
) -> list[str]:
    """Open ``path`` (relative to the server root) in JupyterLab and wait until its kernel is idle.

    ``?reset`` starts from an empty workspace, so notebooks of earlier tests are not restored.
    A "Select Kernel" dialog, if any, is accepted (the default kernel). With ``collapse_sidebar``
    the file browser is closed, leaving the notebook the whole width (for screenshots).
    Returns the titles of the dialogs it accepted.
    """
    url = f"{base_url.rstrip('/')}/lab/tree/{quote(path)}?reset&token={quote(token)}"
    page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.shell)", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    dismissed: list[str] = []
    while time.monotonic() < deadline:
        dismissed += dismiss_dialogs(page)
        state = notebook_state(page, path)
        if state.get("panel") and state["ready"] and state["status"] == "idle":
            page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").first.wait_for()
            if collapse_sidebar:
                page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
            return dismissed
        time.sleep(_POLL)
    raise TimeoutError(f"notebook {path} not open with an idle kernel after {timeout:.0f} s: {state}")


def _command(page: Page, command: str, args: dict | None = None) -> None:
    # fire and forget: the run commands' promises only settle when the cells have finished
    page.evaluate("([cmd, args]) => { window.jupyterapp.commands.execute(cmd, args || {}); }", [command, args])


def run_all(page: Page, clear_first: bool = True) -> None:
    """Run All Cells of the current notebook (command ``notebook:run-all-cells``).

    With ``clear_first`` all outputs and execution counts are cleared first, so :func:`wait_idle`
    can tell cells that ran now from counts saved in the file.
    """
    dismiss_dialogs(page)
    if clear_first:
        _command(page, "notebook:clear-all-cell-outputs")
        page.wait_for_function(
            "() => { " + _PANEL_JS + " return !!panel && panel.content.widgets.every("
            "c => c.model.type !== 'code' || (c.model.executionCount == null && c.model.outputs.length === 0)); }",
            timeout=10_000,
        )
    _command(page, "notebook:run-all-cells")


def wait_idle(page: Page, timeout: float = 240, require_all_executed: bool = True) -> dict[str, Any]:
    """Wait until the kernel is idle and no cell shows ``[*]``.

    With ``require_all_executed`` (after :func:`run_all`), also until every non-empty code cell has an
    execution count, or an error output stopped the run. The state must hold on two polls in a row.
    Returns the final :func:`notebook_state`.
    """
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    stable = 0
    while time.monotonic() < deadline:
        dismiss_dialogs(page)
        state = notebook_state(page)
        done = (
            state.get("panel")
            and state["status"] == "idle"
            and state["running"] == 0
            and (not require_all_executed or state["unexecuted"] == 0 or state["errors"] > 0)
        )
        stable = stable + 1 if done else 0
        if stable >= 2:
            return state
        time.sleep(_POLL)
    raise TimeoutError(f"notebook not idle after {timeout:.0f} s: {state}")


_ERRORS_JS = (
    "() => {"
    + _PANEL_JS
    + """
if (!panel) return [];
const found = [];
panel.content.widgets.forEach((cell, index) => {
  if (cell.model.type !== 'code') return;
  for (const out of cell.model.outputs.toJSON()) {
    if (out.output_type === 'error') {
      const tb = (out.traceback || []).join('\\n');
      found.push({cell: index, kind: 'error', text: tb || `${out.ename}: ${out.evalue}`});
    } else if (out.output_type === 'stream' && out.name === 'stderr') {
      const text = Array.isArray(out.text) ? out.text.join('') : out.text;
      found.push({cell: index, kind: 'stderr', text});
    }
  }
  // rendered stderr inside the cell, e.g. widget Output areas (not part of the cell model)
  for (const el of cell.node.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')) {
    found.push({cell: index, kind: 'rendered', text: el.textContent});
  }
});
return found;
}"""
)


def _norm(text: str) -> str:
    return " ".join(_ANSI.sub("", text).split())


def cell_errors(page: Page) -> list[str]:
    """Texts of error outputs, plus stderr outputs containing "Traceback" or "Error".

    Covers the cells' own outputs (from the notebook model) and what is rendered inside them,
    e.g. tracebacks a form appends to an ``ipywidgets.Output``. Each text starts with ``[cell N]``.
    """
    errors: list[str] = []
    seen: set[str] = set()
    for item in page.evaluate(_ERRORS_JS):
        text = _ANSI.sub("", item["text"] or "").strip()
        if item["kind"] != "error" and "Traceback" not in text and "Error" not in text:
            continue
        key = _norm(text)
        if key in seen:
            continue
        seen.add(key)
        errors.append(f"[cell {item['cell']}] {text}")
    return errors


def console_messages(page: Page, kinds: tuple[str, ...] = ("error", "pageerror")) -> list[str]:
    """Browser console messages recorded by the ``page`` fixture (errors by default)."""
    return [m for m in getattr(page, "sdnb_console", []) if m.split(":", 1)[0] in kinds]


# --------------------------------------------------------------------------- widgets


def _label_regex(description: str | Pattern[str]) -> Pattern[str]:
    if isinstance(description, re.Pattern):
        return description
    return re.compile(rf"^\s*{re.escape(description.strip().rstrip(':'))}\s*:?\s*$")


def widget_row(page: Page, description: str | Pattern[str], within: Locator | None = None) -> Locator:
    """The ipywidgets control whose description label reads ``description`` (the last one shown)."""
    scope = within if within is not None else page.locator(".jp-Notebook")
    row = scope.locator(".widget-inline-hbox").filter(
        has=page.locator("label.widget-label", has_text=_label_regex(description))
    )
    return row.last


def set_widget_text(page: Page, description: str | Pattern[str], value: Any, within: Locator | None = None) -> None:
    """Fill the Text / Textarea / IntText / FloatText / Combobox (input), Dropdown (select) or
    slider (editable readout) labelled ``description`` with ``value`` and send it to the kernel."""
    row = widget_row(page, description, within)
    row.wait_for(state="visible")
    text = str(value)
    field = row.locator("input:not([type=checkbox]), textarea, select")
    if field.count():
        field = field.first
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(label=text)
            return
        field.fill(text)  # "input" event: Text (continuous_update) syncs now
        field.dispatch_event("change")  # IntText & co sync on "change"
        return
    readout = row.locator(".widget-readout")
    if readout.count():
        readout.first.fill(text)
        readout.first.press("Enter")
        return
    raise LookupError(f"no text field, select or slider readout in widget {description!r}")


def widget_value(page: Page, description: str | Pattern[str], within: Locator | None = None) -> str:
    """The value shown by the control labelled ``description``."""
    row = widget_row(page, description, within)
    field = row.locator("input:not([type=checkbox]), textarea, select")
    if field.count():
        return field.first.input_value()
    return row.locator(".widget-readout").first.inner_text().strip()


def click_button(page: Page, text: str | Pattern[str], within: Locator | None = None, timeout: float = 30) -> None:
    """Click the ipywidgets Button reading ``text`` (the last one shown); waits until it is enabled."""
    scope = within if within is not None else page.locator(".jp-Notebook")
    button = scope.locator("button.jupyter-button", has_text=_label_regex(text)).last
    button.click(timeout=timeout * 1000)


def count_images(page: Page) -> int:
    """Loaded ``<img>`` elements in output areas (widget outputs included)."""
    return page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].filter(i => i.complete && i.naturalWidth > 0).length",
        IMAGE_SELECTOR,
    )


def wait_for_new_image(page: Page, count_before: int, timeout: float = 60) -> int:
    """Wait until more than ``count_before`` images are loaded in outputs; returns the new count."""
    handle = page.wait_for_function(
        "([sel, n]) => { const k = [...document.querySelectorAll(sel)]"
        ".filter(i => i.complete && i.naturalWidth > 0).length; return k > n ? k : false; }",
        arg=[IMAGE_SELECTOR, count_before],
        timeout=timeout * 1000,
        polling=200,
    )
    return int(handle.json_value())


def wait_for_output_text(page: Page, text: str | Pattern[str], timeout: float = 30) -> str:
    """Wait until some output area (widgets included, cell sources excluded) shows ``text``
    (a substring, or a regex); returns the matching output's text."""
    pattern = text.pattern if isinstance(text, re.Pattern) else re.escape(text)
    handle = page.wait_for_function(
        "(pattern) => { const rx = new RegExp(pattern);"
        " for (const el of document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')) {"
        "   if (rx.test(el.innerText)) return el.innerText; } return false; }",
        arg=pattern,
        timeout=timeout * 1000,
        polling=200,
    )
    return str(handle.json_value())


# --------------------------------------------------------------------------- screenshots


def screenshot(page: Page, name: str, locator: Locator | None = None) -> Path:
    """Save ``<name>.png`` (of the page, or of ``locator``) in the test's screenshot folder, and a
    ``<test>-<name>.png`` copy in ``SDNB_SCREENSHOT_DIR`` when set (see the ``page`` fixture)."""
    folder = Path(getattr(page, "sdnb_screenshot_dir", None) or Path.cwd() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    path = folder / f"{safe}.png"
    target = locator if locator is not None else page
    target.screenshot(path=str(path), timeout=15_000)
    copy_dir = getattr(page, "sdnb_screenshot_copy_dir", None)
    if copy_dir:
        copy_dir = Path(copy_dir)
        copy_dir.mkdir(parents=True, exist_ok=True)
        prefix = getattr(page, "sdnb_screenshot_prefix", "")
        shutil.copyfile(path, copy_dir / (f"{prefix}-{safe}.png" if prefix else f"{safe}.png"))
    return path


def scroll_into_view(page: Page, locator: Locator) -> None:
    """Scroll the notebook so ``locator`` is visible (before a screenshot)."""
    locator.scroll_into_view_if_needed(timeout=10_000)


def scroll_to_end(page: Page) -> None:
    """Scroll the current notebook so the bottom of its last cell (the last outputs) is in view."""
    page.evaluate(
        "() => { " + _PANEL_JS + " if (!panel) return; const cells = panel.content.widgets;"
        " if (cells.length) cells[cells.length - 1].node.scrollIntoView({block: 'end'}); }"
    )
    page.wait_for_timeout(100)  # let the scroll settle before a screenshot


def run_cell(page: Page, index: int) -> None:
    """Run the code cell at ``index`` of the current notebook (as Shift+Enter on it would), without waiting."""
    page.evaluate(
        "(i) => { " + _PANEL_JS + " panel.content.activeCellIndex = i;"
        " window.jupyterapp.commands.execute('notebook:run-cell'); }",
        index,
    )


def cell_output_text(page: Page, index: int) -> str:
    """The rendered text of the outputs of cell ``index``."""
    return page.evaluate(
        "(i) => { " + _PANEL_JS + " const c = panel.content.widgets[i];"
        " const o = c.node.querySelector('.jp-OutputArea'); return o ? o.innerText : ''; }",
        index,
    )


def set_viewport_width(page: Page, width: int) -> None:
    """Resize the browser window to ``width`` pixels (same height), as on a laptop or a narrow window."""
    page.set_viewport_size({"width": width, "height": page.viewport_size["height"]})
    page.wait_for_timeout(300)
