"""The sample images of ``assets/`` (public domain and CC0 photographs, a sketch, masks; see assets/CREDITS.md).

In a checkout they are read in place; where only the package is installed (Colab installs it from git), a file
is downloaded once from the project's repository into the cache folder.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from .errors import SdnbError
from .images import move_no_replace
from .settings import BRANCH, REPO, cache_dir, hub_offline

__all__ = ["ASSETS", "asset"]

#: Every sample file, with what it shows.
ASSETS: dict[str, str] = {
    "portrait.jpg": "astronaut Eileen Collins, a portrait (NASA, public domain)",
    "coffee.jpg": "a cup of coffee on a wooden table (CC0)",
    "cat.jpg": "Chelsea the cat, a close-up (CC0)",
    "launch.jpg": "a rocket on its launch pad at dusk (SpaceX, public domain)",
    "room.jpg": "a room with a sofa, armchairs and two windows (JPEG XL Project Authors, CC BY 4.0)",
    "sketch.png": "a rough drawing of a house, a tree and hills (CC0)",
    "portrait_mask.png": "mask for portrait.jpg: the helmet at the bottom right",
    "coffee_mask.png": "mask for coffee.jpg: the cup",
}

_CHECKOUT = Path(__file__).resolve().parent.parent / "assets"


def asset(name: str) -> Path:
    """The path of sample file ``name`` (one of :data:`ASSETS`), downloaded once when not in a checkout."""
    if name not in ASSETS:
        raise SdnbError(f"There is no sample file {name!r}.", hint=f"Use one of: {', '.join(ASSETS)}.")
    local = _CHECKOUT / name
    if local.is_file():
        return local
    cached = cache_dir() / "assets" / name
    if cached.is_file():
        return cached
    url = f"https://raw.githubusercontent.com/{REPO}/{BRANCH}/assets/{name}"
    if hub_offline():
        raise SdnbError(f"The sample file {name} is not here and this machine is offline.",
                        hint=f"Copy it from the repository's assets/ folder ({url}) or pass your own image path.")
    cached.parent.mkdir(parents=True, exist_ok=True)
    part = cached.with_suffix(cached.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            part.write_bytes(response.read())
    except OSError as exc:
        raise SdnbError(f"Could not download the sample file {name} ({exc}).",
                        hint=f"Check the connection, or download {url} yourself and pass its path.") from exc
    try:
        move_no_replace(part, cached)
    except FileExistsError:  # another process downloaded it at the same time
        part.unlink()
    return cached
