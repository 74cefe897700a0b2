"""Per-request facts the gateway records: the console's monitoring page, usage reports, consumers' limits.

They live in ``<home>/requests.db``, apart from ``byom.db``, so that the
gateway's writes never wait on the registry's write lock. The gateway
writes in batches; the table keeps at most ``max_rows`` rows (the oldest go).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..entities import RequestFact
from ..home import touch_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    at            REAL NOT NULL,
    endpoint      TEXT NOT NULL,
    deployment    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    status_code   INTEGER NOT NULL,
    latency_ms    REAL NOT NULL,
    mirrored      INTEGER NOT NULL,
    consumer      TEXT NOT NULL DEFAULT '',
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    ttft_ms       REAL,
    tpot_ms       REAL
);
CREATE INDEX IF NOT EXISTS facts_endpoint_at ON facts (endpoint, at);
"""
# columns added since the first schema: a home made before them gets them on first open
ADDED = {"consumer": "TEXT NOT NULL DEFAULT ''", "input_tokens": "INTEGER NOT NULL DEFAULT 0",
         "output_tokens": "INTEGER NOT NULL DEFAULT 0", "ttft_ms": "REAL", "tpot_ms": "REAL"}
COLUMNS = ("at, endpoint, deployment, model_version, status_code, latency_ms, mirrored, consumer, input_tokens, "
           "output_tokens, ttft_ms, tpot_ms")

MAX_ROWS = 500_000


class RequestFactStore:
    def __init__(self, path: Path, max_rows: int = MAX_ROWS) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            touch_private(self.path)  # prompts' facts: who called what, when
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(facts)")}
            for column, kind in ADDED.items():
                if column not in have:
                    conn.execute(f"ALTER TABLE facts ADD COLUMN {column} {kind}")
            self._conn = conn
        return self._conn

    def add(self, facts: Sequence[RequestFact]) -> None:
        if not facts:
            return
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                f"INSERT INTO facts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(f.at, f.endpoint, f.deployment, f.model_version, f.status_code, f.latency_ms, int(f.mirrored),
                  f.consumer, f.input_tokens, f.output_tokens, f.ttft_ms, f.tpot_ms) for f in facts],
            )
            conn.execute("DELETE FROM facts WHERE rowid <= (SELECT MAX(rowid) FROM facts) - ?", (self.max_rows,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def since(self, endpoint: str, since: float) -> list[RequestFact]:
        if not self.path.exists():
            return []
        rows = self._connect().execute(
            f"SELECT {COLUMNS} FROM facts WHERE endpoint = ? AND at >= ? ORDER BY at", (endpoint, since),
        ).fetchall()
        return [_fact(r) for r in rows]

    def consumed(self, since: float) -> list[RequestFact]:
        """Every fact since ``since`` that names a consumer (what the gateway counts against limits)."""
        if not self.path.exists():
            return []
        rows = self._connect().execute(
            f"SELECT {COLUMNS} FROM facts WHERE at >= ? AND consumer != '' AND mirrored = 0 ORDER BY at", (since,),
        ).fetchall()
        return [_fact(r) for r in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _fact(row: Any) -> RequestFact:
    return RequestFact(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7], row[8], row[9], row[10],
                       row[11])
