"""Images in and out: WebUI infotext, safe loading, collision-free saving and labelled grids.

Every image a notebook writes goes through :func:`save_image` (a fresh numbered name, the
``parameters`` text chunk, never an overwrite); every sweep shown goes through :func:`image_grid`.
The infotext follows AUTOMATIC1111's WebUI (``modules/infotext_utils.py``), so images saved here
open in the WebUI's "PNG Info" tab and vice versa.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ExifTags, Image, ImageDraw, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from .errors import SdnbError
from .fonts import PilFont, pil_font

__all__ = [
    "Infotext",
    "format_infotext",
    "parse_infotext",
    "read_infotext",
    "load_image",
    "as_image",
    "fit_image",
    "save_image",
    "image_grid",
    "writable_folder",
    "move_no_replace",
    "slug",
]

# ---------------------------------------------------------------------------------------------
# Infotext: "prompt\nNegative prompt: ...\nSteps: 20, Sampler: Euler a, ..."

# One `Key: value` item of the last line, as the WebUI's pattern reads it: r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'.
# That regex takes quadratic time on hostile lines (a 200 KB line of spaces: minutes), so :func:`_settings_items`
# reads the same items with one linear scan; a test checks both agree.
_KEY = re.compile(r"\w[\w \-/]{0,62}[\w\-/]")
_NEGATIVE = "Negative prompt:"
_MIN_SETTINGS = 3  # the WebUI reads the last line as settings only with this many items


@dataclass(frozen=True)
class Infotext:
    """A parsed infotext: the prompt, the negative prompt and the settings in their order."""

    prompt: str
    negative_prompt: str = ""
    settings: dict[str, str] = field(default_factory=dict)

    def to_text(self) -> str:
        """The WebUI text of this infotext (see :func:`format_infotext`)."""
        return format_infotext(self.prompt, self.negative_prompt, self.settings)


def _quote(value: str) -> str:
    """Quote a value as the WebUI does (a JSON string) when it could break the settings line."""
    if any(c in value for c in ',:"\n\r') or value != value.strip():
        return json.dumps(value, ensure_ascii=False)
    return value


def _normalize(text: str) -> str:
    """What survives the WebUI format: each line stripped, blank lines at both ends dropped."""
    return "\n".join(line.strip() for line in str(text).split("\n")).strip()


def format_infotext(prompt: str, negative_prompt: str, settings: Mapping[str, object]) -> str:
    """Write the WebUI infotext: prompt, ``Negative prompt:`` line (if any), ``Key: value, ...``.

    Settings keep their order; ``None`` values are left out, values with ``,``, ``:`` or ``"``
    are JSON-quoted. Lines are stripped, as the WebUI's reader strips them. Raises
    :class:`SdnbError` when the text would not read back the same with :func:`parse_infotext`.
    """
    prompt, negative = _normalize(prompt), _normalize(negative_prompt)
    items: dict[str, str] = {}
    for key, value in settings.items():
        if value is None:
            continue
        if not _KEY.fullmatch(str(key)):
            raise SdnbError(
                f"Infotext setting name {key!r} cannot be written in the WebUI format.",
                hint="Use letters, digits, spaces, '-' or '/' only, at least two characters, "
                "for example 'CFG scale' or 'Hires upscale'.",
            )
        items[str(key)] = str(value)
    line = ", ".join(f"{key}: {_quote(value)}" for key, value in items.items())
    negative_line = f"\n{_NEGATIVE} {negative}" if negative else ""
    text = f"{prompt}{negative_line}\n{line}".strip()
    if parse_infotext(text) != Infotext(prompt, negative, items):
        raise SdnbError(
            "This prompt and settings cannot be written as a WebUI infotext that reads back the same.",
            hint=f"Give at least {_MIN_SETTINGS} settings (the WebUI only reads the last line as "
            f"settings when it has {_MIN_SETTINGS} 'Key: value' items, so with fewer they would "
            f"turn into prompt text), and start no prompt line with '{_NEGATIVE}'.",
        )
    return text


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        with suppress(ValueError):
            loaded = json.loads(value)
            if isinstance(loaded, str):
                return loaded
    return value


def _is_key_char(c: str) -> bool:
    return c.isalnum() or c in "_ -/"


def _settings_items(line: str) -> list[tuple[str, str]]:
    """The ``(key, raw value)`` items of a settings line, exactly as the WebUI's regex finds them, in linear time.

    An item is a key (a word character, then word characters, spaces, ``-`` or ``/``) ending at a colon, then a
    value: a JSON-quoted string when a comma or the line's end follows its closing quote, else everything up to
    the next comma. Text that is not an item is skipped, as ``re.findall`` skips it.
    """
    items: list[tuple[str, str]] = []
    pos, n = 0, len(line)
    while pos < n:
        colon = line.find(":", pos)
        if colon < 0:
            break
        start = colon
        while start > pos and _is_key_char(line[start - 1]):
            start -= 1
        while start < colon and not (line[start].isalnum() or line[start] == "_"):
            start += 1
        if colon - start < 2:  # no key of two or more characters ends here
            pos = colon + 1
            continue
        k = colon + 1
        while k < n and line[k].isspace():
            k += 1
        end = -1
        if k < n and line[k] == '"':
            m = k + 1
            while m < n and line[m] != '"':
                m += 2 if line[m] == "\\" and m + 1 < n and line[m + 1] != "\n" else 1
            if m < n and m > k + 1 and (m + 1 == n or line[m + 1] == ","):
                end = m + 1
        if end < 0:
            comma = line.find(",", k)
            end = n if comma < 0 else comma
        items.append((line[start:colon], line[k:end]))
        pos = end + 1
    return items


def parse_infotext(text: str) -> Infotext:
    """Read a WebUI infotext with the WebUI's own rules.

    The last line holds the settings only if it has at least 3 ``Key: value`` items; otherwise it
    is prompt text. Lines before it are the prompt until one starts with ``Negative prompt:``;
    from there on they are the negative prompt. Each line is stripped.
    """
    *lines, last = str(text).strip().split("\n")
    items = _settings_items(last)
    if len(items) < _MIN_SETTINGS:
        lines.append(last)
        items = []
    prompt, negative, in_negative = "", "", False
    for line in lines:
        line = line.strip()
        if line.startswith(_NEGATIVE):
            in_negative = True
            line = line[len(_NEGATIVE) :].strip()
        if in_negative:
            negative += ("\n" if negative else "") + line
        else:
            prompt += ("\n" if prompt else "") + line
    settings = {key: _unquote(value) for key, value in items}
    return Infotext(prompt, negative, settings)


def _decode_user_comment(raw: object) -> str | None:
    """An EXIF UserComment: 8-byte charset header, then text (the WebUI writes UTF-16 big-endian)."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, bytes) or len(raw) <= 8:
        return None
    header, body = raw[:8], raw[8:]
    if header == b"UNICODE\0":
        # piexif (used by the WebUI) writes big-endian; Windows tools write little-endian. The settings line is
        # ASCII, whose high bytes are zero: they sit at even offsets in big-endian text, odd in little-endian.
        little = body[1::2].count(0) > body[0::2].count(0)
        return body.decode("utf-16-le" if little else "utf-16-be", errors="replace")
    return body.decode("utf-8", errors="replace").rstrip("\0")


