"""The local workspace's database: one SQLite file in WAL mode.

Write transactions start with ``BEGIN IMMEDIATE``, which takes SQLite's
write lock up front: two processes allocating "the next version" of one
name are serialised, so each gets its own number and no row is lost.
``sqlite3`` errors are translated here, in one place.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..entities import AuditRecord
from ..errors import BackendError
from ..home import touch_private
from ..store import Store, Txn

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (kind, name, version)
);
CREATE TABLE IF NOT EXISTS audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after  TEXT
);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target);
"""

BUSY_TIMEOUT_S = 30.0


@contextmanager
def translate_sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise BackendError(
                f"The workspace database {path} stayed locked for {BUSY_TIMEOUT_S:.0f} s.",
                hint="Another byom process is holding it; try again when it has finished.",
            ) from exc
        raise BackendError(f"The workspace database {path} failed: {exc}.") from exc
    except sqlite3.DatabaseError as exc:
        raise BackendError(
            f"The workspace database {path} is damaged or not a byom database: {exc}.",
            hint="Point BYOM_HOME at another folder, or restore the file from a backup.",
        ) from exc


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        with translate_sqlite_errors(self.path):
            try:
                touch_private(self.path)  # it holds endpoint keys
            except OSError as exc:
                raise BackendError(f"Cannot open the workspace database {self.path}: {exc.strerror}.",
                                   hint="Point BYOM_HOME at a folder you can write to.") from exc
            conn = self._conn()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Txn]:
        with translate_sqlite_errors(self.path):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTxn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def list_audit(self, limit: int = 100, target_prefix: str | None = None) -> list[AuditRecord]:
        sql = "SELECT id, at, actor, action, target, before, after FROM audit"
        args: list[Any] = []
        if target_prefix:
            sql += " WHERE target = ? OR target LIKE ? ESCAPE '\\'"
            escaped = target_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args += [target_prefix, escaped + "%"]
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with translate_sqlite_errors(self.path):
            rows = self._conn().execute(sql, args).fetchall()
        return [
            AuditRecord(id=r[0], at=r[1], actor=r[2], action=r[3], target=r[4],
                        before=json.loads(r[5]) if r[5] else None, after=json.loads(r[6]) if r[6] else None)
            for r in rows
        ]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _SqliteTxn(Txn):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, kind: str, name: str, version: int = 0) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT body FROM documents WHERE kind = ? AND name = ? AND version = ?", (kind, name, version)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        if name is None:
            rows = self.conn.execute("SELECT body FROM documents WHERE kind = ? ORDER BY name, version", (kind,))
        else:
            rows = self.conn.execute(
                "SELECT body FROM documents WHERE kind = ? AND name = ? ORDER BY version", (kind, name)
            )
        return [json.loads(r[0]) for r in rows.fetchall()]

    def put(self, kind: str, name: str, version: int, body: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO documents (kind, name, version, body) VALUES (?, ?, ?, ?)",
            (kind, name, version, json.dumps(body)),
        )

    def delete(self, kind: str, name: str, version: int | None = None) -> None:
        if version is None:
            self.conn.execute("DELETE FROM documents WHERE kind = ? AND name = ?", (kind, name))
        else:
            self.conn.execute("DELETE FROM documents WHERE kind = ? AND name = ? AND version = ?", (kind, name, version))

    def max_version(self, kind: str, name: str) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM documents WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        return int(row[0] or 0)

    def audit(self, record: AuditRecord) -> None:
        self.conn.execute(
            "INSERT INTO audit (at, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            (record.at, record.actor, record.action, record.target,
             json.dumps(record.before) if record.before is not None else None,
             json.dumps(record.after) if record.after is not None else None),
        )
