"""The gateway's admin token: what ``/-/reload``, ``/-/flush`` and ``/-/in-flight`` ask for.

Only processes that can read ``<home>/run/admin-token`` (0600, in the 0700
home, so the home's owner: the control plane and the library) can call
them; a client that can only reach the gateway's port, a page in a browser
or another local user, cannot. The gateway makes the token the first time it
starts and keeps it, so that a restart does not lock its callers out.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from ...home import make_private_dir

HEADER = "x-byom-admin-token"
FILE_NAME = "admin-token"


def token_path(run: Path) -> Path:
    return run / FILE_NAME


def read_token(run: Path) -> str | None:
    """The home's admin token, None while no gateway ever made one."""
    try:
        token = token_path(run).read_text().strip()
    except FileNotFoundError:
        return None
    return token or None


def ensure_token(run: Path) -> str:
    """The home's admin token, made now (0600, whole or not at all) unless there is one."""
    existing = read_token(run)
    if existing is not None:
        return existing
    make_private_dir(run)
    path = token_path(run)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)  # never replaces a token another process made first
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    token = read_token(run)
    assert token is not None  # linked here or by the other process
    return token


def headers(run: Path) -> dict[str, str]:
    """The header that admits a call to the gateway's admin routes (none while there is no token)."""
    token = read_token(run)
    return {HEADER: token} if token else {}


def admits(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token, in a time that does not say how much of it matched."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