def read_infotext(path: str | os.PathLike[str]) -> str | None:
    """The infotext stored in an image: PNG ``parameters`` chunk, or JPEG/WebP EXIF UserComment.

    Returns ``None`` when the image carries none.
    """
    with _opened(path) as image:
        text = image.info.get("parameters")
        if text is None:
            exif = image.getexif().get_ifd(ExifTags.IFD.Exif)
            text = _decode_user_comment(exif.get(ExifTags.Base.UserComment))
    return str(text) if text else None


# ---------------------------------------------------------------------------------------------
# Loading


@contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    """Open and fully decode an image, turning every way it can fail into one clear error."""
    file = Path(path).expanduser()
    what = f"Cannot read the image '{file}'"
    if file.is_dir():
        hint = "Pass the path of one image file inside it, e.g. 'photo.png'."
        raise SdnbError(f"{what}: it is a folder.", hint=hint)
    if file.is_file() and file.stat().st_size == 0:
        raise SdnbError(
            f"{what}: the file is empty (0 bytes).",
            hint="An upload or download was probably interrupted; copy or download the image again.",
        )
    try:
        image = Image.open(file)
        try:
            image.load()  # decode everything now, so a truncated file fails here, not later
        except BaseException:
            image.close()
            raise
    except FileNotFoundError as exc:
        raise SdnbError(
            f"{what}: there is no such file.",
            hint="Check the spelling and the folder; on Colab, upload the file first (Files panel).",
        ) from exc
    except UnidentifiedImageError as exc:
        raise SdnbError(
            f"{what}: it is not an image file that Pillow recognises (its contents are not PNG, "
            "JPEG, WebP or another image format, whatever its name says).",
            hint="Pass a real image; a model file or a text file renamed to .png will not work.",
        ) from exc
    except Image.DecompressionBombError as exc:
        raise SdnbError(f"{what}: it is too large to open safely ({exc}).", hint="Resize it first.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise SdnbError(
            f"{what}: the file is damaged or incomplete ({exc}).",
            hint="It was probably cut off while being written, copied or downloaded; get it again.",
        ) from exc
    with image:
        yield image


