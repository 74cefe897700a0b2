"""Server-sent events as the scoring script sends them (``data: {json}`` and a blank line): made, and read back
out of a body's pieces as they arrive; written once for the gateway, the Workspace and the fake serving."""

from __future__ import annotations

import json
from typing import Any


def encode(data: dict[str, Any]) -> bytes:
    """One event whose data is ``data``."""
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class EventReader:
    """The complete events in a stream's pieces, in order, each as it came (its blank line included)."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, piece: bytes) -> list[bytes]:
        """The events that ``piece`` completes."""
        self.pending += piece
        done: list[bytes] = []
        while (end := self.pending.find(b"\n\n")) >= 0:
            done.append(self.pending[: end + 2])
            self.pending = self.pending[end + 2 :]
        return done

    def rest(self) -> bytes:
        """What is left once the stream ended: a last event without its blank line, or nothing."""
        rest, self.pending = self.pending, b""
        return rest


def event_data(raw: bytes) -> dict[str, Any] | None:
    """One event's JSON object (None for a comment, or data that is not a JSON object)."""
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                data = json.loads(line[5:])
            except (ValueError, RecursionError):
                return None
            return data if isinstance(data, dict) else None
    return None
