"""ControlNet inputs: the preprocessors that turn a picture into what a ControlNet reads, and control units.

Each preprocessor returns an RGB control map the size of its input, to preview before generating: ``canny``
(OpenCV edges, two thresholds), ``depth`` (the DPT depth estimator of the SD 2 depth model, tiny or real),
``lineart`` (the weight-free "standard" line art: each pixel's darkness against its blurred surroundings),
``scribble`` (a drawing from a file, made white-on-black), and ``openpose`` (the OpenPose stick figure drawn from
keypoints edited in code or loaded from JSON, so a class can pose a figure without a detector), or
``openpose_detect`` (the figure found in a photo by controlnet-aux's OpenPose detector, in real mode). A
:class:`ControlUnit` is one ControlNet with its image, weight, start, end and control mode, as the WebUI
extension's units are.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .controlmode import CONTROL_MODES
from .errors import SdnbError
from .images import as_image, fit_image
from .registry import CONTROLNETS, MODELS
from .settings import is_tiny
from .tiny import tiny_model_dir

__all__ = [
    "MODULES",
    "CONTROL_MODES",
    "KEYPOINTS",
    "LIMBS",
    "DEFAULT_POSE",
    "ControlUnit",
    "canny",
    "depth_map",
    "lineart",
    "scribble",
    "draw_pose",
    "pose_from_json",
    "PoseEditor",
    "save_pose",
    "pose_to_json",
    "detect_pose",
    "POSE_DETECTOR_REPO",
    "preprocess",
    "control_source",
    "control_map",
]

#: What a unit does to its image first ("openpose": a figure drawn from keypoints, or already drawn;
#: "openpose_detect": the figure detected in a photo, real mode only; "none": the image already is a control map).
MODULES: tuple[str, ...] = ("canny", "depth", "lineart", "scribble", "openpose", "openpose_detect", "none")


#: OpenPose's 18 body keypoints (COCO order), as its JSON and the ControlNet OpenPose model use them.
KEYPOINTS: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
    "right_ear", "left_ear",
)

#: The limbs OpenPose draws (pairs of keypoint indices) and its colours: the ControlNet model learned these.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)

Pose = dict[str, tuple[float, float]]

#: A person standing with arms half raised, as fractions of the width and height (x right, y down).
DEFAULT_POSE: Pose = {
    "nose": (0.5, 0.16), "neck": (0.5, 0.26), "right_shoulder": (0.4, 0.27), "right_elbow": (0.3, 0.38),
    "right_wrist": (0.24, 0.26), "left_shoulder": (0.6, 0.27), "left_elbow": (0.7, 0.38), "left_wrist": (0.78, 0.46),
    "right_hip": (0.44, 0.54), "right_knee": (0.42, 0.72), "right_ankle": (0.41, 0.9), "left_hip": (0.56, 0.54),
    "left_knee": (0.6, 0.72), "left_ankle": (0.62, 0.9), "right_eye": (0.48, 0.14), "left_eye": (0.52, 0.14),
    "right_ear": (0.46, 0.15), "left_ear": (0.54, 0.15),
}


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise SdnbError("The canny, line art and pose preprocessors need OpenCV, which is not installed.",
                        hint="pip install opencv-python-headless") from None
    return cv2


def _rgb(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).convert("RGB")


def canny(image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """White edges on black (OpenCV's Canny): gradients above ``high`` start an edge, above ``low`` extend it."""
    if not 0 <= low <= high <= 255:
        raise SdnbError(f"Canny thresholds must satisfy 0 <= low <= high <= 255 (got low {low}, high {high}).",
                        hint="Lower the low threshold or raise the high one: 100 and 200 are the usual values.")
    return _rgb(_cv2().Canny(np.asarray(image.convert("RGB")), low, high))


def lineart(image: Image.Image) -> Image.Image:
    """White lines on black where the picture is darker than its blurred surroundings (the weight-free
    "standard" line art of the WebUI extension and controlnet-aux)."""
    cv2 = _cv2()
    x = np.asarray(image.convert("RGB")).astype(np.float32)
    blurred = cv2.GaussianBlur(x, (0, 0), 6.0)
    intensity = np.min(blurred - x, axis=2).clip(0, 255)
    strong = intensity[intensity > 8]
    intensity /= max(16.0, float(np.median(strong)) if strong.size else 16.0)
    return _rgb(intensity * 127)


def scribble(image: Image.Image) -> Image.Image:
    """A drawing as white strokes on black: dark strokes on a light page are inverted first."""
    gray = np.asarray(image.convert("L")).astype(np.float32)
    if np.median(gray) > 127:  # drawn dark on a light page
        gray = 255 - gray
    return _rgb(np.where(gray > 64, 255, 0))


_DEPTH: dict[str, tuple[Any, Any]] = {}


def _depth_estimator() -> tuple[Any, Any]:
    """The DPT depth estimator and its image processor from the SD 2 depth model (tiny in tiny mode), loaded once."""
    where = str(tiny_model_dir("sd2-depth")) if is_tiny() else MODELS["sd2-depth"].repo
    if where not in _DEPTH:
        import transformers
        from transformers import AutoImageProcessor, DPTForDepthEstimation

        transformers.utils.logging.disable_progress_bar()  # no loading bars in notebook outputs
        try:
            model = DPTForDepthEstimation.from_pretrained(where, subfolder="depth_estimator")
            processor = AutoImageProcessor.from_pretrained(where, subfolder="feature_extractor")
        except OSError as exc:
            raise SdnbError(f"Cannot load the depth estimator of {where}: {exc}",
                            hint="Check the network and the hub login, or run in tiny mode (SDNB_TINY=1).") from exc
        _DEPTH.clear()  # one estimator in memory
        _DEPTH[where] = (model.eval(), processor)
    return _DEPTH[where]


def depth_map(image: Image.Image) -> Image.Image:
    """Near = white, far = black: the depth the DPT estimator of the SD 2 depth model sees, the image's size."""
    import torch

    model, processor = _depth_estimator()
    rgb = image.convert("RGB")
    with torch.no_grad():
        pixels = processor(images=rgb, return_tensors="pt").pixel_values.to(model.device, model.dtype)
        depth = model(pixel_values=pixels).predicted_depth[:, None].float()
        depth = torch.nn.functional.interpolate(depth, size=rgb.size[::-1], mode="bicubic")[0, 0]
    low, high = float(depth.min()), float(depth.max())
    return _rgb(((depth - low) / max(high - low, 1e-8) * 255).cpu().numpy())


def draw_pose(people: Pose | list[Pose], width: int, height: int) -> Image.Image:
    """The OpenPose stick figure(s) on black: limbs as coloured ellipses, joints as dots, in OpenPose's colours.

    Each person maps keypoint names (:data:`KEYPOINTS`) to ``(x, y)`` fractions of the width and height;
    missing keypoints and the limbs that need them are left out.
    """
    cv2 = _cv2()
    canvas = np.zeros((height, width, 3), np.uint8)
    stick = max(1, round(4 * min(width, height) / 512))
    for person in [people] if isinstance(people, dict) else people:
        _check_person(person)
        points = {KEYPOINTS.index(k): (x * width, y * height) for k, (x, y) in person.items()}
        for n, (a, b) in enumerate(LIMBS):
            if a not in points or b not in points:
                continue
            (xa, ya), (xb, yb) = points[a], points[b]
            length = float(np.hypot(xa - xb, ya - yb))
            angle = float(np.degrees(np.arctan2(ya - yb, xa - xb)))
            polygon = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), stick),
                                       int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, [int(c * 0.6) for c in _COLORS[n]])
        for index, (x, y) in points.items():
            cv2.circle(canvas, (int(x), int(y)), stick, _COLORS[index], thickness=-1)
    return Image.fromarray(canvas)