def load_image(path: str | os.PathLike[str], *, mode: str = "RGB") -> Image.Image:
    """Load an image fully into memory, upright (EXIF orientation applied) and in ``mode``.

    The file is closed on return; every failure is an :class:`SdnbError` that names the file.
    """
    if mode not in Image.MODES:
        raise SdnbError(
            f"Unsupported image mode {mode!r} for '{path}'.",
            hint="Use 'RGB' for pictures, 'RGBA' to keep transparency or 'L' for greyscale masks.",
        )
    with _opened(path) as image:
        upright = ImageOps.exif_transpose(image)
        try:
            return upright.convert(mode)
        except ValueError as exc:
            raise SdnbError(
                f"Cannot convert the image '{path}' from mode {image.mode} to mode {mode}.",
                hint="Load it as 'RGB' first, or re-save it as an ordinary RGB PNG or JPEG.",
            ) from exc


#: The longest side an input image keeps; larger ones are scaled down first (with a notice), so a huge photo
#: never fills the memory before it is fitted to the model's size.
MAX_INPUT_SIDE = 4096
#: The shortest side an input image may have: a smaller one holds too little to start from.
MIN_INPUT_SIDE = 8


def _flatten(image: Image.Image) -> Image.Image:
    """Transparent pixels onto white, as the WebUI flattens an RGBA input (its default background)."""
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """A 16- or 32-bit greyscale image scaled to 8 bits (Pillow's own conversion would clip it to white)."""
    import numpy as np

    values = np.asarray(image).astype(np.float64)
    top = 65535.0 if values.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(values * 255.0 / top, 0, 255).round().astype(np.uint8), "L")


def _converted(image: Image.Image, mode: str, name: str) -> Image.Image:
    """``image`` in ``mode``; a picture (``mode`` RGB) in another mode is converted with a notice that says how."""
    if image.mode == mode:
        return image.copy()
    how = ""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image, how = _to_8bit(image), "16-bit greyscale scaled to 8 bits"
    if mode == "RGB":
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image, how = _flatten(image), "its transparent parts put on white, as the WebUI does"
        elif image.mode == "CMYK":
            how = "CMYK (a print colour model) converted to RGB; colours may shift a little"
        elif image.mode == "P":
            how = "a palette image converted to full colour"
        elif image.mode in ("L", "1"):
            how = how or "a greyscale image: the model sees grey, so colours come only from the prompt"
        how = how or f"mode {image.mode} converted to RGB"
        warnings.warn(f"{name}: {how}.", stacklevel=3)
    try:
        return image.convert(mode)
    except ValueError as exc:
        raise SdnbError(f"Cannot convert {name} from mode {image.mode} to mode {mode}.",
                        hint="Re-save it as an ordinary RGB PNG or JPEG.") from exc


def as_image(source: str | os.PathLike[str] | Image.Image, *, mode: str = "RGB") -> Image.Image:
    """An image input (a path or a PIL image) as a new PIL image in ``mode``, ready to be fitted.

    EXIF orientation is applied; a picture that is not RGB (transparent, palette, 16-bit, greyscale, CMYK)
    is converted with a notice; one larger than :data:`MAX_INPUT_SIDE` is scaled down with a notice; one
    smaller than :data:`MIN_INPUT_SIDE` is refused. The caller's image is never changed.
    """
    if isinstance(source, Image.Image):
        name = "The image"
        upright = ImageOps.exif_transpose(source)
    elif isinstance(source, (str, os.PathLike)) and os.fspath(source):
        name = f"'{Path(source).name}'"
        with _opened(source) as image:
            upright = ImageOps.exif_transpose(image)
            upright.load()
    else:
        raise SdnbError(f"An image input must be a file path or a PIL image, not {source!r}.",
                        hint="Pass e.g. 'photo.png', or an image from PIL.Image.open(...).")
    if min(upright.size) < MIN_INPUT_SIDE:
        raise SdnbError(f"{name} is only {upright.width}x{upright.height} pixels: too small to start from.",
                        hint=f"Use an image at least {MIN_INPUT_SIDE} pixels on each side (ideally about the "
                        "output size, e.g. 512x512).")
    if max(upright.size) > MAX_INPUT_SIDE:
        before = upright.size
        upright = upright.copy()
        upright.thumbnail((MAX_INPUT_SIDE, MAX_INPUT_SIDE), Image.LANCZOS)
        warnings.warn(f"{name} is {before[0]}x{before[1]} pixels, more than the model can take: scaled down to "
                      f"{upright.width}x{upright.height} first (it is fitted to the output size next).", stacklevel=2)
    return _converted(upright, mode, name)


