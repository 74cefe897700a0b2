"""Who changes things, as the audit log names them."""

from __future__ import annotations

import getpass
import os


def default_actor() -> str:
    """``BYOM_ACTOR`` if set, else the OS user."""
    if os.environ.get("BYOM_ACTOR"):
        return os.environ["BYOM_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