def _check_person(person: Any) -> None:
    if not isinstance(person, dict):
        raise SdnbError(f"A pose is a mapping of keypoint names to (x, y) fractions, not {type(person).__name__}.",
                        hint=f"For example {{'neck': (0.5, 0.26), 'nose': (0.5, 0.16)}}; names: {', '.join(KEYPOINTS)}.")
    unknown = sorted(set(person) - set(KEYPOINTS))
    if unknown:
        raise SdnbError(f"Unknown pose keypoint(s) {', '.join(map(repr, unknown))}.",
                        hint=f"Use OpenPose's names: {', '.join(KEYPOINTS)}.")
    for name, point in person.items():
        ok = isinstance(point, (tuple, list)) and len(point) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in point)
        if not ok:
            raise SdnbError(f"Keypoint {name!r} must be (x, y) with both between 0 and 1 (got {point!r}).",
                            hint="Give positions as fractions of the width and height: (0.5, 0.5) is the centre.")


class PoseEditor:
    """A form to pose a figure: an x and a y slider per keypoint (fractions of the width and height) beside a
    live preview of the stick figure. Display it in a cell; :meth:`pose` reads the pose as it is now."""

    def __init__(self, pose: Pose | None = None, size: int = 256) -> None:
        import ipywidgets as widgets

        start = dict(DEFAULT_POSE if pose is None else pose)
        _check_person(start)
        self.size = size
        self.preview = widgets.Image(format="png", width=size, height=size)
        self.sliders: dict[str, tuple[Any, Any]] = {}
        rows = []
        for name in KEYPOINTS:
            x, y = start.get(name, DEFAULT_POSE[name])
            pair = tuple(widgets.FloatSlider(value=v, min=0.0, max=1.0, step=0.01, description=axis,
                                             continuous_update=False, layout=widgets.Layout(width="190px"),
                                             style={"description_width": "12px"})
                         for v, axis in ((x, "x"), (y, "y")))
            for slider in pair:
                slider.observe(lambda change: self._redraw(), names="value")
            self.sliders[name] = pair
            rows.append(widgets.HBox([widgets.Label(name.replace("_", " "), layout=widgets.Layout(width="100px")),
                                      *pair]))
        self.box = widgets.HBox([widgets.VBox(rows), self.preview])
        self._redraw()

    def pose(self) -> Pose:
        """The keypoints as the sliders set them."""
        return {name: (x.value, y.value) for name, (x, y) in self.sliders.items()}

    def _redraw(self) -> None:
        import io

        buffer = io.BytesIO()
        draw_pose(self.pose(), self.size, self.size).save(buffer, "PNG")
        self.preview.value = buffer.getvalue()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