def fit_image(image: Image.Image, width: int, height: int, mode: str = "Just resize") -> Image.Image:
    """Fit ``image`` to ``width`` x ``height`` with one of the WebUI's resize modes.

    ``Just resize`` stretches it; ``Crop and resize`` fills the frame and crops the overflow (centred);
    ``Resize and fill`` fits it inside and fills the bands left over by stretching its edge pixels.
    """
    size = (int(width), int(height))
    if mode == "Just resize":
        return image.resize(size, Image.LANCZOS)
    if mode == "Crop and resize":
        return ImageOps.fit(image, size, Image.LANCZOS)
    if mode != "Resize and fill":
        raise SdnbError(f"Unknown resize mode {mode!r}.",
                        hint="Use 'Just resize', 'Crop and resize' or 'Resize and fill'.")
    inner = ImageOps.contain(image, size, Image.LANCZOS)
    left, top = (size[0] - inner.width) // 2, (size[1] - inner.height) // 2
    canvas = Image.new(image.mode, size)
    if left:  # bands at the sides: the first and last columns, stretched
        canvas.paste(inner.crop((0, 0, 1, inner.height)).resize((left, inner.height)), (0, top))
        right = size[0] - left - inner.width
        canvas.paste(inner.crop((inner.width - 1, 0, inner.width, inner.height)).resize((right, inner.height)),
                     (left + inner.width, top))
    if top:  # bands above and below: the first and last rows, stretched
        canvas.paste(inner.crop((0, 0, inner.width, 1)).resize((inner.width, top)), (left, 0))
        bottom = size[1] - top - inner.height
        canvas.paste(inner.crop((0, inner.height - 1, inner.width, inner.height)).resize((inner.width, bottom)),
                     (left, top + inner.height))
    canvas.paste(inner, (left, top))
    return canvas


# ---------------------------------------------------------------------------------------------
# Saving

_NUMBERED = re.compile(r"(\d{5,})(?=[-.])")
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}
_MAX_STEM = 40


def slug(stem: str) -> str:
    """A short file-name-safe version of ``stem``: word characters joined by ``-``."""
    slug = re.sub(r"\W+", "-", str(stem)).strip("-_")
    return slug[:_MAX_STEM].rstrip("-_")


def _next_number(folder: Path) -> int:
    """One more than the largest 5-digit number that starts a name in ``folder`` (0 if none)."""
    numbers = [int(m.group(1)) for name in os.listdir(folder) if (m := _NUMBERED.match(name))]
    return max(numbers, default=-1) + 1


def move_no_replace(src: Path, dst: Path) -> None:
    """Move the finished file ``src`` to ``dst`` atomically, never replacing a file: FileExistsError if taken.

    A hard link claims the name where the file system has them; elsewhere (e.g. Google Drive mounts) the
    name is claimed with an exclusive create and ``src`` is moved over that placeholder.
    """
    if hasattr(os, "link"):
        try:
            os.link(src, dst)  # atomic, and fails if the name is taken
        except FileExistsError:
            raise
        except OSError:
            pass  # no hard links here: claim the name below
        else:
            os.unlink(src)
            return
    os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        os.replace(src, dst)
    except BaseException:
        with suppress(OSError):
            os.unlink(dst)
        raise


