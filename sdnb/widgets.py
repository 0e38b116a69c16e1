"""Forms built from the typed params dataclasses, and the Generate/Stop app around any task function.

Every control comes from a field's type and :class:`~sdnb.params.Spec`, so the same :class:`Form` serves
txt2img, img2img, inpainting and the walk: bounded numbers get a slider with a number box beside it, seeds
a dice (random) and a recycle (last seed) button, image and audio paths an upload button, prompts a token
counter. A value out of range is shown as an error beside its field and never changed behind the user's back.

:class:`TaskApp` puts Generate, Stop and Clear, one status line, one live preview that becomes the final
image, a gallery of the session's images and a PNG Info box around a task function. The buttons run the task
in a background thread; a plain cell calls :meth:`TaskApp.run`, during which Stop still works
(:func:`sdnb.uipoll.process_ui_events`). Works with ipywidgets 7.7 (Colab) and 8.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import re
import threading
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W
from PIL import Image

from .errors import Interrupted, SdnbError
from .params import Spec, base_type, item_type, params_from_infotext
from .registry import MODELS, native_size, size_limits
from .settings import output_dir
from .uipoll import process_ui_events

__all__ = ["Form", "TaskApp", "Tile", "WidgetProgress", "error_html", "png_bytes", "script_note", "uploaded_files",
           "save_upload"]

_DESC = "130px"
_STYLE = {"description_width": _DESC}
_WIDE = "min(560px, 100%)"
#: Fields shown side by side, as in the WebUI.
_ROWS = (("width", "height"), ("batch_size", "batch_count"))
#: Path fields that get an upload button, with the files they accept.
_UPLOADS = {"image": "image/*", "mask": "image/*", "depth_map": "image/*", "control_image": "image/*",
            "control2_image": "image/*", "audio": "audio/*"}
_MAX_SLIDER_STEPS = 2000  # wider ranges (seeds) get a number box only
#: Largest file offered as an in-page download link (a data: URL); larger ones are named by path.
_LINK_LIMIT = 30 * 1024**2


def png_bytes(image: Image.Image) -> bytes:
    """PNG-encoded bytes of an image, for ``ipywidgets.Image``."""
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _html(text: str, style: str = "") -> str:
    return f"<div style='white-space:normal;overflow-wrap:anywhere;line-height:1.35;{style}'>{text}</div>"


def _help(text: str) -> W.HTML:
    pad = f"padding-left:calc({_DESC} + 6px);color:#666;font-size:12px;margin-top:-4px"
    return W.HTML(_html(html.escape(text), pad) if text else "")


def error_html(message: str) -> str:
    return _html(f"⚠ {html.escape(message)}", "color:#c92a2a;font-size:12px;font-weight:600") if message else ""


def download_link(path: Path, label: str = "Download") -> str:
    """An in-page download link for a file (works in JupyterLab and Colab alike); large files by path."""
    if not path.is_file():
        return ""
    if path.stat().st_size > _LINK_LIMIT:
        return f"<code>{html.escape(str(path))}</code>"
    mime = {".png": "image/png", ".mp4": "video/mp4", ".jpg": "image/jpeg", ".wav": "audio/wav"}.get(
        path.suffix.lower(), "application/octet-stream")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<a download='{html.escape(path.name)}' href='data:{mime};base64,{data}' "
            f"title='{html.escape(str(path))}'>⬇ {html.escape(label)}</a>")


def video_player(path: Path, width: int = 512) -> W.HTML:
    """A video with play controls at a watchable size (a tiny 64-pixel video is scaled up)."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return W.HTML(f"<video controls loop playsinline style='width:min({width}px,100%);image-rendering:pixelated' "
                  f"src='data:video/mp4;base64,{data}'></video>")


# --------------------------------------------------------------------------------------------- uploads


def uploaded_files(upload: W.FileUpload) -> list[tuple[str, bytes]]:
    """(name, content) of each file in a FileUpload, for ipywidgets 7 (a dict) and 8 (a tuple of dicts)."""
    value = upload.value
    if isinstance(value, dict):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value]