def pose_to_json(people: Pose | list[Pose], width: int = 512, height: int = 512) -> str:
    """OpenPose JSON (``people[].pose_keypoints_2d`` as x, y, confidence in pixels), as pose editors write it."""
    people = [people] if isinstance(people, dict) else people
    out = []
    for person in people:
        _check_person(person)
        flat: list[float] = []
        for name in KEYPOINTS:
            x, y = person.get(name, (0.0, 0.0))
            flat += [round(x * width, 2), round(y * height, 2), 1.0 if name in person else 0.0]
        out.append({"pose_keypoints_2d": flat})
    return json.dumps({"canvas_width": width, "canvas_height": height, "people": out})


def save_pose(people: Pose | list[Pose], folder: str | os.PathLike, width: int = 512, height: int = 512) -> Path:
    """Write the pose as OpenPose JSON into ``folder`` (``pose-<hash>.json``: the same pose, the same file; no
    other file is ever replaced) and return its path, for a unit's control image."""
    import hashlib

    text = pose_to_json(people, width, height)
    path = Path(folder) / f"pose-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        tmp = path.with_suffix(".json.part")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def pose_from_json(source: str | os.PathLike) -> list[Pose]:
    """The people of an OpenPose JSON file or text (pixels with ``canvas_width``/``canvas_height``, or fractions)."""
    text = Path(source).read_text() if Path(str(source)).suffix.lower() == ".json" else str(source)
    where = f"The pose JSON {source}" if Path(str(source)).suffix.lower() == ".json" else "The pose JSON"
    hint = ('Use OpenPose\'s format: {"canvas_width": 512, "canvas_height": 512, "people": [{"pose_keypoints_2d": '
            "[x, y, confidence, ... for 18 keypoints]}]} (pose_to_json writes it).")
    try:
        data = json.loads(text)
        width, height = float(data.get("canvas_width", 1)), float(data.get("canvas_height", 1))
        people = []
        for person in data["people"]:
            flat = [float(v) for v in person["pose_keypoints_2d"]]
            if len(flat) != 3 * len(KEYPOINTS):
                raise ValueError(f"{len(flat)} numbers in pose_keypoints_2d instead of {3 * len(KEYPOINTS)}")
            people.append({name: (flat[3 * i] / width, flat[3 * i + 1] / height)
                           for i, name in enumerate(KEYPOINTS) if flat[3 * i + 2] > 0})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SdnbError(f"{where} is malformed: {exc}.", hint=hint) from None
    if not people:
        raise SdnbError(f"{where} has no people in it.", hint=hint)
    for person in people:
        try:
            _check_person(person)
        except SdnbError as exc:
            raise SdnbError(f"{where} is malformed: {exc.message}", hint=hint) from None
    return people


