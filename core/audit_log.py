"""The audit log's SQLite table, and a log file of its own for a backend that keeps no database.

The local database (``core.store.sqlite``) holds this table beside its
documents; the Azure backend keeps one file of it per workspace
(``SqliteAuditLog``), since Azure's activity log does not say what byom did.
One schema, so either file reads the same. ``sqlite3`` errors are translated
here, in one place.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .entities import AuditRecord
from .errors import BackendError
from .home import touch_private

AUDIT_SCHEMA = """
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


def insert_audit(conn: sqlite3.Connection, record: AuditRecord) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)",
        (record.at, record.actor, record.action, record.target,
         json.dumps(record.before) if record.before is not None else None,
         json.dumps(record.after) if record.after is not None else None),
    )


def select_audit(conn: sqlite3.Connection, limit: int, target_prefix: str | None) -> list[AuditRecord]:
    """Newest first; ``target_prefix`` matches the target itself or what starts with it."""
    sql = "SELECT id, at, actor, action, target, before, after FROM audit"
    args: list[Any] = []
    if target_prefix:
        sql += " WHERE target = ? OR target LIKE ? ESCAPE '\\'"
        escaped = target_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args += [target_prefix, escaped + "%"]
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    rows = conn.execute(sql, args).fetchall()
    return [
        AuditRecord(id=r[0], at=r[1], actor=r[2], action=r[3], target=r[4],
                    before=json.loads(r[5]) if r[5] else None, after=json.loads(r[6]) if r[6] else None)
        for r in rows
    ]


def open_private_db(path: Path, schema: str) -> None:
    """Create the file readable by its owner only (it may hold keys), in WAL mode, with ``schema``."""
    with translate_sqlite_errors(path):
        try:
            touch_private(path)
        except OSError as exc:
            raise BackendError(f"Cannot open the workspace database {path}: {exc.strerror}.",
                               hint="Point BYOM_HOME at a folder you can write to.") from exc
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)
        finally:
            conn.close()


class SqliteAuditLog:
    """An audit log alone in one SQLite file: one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        open_private_db(self.path, AUDIT_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")  # as the local database: WAL keeps it consistent
            self._local.conn = conn
        return conn

    def write(self, record: AuditRecord) -> None:
        with translate_sqlite_errors(self.path):
            insert_audit(self._conn(), record)

    def read(self, limit: int = 100, target_prefix: str | None = None) -> list[AuditRecord]:
        with translate_sqlite_errors(self.path):
            return select_audit(self._conn(), limit, target_prefix)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
