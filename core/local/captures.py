"""Captured request bodies (``byom online-endpoint capture``): ``<home>/captures.db``.

Apart from ``byom.db`` (where each capture's record is) and ``requests.db``,
so that the gateway's writes never wait on the registry's write lock nor on
the request facts'. The gateway writes in batches; every write checks the
capture's bounds in its own transaction, so a capture never holds more than
its ``max_requests`` bodies nor more than its ``max_bytes`` bytes of them,
whoever writes and however many gateways there were. Only bodies are kept:
no header is ever written here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..entities import CapturedRequest
from ..home import touch_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS captured (
    capture     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          REAL NOT NULL,
    body        BLOB NOT NULL,
    deployment  TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    latency_ms  REAL NOT NULL,
    digest      TEXT NOT NULL,
    PRIMARY KEY (capture, seq)
);
"""


class CaptureStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            touch_private(self.path)  # prompts people sent
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    def add(self, capture: str, requests: Sequence[CapturedRequest], max_requests: int, max_bytes: int) -> int:
        """Append bodies in order while they fit the bounds (one that does not is left out, and the rest are
        still tried); how many were kept. Their ``seq`` is given here, after the capture's last."""
        if not requests:
            return 0
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            count, size, last = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0), COALESCE(MAX(seq), 0) FROM captured "
                "WHERE capture = ?", (capture,)).fetchone()
            rows = []
            for request in requests:
                body = request.body.encode("utf-8")
                if count + 1 > max_requests or size + len(body) > max_bytes:
                    continue
                count, size, last = count + 1, size + len(body), last + 1
                rows.append((capture, last, request.at, body, request.deployment, request.status_code,
                             request.latency_ms, request.digest))
            conn.executemany("INSERT INTO captured (capture, seq, at, body, deployment, status_code, latency_ms, "
                             "digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return len(rows)

    def counts(self, captures: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
        """Bodies and their bytes per capture (of those named; all when None)."""
        if not self.path.exists():
            return {}
        rows = self._connect().execute(
            "SELECT capture, COUNT(*), SUM(LENGTH(body)) FROM captured GROUP BY capture").fetchall()
        wanted = None if captures is None else set(captures)
        return {r[0]: (int(r[1]), int(r[2])) for r in rows if wanted is None or r[0] in wanted}

    def requests(self, capture: str) -> list[CapturedRequest]:
        """The capture's bodies in capture order: as they arrived, then as they were written."""
        if not self.path.exists():
            return []
        rows = self._connect().execute(
            "SELECT seq, at, body, deployment, status_code, latency_ms, digest FROM captured WHERE capture = ? "
            "ORDER BY at, seq", (capture,)).fetchall()
        return [CapturedRequest(seq=r[0], at=r[1], body=bytes(r[2]).decode("utf-8"), deployment=r[3],
                                status_code=r[4], latency_ms=r[5], digest=r[6]) for r in rows]

    def delete(self, capture: str) -> None:
        if not self.path.exists():
            return
        self._connect().execute("DELETE FROM captured WHERE capture = ?", (capture,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
