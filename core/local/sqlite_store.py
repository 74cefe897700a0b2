"""Kept for the local modules that still import it from here: the database is :mod:`core.store.sqlite`."""

from ..store.sqlite import BUSY_TIMEOUT_S, SqliteStore, translate_sqlite_errors

__all__ = ["BUSY_TIMEOUT_S", "SqliteStore", "translate_sqlite_errors"]