#: Where controlnet-aux's OpenPose detector downloads its weights (``body_pose_model.pth``).
POSE_DETECTOR_REPO = "lllyasviel/Annotators"
_POSE_DETECTOR: list[Any] = []
_KEYPOINTS_INSTEAD = ("Pose the figure with keypoints instead: drag the sliders of PoseEditor (or set them in "
                      "code, draw_pose), save it with save_pose and give that .json to a unit with the 'openpose' "
                      "preprocessor; an OpenPose .json made elsewhere works too.")


def _pose_detector() -> Any:
    """controlnet-aux's OpenPose body detector, loaded once (real mode)."""
    if is_tiny():
        raise SdnbError("Detecting a pose in a photo needs the real OpenPose detector, and tiny mode uses no real "
                        "weights.", hint=_KEYPOINTS_INSTEAD + " In real mode, with controlnet-aux installed, the "
                        "'openpose_detect' preprocessor finds the pose in a photo.")
    try:
        from controlnet_aux import OpenposeDetector
    except ImportError:
        raise SdnbError("Detecting a pose in a photo needs controlnet-aux, which is not installed.",
                        hint="pip install 'controlnet-aux>=0.0.10' (or sdnb's extra: pip install 'sdnb[pose]') and "
                        "restart the runtime. " + _KEYPOINTS_INSTEAD) from None
    if not _POSE_DETECTOR:
        try:
            detector = OpenposeDetector.from_pretrained(POSE_DETECTOR_REPO)
        except Exception as exc:  # noqa: BLE001 - every hub/IO failure becomes one clear paragraph
            raise SdnbError(f"Cannot load the OpenPose detector from {POSE_DETECTOR_REPO}: {type(exc).__name__}: "
                            f"{exc}", hint="Check the network (or the mirror set with sdnb.settings.set_mirror). "
                            + _KEYPOINTS_INSTEAD) from None
        import torch

        if torch.cuda.is_available() and hasattr(detector, "to"):
            detector = detector.to("cuda")
        _POSE_DETECTOR.append(detector)
    return _POSE_DETECTOR[0]


def detect_pose(image: Image.Image) -> Image.Image:
    """The OpenPose stick figure(s) of the people in a photo, the photo's size (controlnet-aux's detector with
    the ``lllyasviel/Annotators`` weights: real mode only; in tiny mode or without controlnet-aux the error
    says how to pose a figure from keypoints instead)."""
    rgb = image.convert("RGB")
    figure = _pose_detector()(rgb, detect_resolution=512, image_resolution=max(rgb.size), output_type="pil")
    return figure.convert("RGB").resize(rgb.size, Image.Resampling.BILINEAR)