def _claim(tmp: Path, folder: Path, slug: str, index: int | None = None) -> Path:
    """Give the finished ``tmp`` file the next free numbered name (or exactly ``index``), never replacing any file."""
    number = _next_number(folder) if index is None else index
    while True:
        final = folder / (f"{number:05d}-{slug}.png" if slug else f"{number:05d}.png")
        try:
            move_no_replace(tmp, final)
            return final
        except FileExistsError:
            if index is not None:
                raise SdnbError(
                    f"Cannot save image number {index} in '{folder}': {final.name} already exists.",
                    hint="sdnb never overwrites a file; remove it yourself if it should be made again.",
                ) from None
            number = max(number + 1, _next_number(folder))


def _unwritable(folder: Path, exc: OSError) -> SdnbError:
    reason = exc.strerror or str(exc)
    return SdnbError(
        f"Cannot save images into the folder '{folder}': {reason}.",
        hint="Set SDNB_OUTPUT_DIR to a folder you can write to (on Colab, e.g. "
        "os.environ['SDNB_OUTPUT_DIR'] = '/content/outputs'), and check there is free disk space.",
    )


def writable_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` if needed and prove it is writable, so a long job fails before it starts."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".sdnb-{secrets.token_hex(8)}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _unwritable(folder, exc) from exc
    return folder


def save_image(
    image: Image.Image,
    folder: str | os.PathLike[str],
    *,
    infotext: str | Infotext | None = None,
    stem: str = "",
    index: int | None = None,
) -> Path:
    """Save ``image`` as a new PNG ``NNNNN-stem.png`` in ``folder`` and return its path.

    The number is one more than the largest in the folder, as in the WebUI, or exactly ``index`` when
    given (a video's frame ``N`` is ``N:05d.png``; an error if that name is taken). The file is written
    under a temporary name and then linked to its final name, so no file is ever overwritten or
    seen half-written, even with several threads or processes saving at once. ``infotext`` goes
    into the PNG ``parameters`` chunk (UTF-8 iTXt when it is not Latin-1, so emoji survive).
    """
    if not isinstance(image, Image.Image):
        raise SdnbError(
            f"save_image needs a PIL image, not {type(image).__name__}.",
            hint="Pass e.g. result.images[0] from a pipeline; turn a numpy array into one with "
            "PIL.Image.fromarray(array).",
        )
    if isinstance(infotext, Infotext):
        infotext = infotext.to_text()
    pnginfo = None
    if infotext:
        pnginfo = PngInfo()
        pnginfo.add_text("parameters", infotext)  # tEXt if Latin-1, else iTXt (UTF-8)
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")

    folder = Path(folder).expanduser()
    tmp = folder / f".sdnb-{secrets.token_hex(8)}.png.part"
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            with os.fdopen(os.open(tmp, flags, 0o666), "wb") as file:
                image.save(file, format="PNG", pnginfo=pnginfo)
                file.flush()
                os.fsync(file.fileno())
            return _claim(tmp, folder, slug(stem), index)
        except OSError as exc:
            raise _unwritable(folder, exc) from exc
    finally:
        with suppress(OSError):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------
# Grids


# Chinese and Japanese have no spaces and Korean may break inside words: a line may break before any CJK
# character, but opening brackets stay with the character after them and closing punctuation with the one before.
_CJK = "\u2e80-\u2fff\u3000-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_OPENING = re.escape("([{“‘《〈「『【〔（［｛")
_CLOSING = re.escape(")]}”’，。、：；！？》〉」』】〕）］｝,.:;!?…")
_PIECE = re.compile(rf"\s+|[{_OPENING}]*[{_CJK}][{_CLOSING}]*|[^\s{_CJK}]+")


def _wrap(text: str, font: PilFont, width: float) -> list[str]:
    """Split ``text`` into lines no wider than ``width`` pixels, at spaces and between CJK characters (a piece
    wider than a line is cut)."""
    lines: list[str] = []
    for paragraph in str(text).split("\n"):
        line, space = "", False
        for match in _PIECE.finditer(paragraph):
            piece = match.group()
            if piece.isspace():
                space = True
                continue
            candidate = f"{line} {piece}" if line and space else line + piece
            space = False
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = piece
            while len(line) > 1 and font.getlength(line) > width:
                cut = max((k for k in range(1, len(line)) if font.getlength(line[:k]) <= width), default=1)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: list[str],
    font: PilFont,
    line_height: int,
    box: tuple[int, int, int, int],
) -> None:
    """Draw ``lines`` centred, horizontally and vertically, in ``box`` (left, top, right, bottom)."""
    left, top, right, bottom = box
    y = top + (bottom - top - len(lines) * line_height) / 2
    for line in lines:
        x = (left + right - font.getlength(line)) / 2
        draw.text((x, y), line, font=font, fill="black")
        y += line_height


#: Cells smaller than this (in pixels) are enlarged with nearest-neighbour so labels stay readable.
MIN_CELL = 160


def image_grid(
    images: Sequence[Image.Image],
    *,
    cols: int | None = None,
    col_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Image.Image:
    """Paste ``images`` into a labelled grid on white, row by row, all at the first image's size.

    ``cols`` defaults to the number of column labels, else to what fits the row labels, else to
    one row up to 8 images and a near-square grid beyond. Labels are wrapped to fit their cell.
    """
    images = list(images)
    if not images:
        raise SdnbError("image_grid got no images.", hint="Pass a list with at least one PIL image.")
    not_images = sorted({type(i).__name__ for i in images if not isinstance(i, Image.Image)})
    if not_images:
        raise SdnbError(
            f"image_grid needs PIL images, got {', '.join(not_images)}.",
            hint="Turn numpy arrays into images with PIL.Image.fromarray(array).",
        )
    count = len(images)
    if cols is None:
        if col_labels:
            cols = len(col_labels)
        elif row_labels:
            cols = math.ceil(count / len(row_labels))
        else:
            cols = count if count <= 8 else math.ceil(math.sqrt(count))
    if cols < 1:
        raise SdnbError(f"image_grid needs at least one column, got cols={cols}.", hint="Pass cols >= 1.")
    rows = math.ceil(count / cols)
    for labels, needed, kind in ((col_labels, cols, "column"), (row_labels, rows, "row")):
        if labels is not None and len(labels) != needed:
            raise SdnbError(
                f"image_grid got {len(labels)} {kind} labels for {needed} {kind}s ({count} images in {cols} columns).",
                hint=f"Give exactly one label per {kind}, or change cols.",
            )

    width, height = images[0].size
    if min(width, height) < MIN_CELL:  # tiny images (tiny mode, previews) are enlarged so labels fit
        factor = math.ceil(MIN_CELL / min(width, height))
        width, height = width * factor, height * factor
        images = [im.resize((width, height), Image.NEAREST) for im in images]
    size = max(14, (width + height) // 25)  # the WebUI's grid label size, never tiny
    text = "\n".join(map(str, [*(row_labels or []), *(col_labels or []), title or ""]))
    font = pil_font(size, text)  # one font for the whole grid: Pillow's own, or a CJK one when a label needs it
    pad, line_height = size // 2, round(size * 1.25)

    left = 0
    row_lines: list[list[str]] = []
    if row_labels:
        widest = max(font.getlength(part) for label in row_labels for part in str(label).split("\n"))
        text_width = min(math.ceil(widest), max(width, 6 * size))
        row_lines = [_wrap(label, font, text_width) for label in row_labels]
        left = text_width + 2 * pad
    col_lines = [_wrap(label, font, width - 2 * pad) for label in col_labels or []]
    labels_height = max(len(lines) for lines in col_lines) * line_height + 2 * pad if col_lines else 0
    grid_width = left + cols * width

    title_lines: list[str] = []
    title_font = pil_font(round(size * 1.3), text)
    title_line_height = round(size * 1.3 * 1.25)
    if title:
        title_lines = _wrap(title, title_font, grid_width - 2 * pad)
    title_height = len(title_lines) * title_line_height + 2 * pad if title_lines else 0

    top = title_height + labels_height
    grid = Image.new("RGB", (grid_width, top + rows * height), "white")
    for index, image in enumerate(images):
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        x, y = left + (index % cols) * width, top + (index // cols) * height
        if "A" in image.getbands() or image.mode == "P":
            rgba = image.convert("RGBA")
            grid.paste(rgba, (x, y), rgba)
        else:
            grid.paste(image.convert("RGB"), (x, y))

    draw = ImageDraw.Draw(grid)
    if title_lines:
        _draw_lines(draw, title_lines, title_font, title_line_height, (0, 0, grid_width, title_height))
    for c, lines in enumerate(col_lines):
        x = left + c * width
        _draw_lines(draw, lines, font, line_height, (x, title_height, x + width, top))
    for r, lines in enumerate(row_lines):
        y = top + r * height
        _draw_lines(draw, lines, font, line_height, (0, y, left, y + height))
    return grid
