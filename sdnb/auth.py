"""Hugging Face login from the first source that has a token, without ever showing the token.

Order: Colab secret ``HF_TOKEN``, the ``HF_TOKEN`` environment variable, a cached ``hf auth login``,
then the ``notebook_login`` widget. Only the source and the account name are ever printed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SdnbError, redact_secrets
from .settings import env_token, hub_offline, is_tiny, set_env_token

__all__ = ["LoginResult", "login", "find_token", "redact"]

SOURCES = ("colab secret HF_TOKEN", "environment variable HF_TOKEN", "cached login", "notebook_login widget")


@dataclass(frozen=True)
class LoginResult:
    """Where the token came from and who it belongs to (``user`` is None when the hub cannot be asked)."""

    source: str | None
    user: str | None
    message: str

    def __repr__(self) -> str:  # never show anything token-like
        return f"LoginResult(source={self.source!r}, user={self.user!r})"

    def _repr_markdown_(self) -> str:
        return self.message


def _colab_secret() -> str | None:
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return userdata.get("HF_TOKEN") or None
    except Exception:  # noqa: BLE001 - secret missing or access not granted: try the next source
        return None


def _cached() -> str | None:
    from huggingface_hub import constants

    try:
        text = open(constants.HF_TOKEN_PATH).read().strip()  # noqa: SIM115 - tiny read
    except OSError:
        return None
    return text or None


def find_token() -> tuple[str | None, str | None]:
    """(token, source name) from the first source that has one, or (None, None)."""
    candidates = (
        (SOURCES[0], _colab_secret),
        (SOURCES[1], env_token),
        (SOURCES[2], _cached),
    )
    for name, get in candidates:
        token = get()
        if token:
            return token, name
    return None, None


def redact(text: str, token: str | None = None) -> str:
    """``text`` with the token (given, or found) and anything else token-like replaced (see
    :func:`sdnb.errors.redact_secrets`)."""
    token = token or find_token()[0]
    return redact_secrets(text.replace(token, "hf_***") if token else text)


def _whoami(token: str) -> str | None:
    from huggingface_hub import whoami

    try:
        return whoami(token=token).get("name")
    except Exception:  # noqa: BLE001 - offline, bad token or hub down: reported as "could not check"
        return None


def login(*, interactive: bool = True, check: bool = True) -> LoginResult:
    """Find a token, make it the one every download uses, and say where it came from and who is logged in.

    With no token anywhere and ``interactive``, shows the ``notebook_login`` widget; otherwise returns a
    result that explains how to add one. The token itself is never printed or returned.
    """
    token, source = find_token()
    offline = hub_offline()
    if token is None and is_tiny():
        return LoginResult(None, None, "Tiny mode: nothing is downloaded, so no Hugging Face token is needed.")
    if token is None and interactive and not offline and _in_notebook():
        from huggingface_hub import notebook_login

        notebook_login()  # shows a link and a code; returns once you have authorized in the browser
        token, source = find_token()
        source = SOURCES[3] if token else None
    if token is None:
        why = " (HF_HUB_OFFLINE is set, so the login box is not shown)" if offline else ""
        return LoginResult(
            None,
            None,
            f"No Hugging Face token found{why}. Public models still download; for gated ones, add a secret named "
            "HF_TOKEN on Colab (key icon, left bar), or set the HF_TOKEN environment variable.",
        )
    if not token.startswith("hf_") or any(c.isspace() for c in token):
        raise SdnbError(
            f"The token from the {source} does not look like a Hugging Face token.",
            hint="Copy an access token (it starts with 'hf_') from your Hugging Face settings page, Access Tokens.",
        )
    set_env_token(token)  # downloads in this process use it; it is never printed
    user = _whoami(token) if check and not offline and not is_tiny() else None
    who = f"logged in as {user}" if user else "token found (the hub could not be asked who it belongs to)"
    return LoginResult(source, user, f"Hugging Face: {who}, using the {source}.")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and hasattr(shell, "kernel")