def _clear_upload(upload: W.FileUpload) -> None:
    """Empty a FileUpload, so that picking the same file again is seen as a new upload."""
    if isinstance(upload.value, dict):  # ipywidgets 7: value is read-only, computed from data and metadata
        upload.set_trait("value", {})
    else:
        upload.value = ()


def save_upload(name: str, content: bytes) -> Path:
    """Save an uploaded file under ``output_dir()/uploads`` with a fresh name; returns its path."""
    folder = output_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "upload"
    for n in range(10_000):
        path = folder / (f"{stem}{suffix}" if n == 0 else f"{stem}-{n}{suffix}")
        try:
            with open(path, "xb") as f:  # never overwrite an earlier upload
                f.write(content)
            return path
        except FileExistsError:
            continue
    raise SdnbError(f"Too many uploads named {name!r} in {folder}.", hint="Rename the file and upload it again.")


# --------------------------------------------------------------------------------------------- fields


def _is_prompt(name: str) -> bool:
    return name in ("prompt", "negative_prompt", "prompts")


_LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}


def script_note(text: str, model: str) -> str:
    """A note (never an error) when ``text`` is in a script the model's text encoder was not trained on: what it
    reads, and which registry model reads the prompt's language; empty when the model can read the prompt."""
    from .prompts import unreadable_scripts

    spec = MODELS.get(model)
    languages = spec.languages if spec is not None else ("en",)
    label = spec.label if spec is not None else "this model"
    scripts = unreadable_scripts(text, languages)
    if not scripts:
        return ""
    reads = " and ".join(_LANGUAGE_NAMES.get(code, code) for code in languages)
    readers = [(key, m) for code in sorted(scripts) for key, m in MODELS.items() if code in m.languages]
    if "en" in languages:
        note = (f"This prompt is not in English: {label} reads {reads} (its text encoder was trained on {reads} "
                "captions), so it will mostly ignore these words. Translate the prompt")
    else:
        note = (f"This prompt has words {label} cannot read: it reads {reads} (its text encoder was trained on "
                f"{reads} captions), so it will mostly ignore them. Write the prompt in {reads}")
    if readers:
        key, other = readers[0]
        note += f", or choose the model '{key}' ({other.label})"
    return note + "."