def preprocess(module: str, image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """The control map ``module`` (:data:`MODULES`) makes of ``image``; "openpose" takes a drawn figure as it is
    (make one with :func:`draw_pose`), "openpose_detect" finds it in a photo (:func:`detect_pose`), "none" takes
    any ready control map."""
    if module == "canny":
        return canny(image, low, high)
    if module == "depth":
        return depth_map(image)
    if module == "lineart":
        return lineart(image)
    if module == "scribble":
        return scribble(image)
    if module == "openpose_detect":
        return detect_pose(image)
    if module in ("openpose", "none"):
        return image.convert("RGB")
    raise SdnbError(f"Unknown preprocessor {module!r}.", hint=f"Use one of: {', '.join(MODULES)}.")


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet at work: its model, its image and preprocessor, how strongly and when it steers.

    ``image`` is a picture (path or PIL image) that ``module`` turns into the control map; for "openpose" it may
    also be an OpenPose ``.json`` file of keypoints. ``weight`` scales the ControlNet's output (the
    conditioning scale); ``start`` and ``end`` are the fractions of the steps it acts on.
    """

    model: str = "sd15-canny"
    image: Any = ""
    module: str = "canny"
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    mode: str = "Balanced"
    low: int = 100
    high: int = 200

    def problems(self, name: str = "ControlNet unit") -> list[str]:
        """Every problem with this unit, one sentence each, named after ``name``."""
        errors = []
        if self.model not in CONTROLNETS and not (isinstance(self.model, str) and "/" in self.model):
            errors.append(f"{name}: model {self.model!r} is not one of {', '.join(CONTROLNETS)} or a hub id/folder.")
        if self.module not in MODULES:
            errors.append(f"{name}: preprocessor {self.module!r} is not one of {', '.join(MODULES)}.")
        if self.mode not in CONTROL_MODES:
            errors.append(f"{name}: control mode {self.mode!r} is not one of {', '.join(CONTROL_MODES)}.")
        numbers = (self.weight, self.start, self.end)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            errors.append(f"{name}: weight, start and end must be numbers (got {numbers}).")
        elif not (0 <= self.weight <= 2 and 0 <= self.start < self.end <= 1):
            errors.append(f"{name}: the weight must be from 0 to 2 and 0 <= start < end <= 1 (got weight "
                          f"{self.weight:g}, start {self.start:g}, end {self.end:g}): with start >= end it would "
                          "act on no step.")
        if not (isinstance(self.image, Image.Image) or (isinstance(self.image, (str, os.PathLike))
                                                        and os.fspath(self.image))):
            errors.append(f"{name}: give the path of its control image (got {self.image!r}).")
        if self.module == "canny" and not 0 <= self.low <= self.high <= 255:
            errors.append(f"{name}: Canny thresholds must satisfy 0 <= low <= high <= 255 "
                          f"(got {self.low}, {self.high}).")
        return errors


def control_source(unit: ControlUnit, width: int, height: int) -> Image.Image:
    """The picture ``unit``'s preprocessor reads, at ``width`` x ``height``: its image, or its pose JSON drawn.

    An image of another size is resized, since the ControlNet reads the map pixel for pixel; when its shape
    differs too (it is stretched), with a notice.
    """
    if unit.module == "openpose" and isinstance(unit.image, (str, os.PathLike)) and \
            Path(unit.image).suffix.lower() == ".json":
        return draw_pose(pose_from_json(unit.image), width, height)
    image = as_image(unit.image)
    if image.size != (width, height):
        if abs(image.width * height - image.height * width) > max(width, height):
            warnings.warn(f"The control image of {unit.model} is {image.width}x{image.height}, another shape than "
                          f"the {width}x{height} picture: it was stretched to fit. Crop it to the same shape to keep "
                          "its proportions.", stacklevel=3)
        image = fit_image(image, width, height, "Just resize")
    return image


def control_map(unit: ControlUnit, width: int, height: int) -> Image.Image:
    """The control map of ``unit`` at ``width`` x ``height``: its :func:`control_source`, preprocessed."""
    return preprocess(unit.module, control_source(unit, width, height), unit.low, unit.high)
