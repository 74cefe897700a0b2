"""How a long operation reports how far it is: ``progress(message, fraction)``.

``fraction`` is 0–1, or None when nobody knows. The CLI writes each message to
stderr; the console shows a bar; tests collect the messages.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float | None], None]


def no_progress(message: str, fraction: float | None = None) -> None:
    pass