class _Field:
    """One parameter's row: the control holding its value, extra buttons, visible help and an error line."""

    def __init__(self, form: Form, name: str, kind: Any, value: Any, spec: Spec) -> None:
        self.form, self.name, self.kind, self.spec = form, name, kind, spec
        self.item = item_type(kind)
        self.slider: W.Widget | None = None
        self._quiet = False
        self.extras: list[W.Widget] = []
        self.error = W.HTML("")
        self.note = W.HTML("")
        self.control = self._control(value)
        self.control.observe(lambda _: self.check(), names="value")
        row = W.HBox([self.control, *([self.slider] if self.slider else []), *self.extras],
                     layout=W.Layout(align_items="center", flex_flow="row wrap"))
        self.box = W.VBox([row, _help(spec.help), self.note, self.error], layout=W.Layout(margin="0 12px 4px 0"))

    def _control(self, value: Any) -> W.Widget:
        spec, kind, name = self.spec, self.kind, self.name
        common = {"description": spec.label, "style": _STYLE}
        if self.item is str:  # one value per line; as many rows as values
            lines = list(value)
            return W.Textarea(value="\n".join(lines), rows=max(3, len(lines) + 1),
                              layout=W.Layout(width=_WIDE), **common)
        if self.item in (int, float):
            return W.Text(value=", ".join(str(v) for v in value), layout=W.Layout(width=_WIDE), **common)
        if spec.choices:
            options: list = list(spec.choices)
            if name == "model":  # the models' names, not their registry keys
                options = [(MODELS[k].label if k in MODELS else k, k) for k in spec.choices]
            return W.Dropdown(options=options, value=value, layout=W.Layout(width=_WIDE), **common)
        if kind is bool:
            return W.Checkbox(value=value, indent=True, **common)
        if kind is str:
            if spec.multiline:
                return W.Textarea(value=value, rows=3, layout=W.Layout(width=_WIDE), **common)
            box = W.Text(value=value, layout=W.Layout(width=_WIDE if name not in _UPLOADS else "min(440px, 100%)"),
                         **common)
            if name in _UPLOADS:
                self._add_upload(box)
            return box
        if kind in (int, float):
            number = (W.IntText if kind is int else W.FloatText)(
                value=value, step=spec.step or (1 if kind is int else 0.1),
                layout=W.Layout(width=f"calc({_DESC} + 110px)"), **common)
            self._add_slider(number)
            if name == "seed":
                self._add_seed_buttons(number)
            return number
        raise SdnbError(f"No form widget for parameter {name!r} of type {kind!r}.")

    def bounds(self) -> tuple[float | None, float | None]:
        if self.name in ("width", "height") and self.form.model in MODELS:
            return size_limits(self.form.model)
        return self.spec.min, self.spec.max

    def _add_slider(self, number: W.Widget) -> None:
        lo, hi = self.bounds()
        step = self.spec.step or (1 if self.kind is int else 0.1)
        if lo is None or hi is None or (hi - lo) / step > _MAX_SLIDER_STEPS:
            return
        cls = W.IntSlider if self.kind is int else W.FloatSlider
        self.slider = cls(min=lo, max=hi, step=step, value=min(max(number.value, lo), hi), readout=False,
                          continuous_update=True, layout=W.Layout(width="min(260px, 60%)"))

        def from_slider(change: dict) -> None:
            if not self._quiet and number.value != change["new"]:
                number.value = change["new"]

        def from_number(change: dict) -> None:  # the slider follows only values inside its range
            if self.slider is not None and self._in_range(change["new"]):
                self.slider.value = change["new"]

        self.slider.observe(from_slider, names="value")
        number.observe(from_number, names="value")

    def set_bounds(self, lo: float, hi: float) -> None:
        """New bounds (another model's sizes): the slider moves, the value typed is never changed."""
        slider = self.slider
        if slider is not None:
            self._quiet = True  # a slider clamps its value to new bounds: that must not reach the number box
            try:
                if lo > slider.max:
                    slider.max, slider.min = hi, lo
                else:
                    slider.min, slider.max = lo, hi
                if self._in_range(self.control.value):
                    slider.value = self.control.value
            finally:
                self._quiet = False
        self.check()

    def _in_range(self, value: Any) -> bool:
        lo, hi = self.bounds()
        return isinstance(value, (int, float)) and (lo is None or value >= lo) and (hi is None or value <= hi)

    def _add_seed_buttons(self, number: W.Widget) -> None:
        dice = W.Button(description="", icon="random", tooltip="Random seed (-1)", layout=W.Layout(width="40px"))
        recycle = W.Button(description="", icon="recycle", tooltip="Reuse the last seed", layout=W.Layout(width="40px"))
        dice.on_click(lambda _: setattr(number, "value", -1))
        recycle.on_click(lambda _: self.form.last_seed is not None and setattr(number, "value", self.form.last_seed))
        self.extras += [dice, recycle]

    def _add_upload(self, box: W.Text) -> None:
        upload = W.FileUpload(accept=_UPLOADS[self.name], multiple=False, description="Upload",
                              layout=W.Layout(width="110px"))

        def uploaded(_: dict) -> None:
            files = uploaded_files(upload)
            if files:
                box.value = str(save_upload(*files[-1]))
                _clear_upload(upload)

        upload.observe(uploaded, names="value")
        self.extras.append(upload)

    @property
    def value(self) -> Any:
        """The control's value as the params field wants it: lines or comma-separated numbers become tuples."""
        value, item = self.control.value, self.item
        if item is str:
            return tuple(line.strip() for line in str(value).splitlines() if line.strip())
        if item in (int, float):
            parts = [part for part in str(value).replace(",", " ").split() if part]
            try:
                return tuple(item(part) for part in parts)
            except ValueError:
                raise SdnbError(
                    f"{self.spec.label}: {value!r} is not a list of {'whole ' if item is int else ''}numbers.",
                    hint="Separate the numbers with commas, e.g. 42, 7, 1234.",
                ) from None
        return value

    def set(self, value: Any) -> None:
        if self.item is not None:
            value = ("\n" if self.item is str else ", ").join(str(v) for v in value)
        self.control.value = value

    def check(self) -> str:
        """Show (and return) what is wrong with this field's value alone; empty when it is fine."""
        message = ""
        if self.kind in (int, float) and self.item is None and not self.spec.choices:
            value, (lo, hi) = self.control.value, self.bounds()
            if not self._in_range(value):
                message = f"{self.spec.label} must be between {lo:g} and {hi:g}; {value:g} is out of range."
            elif self.name in ("width", "height") and value % 8:
                message = f"{self.spec.label} must be a multiple of 8; try {max(8, round(value / 8) * 8)}."
        elif self.item in (int, float):
            try:
                self.value  # noqa: B018 - parsing is the check
            except SdnbError as exc:
                message = exc.message
        self.error.value = error_html(message)
        if _is_prompt(self.name):
            self.form.count_tokens(self)
        return message


