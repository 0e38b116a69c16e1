"""One error type for everything a user can fix, shown as a short paragraph instead of a traceback."""

from __future__ import annotations

__all__ = ["SdnbError"]


class SdnbError(Exception):
    """An error whose message tells the user what to change.

    IPython calls ``_render_traceback_`` when present, so a notebook shows the paragraph
    alone, not a wall of library frames. The full chain stays on ``__cause__`` for debugging.
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        self.message = message.strip()
        self.hint = hint.strip()
        super().__init__(self.message + (f"\n{self.hint}" if self.hint else ""))

    def _render_traceback_(self) -> list[str]:
        lines = [f"\x1b[1;31m{type(self).__name__}\x1b[0m: {self.message}"]
        if self.hint:
            lines.append(f"\x1b[1mWhat to do:\x1b[0m {self.hint}")
        return lines
