"""Forms built from the typed params dataclasses, and the Generate/Stop app around any task function.

The form only sets values; :class:`TaskApp` runs the task in a background thread so the kernel stays
free to receive the Stop click. A plain notebook cell can call the same task function directly.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
import typing
from collections.abc import Callable
from typing import Any

import ipywidgets as W
from PIL import Image

from .errors import SdnbError
from .params import Spec, base_type, item_type
from .registry import MODELS, native_size, size_limits

__all__ = ["Form", "TaskApp", "WidgetProgress", "png_bytes"]

_STYLE = {"description_width": "120px"}
_LAYOUT = W.Layout(width="520px")


def png_bytes(image: Image.Image) -> bytes:
    """PNG-encoded bytes of an image, for ``ipywidgets.Image``."""
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _widget_for(name: str, kind: Any, value: Any, spec: Spec) -> W.Widget:
    common = {"description": spec.label, "style": _STYLE, "layout": _LAYOUT, "tooltip": spec.help}
    item = item_type(kind)
    if item is str:  # one value per line
        return W.Textarea(value="\n".join(value), placeholder=spec.help, **common)
    if item in (int, float):  # comma-separated numbers
        return W.Text(value=", ".join(str(v) for v in value), placeholder=spec.help, **common)
    if spec.choices and name == "model":  # the models' names, not their registry keys
        options = [(MODELS[k].label if k in MODELS else k, k) for k in spec.choices]
        return W.Dropdown(options=options, value=value, **common)
    if spec.choices:
        return W.Dropdown(options=list(spec.choices), value=value, **common)
    if kind is str:
        cls = W.Textarea if spec.multiline else W.Text
        return cls(value=value, placeholder=spec.help, **common)
    if kind is bool:
        return W.Checkbox(value=value, indent=False, **common)
    if kind is float:
        return W.BoundedFloatText(value=value, min=spec.min, max=spec.max, step=spec.step or 0.1, **common)
    if kind is int:
        lo = -(2**63) if spec.min is None else spec.min
        hi = 2**63 if spec.max is None else spec.max
        return W.BoundedIntText(value=value, min=lo, max=hi, step=spec.step or 1, **common)
    raise SdnbError(f"No form widget for parameter {name!r} of type {kind!r}.")


def _from_widget(kind: Any, value: Any, label: str) -> Any:
    """A widget's value as the params field wants it: lines or comma-separated numbers become tuples."""
    item = item_type(kind)
    if item is str:
        return tuple(line.strip() for line in str(value).splitlines() if line.strip())
    if item in (int, float):
        parts = [part for part in str(value).replace(",", " ").split() if part]
        try:
            return tuple(item(part) for part in parts)
        except ValueError:
            raise SdnbError(
                f"{label}: {value!r} is not a list of {'whole ' if item is int else ''}numbers.",
                hint="Separate the numbers with commas, e.g. 42, 7, 1234.",
            ) from None
    return value


class Form:
    """An ipywidgets form for a params dataclass; :meth:`params` returns the validated values."""

    def __init__(self, params: Any) -> None:
        self.cls = type(params)
        hints = typing.get_type_hints(self.cls)
        start = params.resolved() if hasattr(params, "resolved") else params
        self.fields: dict[str, W.Widget] = {}
        self.kinds = {f.name: base_type(hints[f.name]) for f in dataclasses.fields(self.cls)}
        for f in dataclasses.fields(self.cls):
            self.fields[f.name] = _widget_for(f.name, self.kinds[f.name], getattr(start, f.name), f.metadata["spec"])
        if "model" in self.fields and "width" in self.fields:
            self.fields["model"].observe(self._model_changed, names="value")
            self._set_size_bounds(start.model)
        self.widget = W.VBox(list(self.fields.values()))

    def _set_size_bounds(self, model: str) -> None:
        lo, hi = size_limits(model)
        for name in ("width", "height"):
            w = self.fields[name]
            w.min, w.max = lo, hi

    def _model_changed(self, change: dict) -> None:
        self._set_size_bounds(change["new"])
        size = native_size(change["new"])
        self.fields["width"].value = self.fields["height"].value = size

    def params(self) -> Any:
        """The form's values as a validated params object (raises :class:`SdnbError` if any is off)."""
        values = {name: _from_widget(self.kinds[name], w.value, w.description) for name, w in self.fields.items()}
        p = self.cls(**values)
        return p.validate() if hasattr(p, "validate") else p

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class WidgetProgress:
    """Progress bar, a status line (done/total, rate, ETA) and a live preview image."""

    def __init__(self) -> None:
        self.bar = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="520px"))
        self.label = W.Label("")
        self.preview = W.Image(format="png", layout=W.Layout(width="256px"))
        self.preview.layout.display = "none"
        self.widget = W.VBox([W.HBox([self.bar, self.label]), self.preview])
        self.t0, self.total, self.what = 0.0, 1, ""

    def start(self, total: int, what: str) -> None:
        self.t0, self.total, self.what = time.perf_counter(), max(1, total), what
        self.bar.max, self.bar.value, self.bar.bar_style = self.total, 0, ""
        self.label.value = f"{what}: starting…"

    def update(self, done: int, preview: Image.Image | None = None) -> None:
        self.bar.value = done
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        self.label.value = f"{self.what}: {done}/{self.total} · {rate:.2f}/s · ETA {eta:.0f} s"
        if preview is not None:
            self.preview.value = png_bytes(preview)
            self.preview.layout.display = ""

    def finish(self, message: str) -> None:
        self.bar.bar_style = "success" if message.startswith("Done") else "warning"
        self.label.value = message