class Form:
    """An ipywidgets form for a params dataclass; :meth:`params` returns the validated values."""

    def __init__(self, params: Any) -> None:
        self.cls = type(params)
        hints = typing.get_type_hints(self.cls)
        start = params.resolved() if hasattr(params, "resolved") else params
        self.model: str = getattr(start, "model", "")
        self.last_seed: int | None = None
        self.tokenizer: Any = None
        self.rows: dict[str, _Field] = {}
        for f in dataclasses.fields(self.cls):
            self.rows[f.name] = _Field(self, f.name, base_type(hints[f.name]), getattr(start, f.name),
                                       f.metadata["spec"])
        #: the value-holding control of each field (a number box beside its slider, a text box beside Upload)
        self.fields: dict[str, W.Widget] = {name: row.control for name, row in self.rows.items()}
        #: the slider of each field that has one
        self.sliders: dict[str, W.Widget] = {name: row.slider for name, row in self.rows.items() if row.slider}
        if "model" in self.rows:
            self.fields["model"].observe(self._model_changed, names="value")
        for row in self.rows.values():
            row.check()
        self.widget = W.VBox(self._layout(), layout=W.Layout(max_width="1200px"))

    def _layout(self) -> list[W.Widget]:
        boxes, placed = [], set()
        pairs = {a: b for a, b in _ROWS if a in self.rows and b in self.rows}
        for name, row in self.rows.items():
            if name in placed:
                continue
            if name in pairs:
                other = pairs[name]
                for half in (row.box, self.rows[other].box):  # side by side, or stacked in a narrow window
                    half.layout.flex, half.layout.min_width = "0 1 auto", "300px"
                boxes.append(W.HBox([row.box, self.rows[other].box], layout=W.Layout(flex_flow="row wrap")))
                placed.add(other)
            else:
                boxes.append(row.box)
        return boxes

    def _model_changed(self, change: dict) -> None:
        self.model = change["new"]
        self.set_tokenizer(None)  # counted with the new model's tokenizer once it is loaded; its script note now
        if "width" not in self.rows:
            return
        lo, hi = size_limits(self.model)
        for name in ("width", "height"):
            self.rows[name].set_bounds(lo, hi)
            self.fields[name].value = native_size(self.model)

    def count_tokens(self, row: _Field) -> None:
        """The prompt's token count ("14/75", WebUI style) and a note when it is not English."""
        text = str(row.control.value)
        notes = []
        if self.tokenizer is not None:
            from .prompts import chunk_size, prompt_chunks

            try:  # weights, BREAK and <lora:...> tags are syntax, not tokens: count as the encoder will
                size = chunk_size(self.tokenizer)
                parts = [prompt_chunks(self.tokenizer, t) for t in (text.splitlines() if row.item is str else [text])]
            except SdnbError:
                size, parts = 0, []
            n = max((sum(len(c.ids) for c in p) for p in parts), default=0)
            chunks = max((len(p) for p in parts), default=1)
            notes.append(f"<b>{n}/{size * chunks}</b> tokens" + (f" ({chunks} chunks of {size})" if chunks > 1
                                                                  else ""))
        else:
            notes.append("token count: shown once the model is loaded")
        note = script_note(text, self.model)
        if note:
            notes.append(f"<span style='color:#c92a2a'>{html.escape(note)}</span>")
        style = f"padding-left:calc({_DESC} + 6px);font-size:12px;color:#444"
        row.note.value = _html(" · ".join(notes), style)

    def set_tokenizer(self, tokenizer: Any) -> None:
        """Count prompt tokens with this tokenizer (the loaded model's) from now on (``None``: not loaded yet)."""
        self.tokenizer = tokenizer
        for name, row in self.rows.items():
            if _is_prompt(name):
                self.count_tokens(row)

    def problems(self) -> dict[str, str]:
        """Field name -> what is wrong with it on its own (shown beside each field)."""
        return {name: msg for name, row in self.rows.items() if (msg := row.check())}

    def params(self) -> Any:
        """The form's values as a validated params object (raises :class:`SdnbError` if any is off)."""
        problems = self.problems()
        if problems:
            raise SdnbError("These settings need fixing: " + " ".join(problems.values()),
                            hint="Each problem is shown in red beside its field.")
        p = self.cls(**{name: row.value for name, row in self.rows.items()})
        return p.validate() if hasattr(p, "validate") else p

    def set_params(self, params: Any) -> list[str]:
        """Fill the form from a params object (e.g. read from a PNG); returns the labels it changed."""
        changed = []
        values = params.resolved() if hasattr(params, "resolved") else params
        for name, row in self.rows.items():
            if not hasattr(values, name):
                continue
            value = getattr(values, name)
            if row.spec.choices and value not in row.spec.choices:
                continue
            if row.value != value:
                row.set(value)
                changed.append(row.spec.label)
        return changed

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# --------------------------------------------------------------------------------------------- progress


