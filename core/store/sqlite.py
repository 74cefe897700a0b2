"""The local workspace's database: one SQLite file in WAL mode.

Write transactions start with ``BEGIN IMMEDIATE``, which takes SQLite's
write lock up front: two processes allocating "the next version" of one
name are serialised, so each gets its own number and no row is lost.
``sqlite3`` errors are translated in :mod:`core.audit_log`, in one place.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..audit_log import (
    AUDIT_SCHEMA,
    BUSY_TIMEOUT_S,
    insert_audit,
    open_private_db,
    select_audit,
    translate_sqlite_errors,
)
from ..entities import AuditRecord
from .documents import Store, Txn

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (kind, name, version)
);
""" + AUDIT_SCHEMA

__all__ = ["BUSY_TIMEOUT_S", "SqliteStore", "translate_sqlite_errors"]


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        open_private_db(self.path, SCHEMA)  # it holds endpoint keys: private

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
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
        with translate_sqlite_errors(self.path):
            return select_audit(self._conn(), limit, target_prefix)

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
            self.conn.execute("DELETE FROM documents WHERE kind = ? AND name = ? AND version = ?",
                              (kind, name, version))

    def max_version(self, kind: str, name: str) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM documents WHERE kind = ? AND name = ?",
                                (kind, name)).fetchone()
        return int(row[0] or 0)

    def audit(self, record: AuditRecord) -> None:
        insert_audit(self.conn, record)
