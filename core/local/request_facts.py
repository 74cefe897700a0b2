"""Per-request facts the gateway records: the console's monitoring page, usage reports, consumers' limits.

They live in ``<home>/requests.db``, apart from ``byom.db``, so that the
gateway's writes never wait on the registry's write lock. The gateway
writes in batches; the table keeps at most ``max_rows`` rows (the oldest go).

Beside them, table ``mirrored`` keeps both answers of mirrored requests (the mirror report's source):
at most ``max_pairs`` rows and ``max_body_bytes`` of kept bodies (the oldest go). A pair handed to
``hold`` is written with the next batch of facts, in its transaction.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..entities import MirroredAnswers, RequestFact
from ..home import touch_private
from ..mirror_report import MAX_BODY_BYTES, MAX_PAIRS

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
CREATE TABLE IF NOT EXISTS mirrored (
    at             REAL NOT NULL,
    endpoint       TEXT NOT NULL,
    deployment     TEXT NOT NULL,
    "primary"      TEXT NOT NULL,
    primary_status INTEGER NOT NULL,
    primary_ms     REAL NOT NULL,
    primary_sha256 TEXT NOT NULL,
    mirror_status  INTEGER NOT NULL,
    mirror_ms      REAL NOT NULL,
    mirror_sha256  TEXT NOT NULL,
    primary_body   BLOB,
    mirror_body    BLOB,
    body_bytes     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mirrored_endpoint_at ON mirrored (endpoint, at);
"""
# columns added since the first schema: a home made before them gets them on first open
ADDED = {"consumer": "TEXT NOT NULL DEFAULT ''", "input_tokens": "INTEGER NOT NULL DEFAULT 0",
         "output_tokens": "INTEGER NOT NULL DEFAULT 0", "ttft_ms": "REAL", "tpot_ms": "REAL"}
COLUMNS = ("at, endpoint, deployment, model_version, status_code, latency_ms, mirrored, consumer, input_tokens, "
           "output_tokens, ttft_ms, tpot_ms")

MIRRORED = ('at, endpoint, deployment, "primary", primary_status, primary_ms, primary_sha256, mirror_status, '
            'mirror_ms, mirror_sha256, primary_body, mirror_body')

MAX_ROWS = 500_000


class RequestFactStore:
    def __init__(self, path: Path, max_rows: int = MAX_ROWS, *, max_pairs: int = MAX_PAIRS,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self.max_pairs = max_pairs
        self.max_body_bytes = max_body_bytes
        # filled on the gateway's event loop, emptied on its database thread: a deque's ends are thread-safe;
        # bounded, so that pairs never pile up while writes fail
        self._held: deque[MirroredAnswers] = deque(maxlen=max_pairs)
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

    def hold(self, pair: MirroredAnswers) -> None:
        """Keep a mirrored request's answers until the next ``add`` writes them."""
        self._held.append(pair)

    def add(self, facts: Sequence[RequestFact]) -> None:
        """Write a batch of facts, and the mirrored answers held since the last batch."""
        pairs = []
        while self._held:
            pairs.append(self._held.popleft())
        if not facts and not pairs:
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
            if pairs:
                self._add_pairs(conn, pairs)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _add_pairs(self, conn: sqlite3.Connection, pairs: Sequence[MirroredAnswers]) -> None:
        conn.executemany(
            f"INSERT INTO mirrored ({MIRRORED}, body_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(p.at, p.endpoint, p.deployment, p.primary, p.primary_status, p.primary_ms, p.primary_sha256,
              p.mirror_status, p.mirror_ms, p.mirror_sha256, p.primary_body, p.mirror_body,
              len(p.primary_body or b"") + len(p.mirror_body or b"")) for p in pairs],
        )
        conn.execute("DELETE FROM mirrored WHERE rowid <= (SELECT MAX(rowid) FROM mirrored) - ?", (self.max_pairs,))
        # the newest rows whose bodies fit in max_body_bytes stay
        conn.execute(
            "DELETE FROM mirrored WHERE rowid <= (SELECT MAX(rowid) FROM (SELECT rowid, SUM(body_bytes) OVER "
            "(ORDER BY rowid DESC) AS total FROM mirrored) WHERE total > ?)", (self.max_body_bytes,))

    def mirrored(self, endpoint: str, since: float) -> list[MirroredAnswers]:
        """The endpoint's mirrored requests since ``since``, both answers each, oldest first."""
        if not self.path.exists():
            return []
        rows = self._connect().execute(
            f"SELECT {MIRRORED} FROM mirrored WHERE endpoint = ? AND at >= ? ORDER BY at", (endpoint, since),
        ).fetchall()
        return [MirroredAnswers(*row) for row in rows]

    def kept(self) -> tuple[int, int]:
        """How many mirrored pairs are stored, and the bytes of their kept bodies."""
        if not self.path.exists():
            return 0, 0
        count, total = self._connect().execute("SELECT COUNT(*), COALESCE(SUM(body_bytes), 0) FROM mirrored").fetchone()
        return int(count), int(total)

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