class WidgetProgress:
    """A progress bar with a status line that wraps, and one stage: the labelled live preview while a task
    runs, replaced by the final image (or a notice) when it ends."""

    def __init__(self) -> None:
        self.bar = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width=_WIDE))
        self.status = W.HTML("")
        self.stage_label = W.HTML("")
        self.stage_image = W.Image(format="png", layout=W.Layout(width="min(384px, 100%)", display="none"))
        self.stage_other = W.Box([])
        self.stage = W.VBox([self.stage_label, self.stage_image, self.stage_other])
        self.widget = W.VBox([self.bar, self.status])
        self.t0, self.total, self.what, self.message = 0.0, 1, "", ""
        self.on_update: Callable[[], None] | None = None  # set by TaskApp.run: serve the widgets meanwhile

    def _say(self, text: str, color: str = "#333") -> None:
        self.message = text
        self.status.value = _html(html.escape(text).replace("\n", "<br>"), f"color:{color}")

    def start(self, total: int, what: str) -> None:
        self.t0, self.total, self.what = time.perf_counter(), max(1, total), what
        self.bar.max, self.bar.value, self.bar.bar_style = self.total, 0, ""
        self._say(f"{what}: starting…")
        if self.on_update is not None:
            self.on_update()

    def update(self, done: int, preview: Image.Image | None = None) -> None:
        self.bar.value = min(done, self.bar.max)
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        self._say(f"{self.what}: {done}/{self.total} · {rate:.2f}/s · about {eta:.0f} s left")
        if preview is not None:
            self.show_image(preview, f"Live preview (blocky, from the latents) · {self.what.lower()} "
                                     f"{done}/{self.total}")
        if self.on_update is not None:
            self.on_update()

    def finish(self, message: str) -> None:
        self.bar.bar_style = "success" if message.startswith("Done") else "warning"
        self._say(message, "#2b8a3e" if message.startswith("Done") else "#b35c00")

    def show_image(self, image: Image.Image, label: str) -> None:
        """Put ``image`` on the stage with ``label`` above it (the live preview, then the final image)."""
        self.stage_image.value = png_bytes(image)
        self.stage_image.layout.display = ""
        self.stage_label.value = _html(f"<b>{html.escape(label)}</b>", "font-size:13px")
        self.stage_other.children = ()

    def show_widget(self, widget: W.Widget, label: str) -> None:
        """Put a widget (a video) on the stage instead of an image."""
        self.stage_image.layout.display = "none"
        self.stage_label.value = _html(f"<b>{html.escape(label)}</b>", "font-size:13px")
        self.stage_other.children = (widget,)

    def notice(self, text: str) -> None:
        """Clear the stage and say why there is nothing to show."""
        self.stage_image.layout.display = "none"
        self.stage_other.children = ()
        self.stage_label.value = _html(f"ⓘ {html.escape(text)}",
                                       "background:#fff4e6;border-left:4px solid #d9480f;padding:6px 10px")

    def clear(self) -> None:
        self.stage_image.layout.display = "none"
        self.stage_other.children = ()
        self.stage_label.value = ""
        self.bar.value, self.bar.bar_style = 0, ""
        self._say("")