def _tile(item: Image.Image | W.Widget) -> W.Widget:
    if isinstance(item, W.Widget):
        return item
    return W.Image(value=png_bytes(item), format="png", layout=W.Layout(max_width="512px"))


class TaskApp:
    """Form + Generate and Stop buttons + progress + results, around ``task(params, stop=, progress=)``.

    ``show(result)`` turns the task's return value into (image or widget, caption) pairs for the results
    area. :meth:`add_button` adds another task on the same form (e.g. a quick preview).
    """

    def __init__(
        self,
        form: Form,
        task: Callable[..., Any],
        show: Callable[[Any], list[tuple[Image.Image | W.Widget, str]]],
        *,
        button: str = "Generate",
    ) -> None:
        self.form, self.task, self.show = form, task, show
        self.progress = WidgetProgress()
        self.go = W.Button(description=button, button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.message = W.HTML("")
        self.results = W.VBox([])
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.last: Any = None
        self.go.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.buttons = W.HBox([self.go, self.stop_button])
        self.widget = W.VBox([form.widget, self.buttons, self.progress.widget, self.message, self.results])

    def add_button(
        self, label: str, task: Callable[..., Any], show: Callable[[Any], list[tuple[Any, str]]], icon: str = ""
    ) -> W.Button:
        """Another button that runs ``task`` on the same form, with the same Stop, progress and results."""
        button = W.Button(description=label, icon=icon)
        button.on_click(lambda _: self.start(task, show))
        self.buttons.children = (*self.buttons.children[:-1], button, self.stop_button)
        return button

    def start(self, task: Callable[..., Any] | None = None, show: Callable[[Any], list] | None = None) -> None:
        """What the Generate button does: validate, then run the task in a background thread."""
        if self.thread is not None and self.thread.is_alive():
            return
        try:
            params = self.form.params()
        except SdnbError as exc:
            self._error(exc)
            return
        self.message.value = ""
        self.stop_event.clear()
        self._set_running(True)
        self.thread = threading.Thread(
            target=self._run, args=(params, task or self.task, show or self.show), daemon=True
        )
        self.thread.start()

    def _set_running(self, running: bool) -> None:
        for button in self.buttons.children:
            button.disabled = running if button is not self.stop_button else not running

    def stop(self) -> None:
        """What the Stop button does: finish the current step, keep what is done."""
        self.stop_event.set()
        self.stop_button.disabled = True

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the running task ends; returns its result (for tests and scripts)."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.last

    def _run(self, params: Any, task: Callable[..., Any], show: Callable[[Any], list]) -> None:
        try:
            self.last = task(params, stop=self.stop_event, progress=self.progress)
            tiles = [W.VBox([_tile(item), W.Label(caption)]) for item, caption in show(self.last)]
            self.results.children = tuple(tiles) + tuple(self.results.children)
        except SdnbError as exc:
            self._error(exc)
        except Exception as exc:  # noqa: BLE001 - shown in the form, not lost in a thread
            self._error(SdnbError(f"{type(exc).__name__}: {exc}"))
        finally:
            self._set_running(False)

    def _error(self, exc: SdnbError) -> None:
        import html

        hint = f"<br><b>What to do:</b> {html.escape(exc.hint)}" if exc.hint else ""
        self.message.value = f"<div style='color:#b00020'><b>Error:</b> {html.escape(exc.message)}{hint}</div>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
