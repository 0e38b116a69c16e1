"""Progress reporting shared by every long task: a tiny protocol plus a console implementation."""

from __future__ import annotations

import sys
import time
from typing import Protocol

from PIL import Image

__all__ = ["Progress", "ConsoleProgress", "NullProgress"]


class Progress(Protocol):
    """What a task reports: a start with the total, each finished unit (with an optional preview), the end."""

    def start(self, total: int, what: str) -> None: ...

    def update(self, done: int, preview: Image.Image | None = None) -> None: ...

    def finish(self, message: str) -> None: ...


class NullProgress:
    """Reports nothing."""

    def start(self, total: int, what: str) -> None:
        pass

    def update(self, done: int, preview: Image.Image | None = None) -> None:
        pass

    def finish(self, message: str) -> None:
        pass


class ConsoleProgress:
    """One line that rewrites itself: done/total, rate and ETA (used by the CLI and plain cells)."""

    def __init__(self, every: float = 1.0) -> None:
        self.every, self.total, self.what, self.t0, self.last = every, 1, "", 0.0, 0.0

    def start(self, total: int, what: str) -> None:
        self.total, self.what, self.t0, self.last = max(1, total), what, time.perf_counter(), 0.0

    def update(self, done: int, preview: Image.Image | None = None) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0.0
        sys.stderr.write(f"\r{self.what}: {done}/{self.total} ({rate:.2f}/s, ETA {eta:.0f} s)   ")
        sys.stderr.flush()

    def finish(self, message: str) -> None:
        sys.stderr.write(f"\r{message}\n")
        sys.stderr.flush()
