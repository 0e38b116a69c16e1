"""One error type for everything a user can fix, shown as a short paragraph instead of a traceback."""

from __future__ import annotations

import re

__all__ = ["SdnbError", "Interrupted", "redact_secrets"]

#: What a secret looks like in text: a Hugging Face token, the password part of a URL, a token in a query.
_SECRETS = (
    (re.compile(r"hf_[A-Za-z0-9]{8,}"), "hf_***"),
    (re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"), "***@"),
    (re.compile(r"(?<=://)[^/\s:@]{16,}@"), "***@"),
    (re.compile(r"(?i)((?:token|access_token|api_key|key|password)=)[^&\s]+"), r"\1***"),
)


def redact_secrets(text: str) -> str:
    """``text`` with anything token-like hidden: Hugging Face tokens, URL passwords, ``token=`` query values.

    Every message sdnb raises goes through it, so a token pasted into a model field or a mirror address
    with credentials never shows up in an error.
    """
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class SdnbError(Exception):
    """An error whose message tells the user what to change.

    IPython calls ``_render_traceback_`` when present, so a notebook shows the paragraph
    alone, not a wall of library frames. The full chain stays on ``__cause__`` for debugging.
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        self.message = redact_secrets(str(message).strip())
        self.hint = redact_secrets(str(hint).strip())
        super().__init__(self.message + (f"\n{self.hint}" if self.hint else ""))

    def _render_traceback_(self) -> list[str]:
        lines = [f"\x1b[1;31m{type(self).__name__}\x1b[0m: {self.message}"]
        if self.hint:
            lines.append(f"\x1b[1mWhat to do:\x1b[0m {self.hint}")
        return lines


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, or the notebook's stop button, during a render: one line that says what was kept and how to go on.

    A ``KeyboardInterrupt`` still (Run All stops at this cell, a terminal exits with 130), but IPython shows
    :meth:`_render_traceback_`'s line instead of a traceback. ``result`` holds what was finished.
    """

    def __init__(self, message: str, result: object = None) -> None:
        message = redact_secrets(message)
        super().__init__(message)
        self.message, self.result = message, result

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[1;33mStopped\x1b[0m: {self.message}"]
