"""Several stores over one database file, in one process and across processes, lose no write.

SQLite's locks on a database file are POSIX locks, held per process: closing
any descriptor of that file in the process drops them all, and another
process may then take the write-ahead log for unused and reset it under the
connections still open. Opening a second store on a file must never do that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from byom.core.store.sqlite import SqliteStore

READ_AND_CLOSE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
conn.close()
"""


def other_process_count(db: Path) -> int:
    done = subprocess.run([sys.executable, "-c", READ_AND_CLOSE, str(db)],
                          capture_output=True, text=True, timeout=60, check=True)
    return int(done.stdout)


def test_a_second_store_on_the_same_file_keeps_the_first_ones_writes(tmp_path: Path) -> None:
    db = tmp_path / "byom.db"
    first = SqliteStore(db)
    with first.transaction() as txn:
        txn.put("endpoint", "one", 0, {"name": "one"})
    second = SqliteStore(db)  # what a helper inside the same process does to read one document
    with second.transaction() as txn:
        assert txn.get("endpoint", "one") == {"name": "one"}
    second.close()
    # another process comes and goes: it must still see the first store's connection as open
    assert other_process_count(db) == 1
    with first.transaction() as txn:
        txn.put("endpoint", "two", 0, {"name": "two"})
    assert other_process_count(db) == 2, "a write of the first store was lost to other processes"
    first.close()
    reopened = SqliteStore(db)
    with reopened.transaction() as txn:
        assert sorted(d["name"] for d in txn.list("endpoint")) == ["one", "two"]
    reopened.close()