# --------------------------------------------------------------------------------------------- results


@dataclasses.dataclass
class Tile:
    """One result for the gallery: an image (or a widget such as a video) with what made it."""

    item: Image.Image | W.Widget
    caption: str
    seed: int | None = None
    infotext: str = ""
    path: Path | None = None


def _card(tile: Tile, reuse: Callable[[int], None] | None) -> W.VBox:
    if isinstance(tile.item, Image.Image):
        view: W.Widget = W.Image(value=png_bytes(tile.item), format="png",
                                 layout=W.Layout(width="min(256px, 100%)"))
    else:
        view = tile.item
    parts = [f"<b>{html.escape(tile.caption)}</b>"]
    if tile.path is not None:
        parts.append(download_link(tile.path) + f" <span style='color:#666'>{html.escape(tile.path.name)}</span>")
    if tile.infotext:
        parts.append(f"<details><summary>Settings</summary><pre style='white-space:pre-wrap;font-size:11px;"
                     f"margin:2px 0'>{html.escape(tile.infotext)}</pre></details>")
    children = [view, W.HTML(_html("<br>".join(parts), "font-size:12px"))]
    if tile.seed is not None and reuse is not None:
        button = W.Button(description=f"Reuse seed {tile.seed}", icon="recycle", layout=W.Layout(width="auto"))
        button.on_click(lambda _: reuse(tile.seed))
        children.append(button)
    width = "min(276px, 100%)" if isinstance(tile.item, Image.Image) else "min(540px, 100%)"
    return W.VBox(children, layout=W.Layout(width=width, margin="0 10px 12px 0", border="1px solid #ddd",
                                            padding="6px"))


