"""The store-backed Backend: documents in a Store (SQLite for local, dicts for the in-memory fake).

``documents`` holds the Store seam and its memory configuration, ``sqlite``
the local database, ``backend`` the Backend over them. The local
configuration is assembled in :mod:`core.local.workspace`, the in-memory one
in :mod:`core.memory`.
"""

from .documents import MemoryStore, Store, Txn

__all__ = ["MemoryStore", "Store", "Txn"]
