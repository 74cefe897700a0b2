"""The storage seam under :class:`core.store.backend.StoreBackend`.

A store keeps versioned JSON documents by ``(kind, name, version)`` and the
audit log. Writes happen inside ``transaction()``: everything written in one
transaction becomes visible together or not at all, and transactions are
serialised (across processes for the SQLite store), which is what makes
"next version" allocation safe under concurrency.

Kinds used: ``model``, ``environment``, ``endpoint``, ``keys``, ``deployment``
(name ``endpoint/deployment``), ``consumer`` (name ``endpoint/consumer``, with
the sha256 of its key, never the key), ``build``. Version 0 means "unversioned".
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..entities import AuditRecord


class Txn(ABC):
    @abstractmethod
    def get(self, kind: str, name: str, version: int = 0) -> dict[str, Any] | None: ...

    @abstractmethod
    def list(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        """Documents of a kind (of one name), ordered by name then version."""

    @abstractmethod
    def put(self, kind: str, name: str, version: int, body: dict[str, Any]) -> None: ...

    @abstractmethod
    def delete(self, kind: str, name: str, version: int | None = None) -> None:
        """Delete one version, or every version of the name when ``version`` is None."""

    @abstractmethod
    def max_version(self, kind: str, name: str) -> int:
        """Highest version stored for the name, 0 if none."""

    @abstractmethod
    def audit(self, record: AuditRecord) -> None: ...


class Store(ABC):
    @abstractmethod
    def transaction(self) -> Any:
        """Context manager yielding a :class:`Txn`; commits on success, rolls back on error."""

    @abstractmethod
    def list_audit(self, limit: int = 100, target_prefix: str | None = None) -> list[AuditRecord]: ...

    def close(self) -> None:
        pass


class MemoryStore(Store):
    """Dicts behind one lock; a transaction works on a copy and swaps it in."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._docs: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._audit: list[AuditRecord] = []

    @contextmanager
    def transaction(self) -> Iterator[Txn]:
        with self._lock:
            txn = _MemoryTxn(copy.deepcopy(self._docs), len(self._audit))
            yield txn
            self._docs = txn.docs
            for record in txn.new_audit:
                record.id = len(self._audit) + 1
                self._audit.append(record)

    def list_audit(self, limit: int = 100, target_prefix: str | None = None) -> list[AuditRecord]:
        with self._lock:
            rows = [r for r in reversed(self._audit) if target_prefix is None or r.target.startswith(target_prefix)]
            return copy.deepcopy(rows[:limit])


class _MemoryTxn(Txn):
    def __init__(self, docs: dict[tuple[str, str, int], dict[str, Any]], audit_base: int) -> None:
        self.docs = docs
        self.new_audit: list[AuditRecord] = []

    def get(self, kind: str, name: str, version: int = 0) -> dict[str, Any] | None:
        doc = self.docs.get((kind, name, version))
        return copy.deepcopy(doc) if doc is not None else None

    def list(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        keys = sorted(k for k in self.docs if k[0] == kind and (name is None or k[1] == name))
        return [copy.deepcopy(self.docs[k]) for k in keys]

    def put(self, kind: str, name: str, version: int, body: dict[str, Any]) -> None:
        self.docs[(kind, name, version)] = copy.deepcopy(body)

    def delete(self, kind: str, name: str, version: int | None = None) -> None:
        for key in [k for k in self.docs if k[0] == kind and k[1] == name and (version is None or k[2] == version)]:
            del self.docs[key]

    def max_version(self, kind: str, name: str) -> int:
        return max((k[2] for k in self.docs if k[0] == kind and k[1] == name), default=0)

    def audit(self, record: AuditRecord) -> None:
        self.new_audit.append(copy.deepcopy(record))