class TaskApp:
    """Form + Generate, Stop and Clear + status + one stage (live preview, then the final image) + a gallery
    of this session's results + a PNG Info box, around ``task(params, stop=, progress=)``.

    ``show(result)`` turns the task's return value into :class:`Tile` objects for the gallery.
    :meth:`add_button` adds another task on the same form (e.g. a quick preview). ``again`` finishes the
    one line a stopped plain cell ends with (what running it again does).
    """

    def __init__(
        self,
        form: Form,
        task: Callable[..., Any],
        show: Callable[[Any], list[Tile]],
        *,
        button: str = "Generate",
        again: str = "run this cell again to start anew",
    ) -> None:
        self.form, self.task, self.show, self.again = form, task, show, again
        self.progress = WidgetProgress()
        self.go = W.Button(description=button, button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                    tooltip="End after the current step; finished images are kept")
        self.clear_button = W.Button(description="Clear", icon="trash", tooltip="Empty the gallery (files stay)")
        self.message = W.HTML("")
        self.gallery = W.Box([], layout=W.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
        self.gallery_title = W.HTML("")
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.running = False
        self.last: Any = None
        self._polled = 0.0
        self._show_for: dict[Any, Callable[[Any], list[Tile]]] = {}
        self.go.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.clear_button.on_click(lambda _: self.clear())
        self.buttons = W.HBox([self.go, self.stop_button, self.clear_button])
        self.pnginfo = self._png_info()
        self.widget = W.VBox([form.widget, self.buttons, self.progress.widget, self.message, self.progress.stage,
                              self.gallery_title, self.gallery, self.pnginfo])

    @property
    def results(self) -> W.Box:
        """The gallery (newest first)."""
        return self.gallery

    def add_button(self, label: str, task: Callable[..., Any], show: Callable[[Any], list[Tile]],
                   icon: str = "", first: bool = False) -> W.Button:
        """Another button that runs ``task`` on the same form, with the same Stop, progress and results."""
        button = W.Button(description=label, icon=icon, button_style="info" if first else "")
        button.on_click(lambda _: self.start(task, show))
        self._show_for[task] = show
        others = [b for b in self.buttons.children if b not in (self.stop_button, self.clear_button)]
        ordered = [button, *others] if first else [*others, button]
        self.buttons.children = (*ordered, self.stop_button, self.clear_button)
        return button

    # ------------------------------------------------------------------ running

    def _begin(self) -> None:
        self.message.value = ""
        self.stop_event.clear()
        self.running = True
        self._set_running(True)

    def start(self, task: Callable[..., Any] | None = None, show: Callable[[Any], list] | None = None) -> None:
        """What the Generate button does: validate, then run the task in a background thread."""
        if self.running:
            return
        try:
            params = self.form.params()
        except SdnbError as exc:
            self._error(exc)
            return
        self._begin()
        self.thread = threading.Thread(target=self._run_thread, args=(params, task or self.task, show or self.show),
                                       daemon=True)
        self.thread.start()

    def _run_thread(self, params: Any, task: Callable[..., Any], show: Callable[[Any], list]) -> None:
        try:
            self.last = task(params, stop=self.stop_event, progress=self.progress)
            self._show_result(params, self.last, show)
        except SdnbError as exc:
            self._error(exc)
        except Exception as exc:  # noqa: BLE001 - shown in the form, not lost in a thread
            self._error(SdnbError(f"{type(exc).__name__}: {exc}"))
        finally:
            self._end()

    def run(self, task: Callable[..., Any] | None = None, params: Any = None, **options: Any) -> Any:
        """Run ``task`` (default: the app's) in this cell with the form's values (or ``params``), as a plain
        cell does for *Run all*: the live preview, the gallery and Stop all work while it runs.

        Stop (or the kernel's stop button) ends it after the current step with one line, and *Run all* stops
        there; the finished files are kept. Returns what the task returns.
        """
        if self.running:
            raise SdnbError("This form is already running a task.", hint="Wait for it, or press Stop.")
        params = self.form.params() if params is None else params
        show = self._show_for.get(task, self.show)
        self._begin()
        self.progress.on_update = self._poll
        try:
            self.last = result = (task or self.task)(params, stop=self.stop_event, progress=self.progress, **options)
            self._show_result(params, result, show)
        except KeyboardInterrupt as exc:  # Stop (raised by _poll) or the kernel's stop button
            partial = getattr(exc, "result", None)
            if partial is not None:
                self._show_result(params, partial, show)
            if not isinstance(exc, Interrupted):  # a task without its own one-line message
                self.progress.finish(f"Stopped at {self.progress.what.lower()} {self.progress.bar.value}/"
                                     f"{self.progress.total}.")
                raise Interrupted(f"{self.progress.message} To go on, {self.again}.", partial) from None
            raise
        finally:
            self.progress.on_update = None
            self._end()
        if getattr(result, "interrupted", False):  # stopped between two steps: the same one line
            raise Interrupted(f"{self.progress.message.splitlines()[0]} To go on, {self.again}.", result)
        return result

    def _poll(self) -> None:
        """Called by every progress update of :meth:`run`: serve the widgets; after Stop, interrupt the task
        exactly as the kernel's stop button does (it keeps what is finished and says so in one line)."""
        now = time.perf_counter()
        if now - self._polled >= 0.1:  # a click is seen within a tenth of a second of the next step
            self._polled = now
            process_ui_events()
        if self.stop_event.is_set():
            raise KeyboardInterrupt

    def _set_running(self, running: bool) -> None:
        for button in self.buttons.children:
            button.disabled = (not running) if button is self.stop_button else running

    def _end(self) -> None:
        self.running = False
        self._set_running(False)

    def stop(self) -> None:
        """What the Stop button does: finish the current step, keep what is done."""
        self.stop_event.set()
        self.stop_button.disabled = True
        self.progress._say("Stopping after the current step…", "#b35c00")

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the running task ends; returns its result (for tests and scripts)."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.last

    # ------------------------------------------------------------------ results

    def _show_result(self, params: Any, result: Any, show: Callable[[Any], list[Tile]]) -> None:
        tiles = show(result)
        seeds = [t.seed for t in tiles if t.seed is not None]
        if seeds:
            self.form.last_seed = seeds[-1]
        images = [t for t in tiles if isinstance(t.item, Image.Image)]
        if not tiles:
            self.progress.notice("Stopped before anything was finished: nothing was saved. Press the button "
                                 "again to start anew.")
        elif len(images) == 1:
            self.progress.show_image(images[0].item, f"Final image · {images[0].caption}")
        elif images:
            from .images import image_grid

            grid = image_grid([t.item for t in images], col_labels=[t.caption for t in images])
            self.progress.show_image(grid, f"Final images ({len(images)})")
        else:
            self.progress.show_widget(tiles[0].item, tiles[0].caption)
        if tiles:
            self.gallery.children = tuple(_card(t, self._reuse_seed) for t in tiles) + tuple(self.gallery.children)
            self.gallery_title.value = _html(f"<b>This session's results</b> ({len(self.gallery.children)}), "
                                             "newest first", "margin-top:8px")
        self._load_tokenizer(params)

    def _load_tokenizer(self, params: Any) -> None:
        if self.form.tokenizer is not None or not hasattr(params, "model"):
            return
        try:
            from .models import load_pipeline

            options = params.load_options() if hasattr(params, "load_options") else {"task": "txt2img"}
            self.form.set_tokenizer(load_pipeline(params.model, **options).tokenizer)
        except Exception:  # noqa: BLE001 - the counter is a help, never a reason to fail a run
            pass

    def _reuse_seed(self, seed: int) -> None:
        if "seed" in self.form.fields:
            self.form.fields["seed"].value = seed

    def clear(self) -> None:
        """Empty the gallery and the stage (the files stay on disk)."""
        self.gallery.children = ()
        self.gallery_title.value = ""
        self.message.value = ""
        self.progress.clear()

    def _error(self, exc: SdnbError) -> None:
        hint = f"<br><b>What to do:</b> {html.escape(exc.hint)}" if exc.hint else ""
        self.message.value = _html(f"<b>Error:</b> {html.escape(exc.message)}{hint}", "color:#b00020")

    # ------------------------------------------------------------------ PNG Info

    def _png_info(self) -> W.VBox:
        upload = W.FileUpload(accept=".png,.jpg,.jpeg,.webp", multiple=False, description="PNG Info")
        self.pnginfo_upload = upload
        self.pnginfo_text = W.HTML("")

        def uploaded(_: dict) -> None:
            files = uploaded_files(upload)
            if files:
                self.read_png_info(save_upload(*files[-1]))
                _clear_upload(upload)

        upload.observe(uploaded, names="value")
        intro = W.HTML(_html("<b>PNG Info</b>: upload a PNG made here or by the AUTOMATIC1111 WebUI to fill the form "
                             "with its settings.", "font-size:12px;color:#444"))
        return W.VBox([intro, upload, self.pnginfo_text], layout=W.Layout(margin="10px 0 0 0"))

    def read_png_info(self, path: str | Path) -> list[str]:
        """Fill the form from the parameters stored in an image; returns the labels of the fields it changed."""
        from .images import read_infotext

        try:
            text = read_infotext(path)
            if not text:
                raise SdnbError(f"{Path(path).name} has no generation parameters.",
                                hint="Use a PNG saved by sdnb or by the WebUI with metadata enabled.")
            changed = self.form.set_params(params_from_infotext(text))
        except SdnbError as exc:
            self.pnginfo_text.value = error_html(exc.message + (f" {exc.hint}" if exc.hint else ""))
            return []
        except Exception as exc:  # noqa: BLE001 - an unreadable upload is the user's to fix
            self.pnginfo_text.value = error_html(f"Could not read {Path(path).name}: {exc}")
            return []
        done = f"Filled: {', '.join(changed)}." if changed else "The form already had these settings."
        self.pnginfo_text.value = _html(f"{html.escape(done)}<pre style='white-space:pre-wrap;font-size:11px'>"
                                        f"{html.escape(text)}</pre>", "font-size:12px")
        return changed

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
