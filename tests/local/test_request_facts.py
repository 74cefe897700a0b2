"""requests.db: a home made before the token timings opens with them added, its old facts without them."""

import sqlite3
from pathlib import Path

from byom.core.entities import RequestFact
from byom.core.local.request_facts import RequestFactStore

FIRST_SCHEMA = """
CREATE TABLE facts (at REAL NOT NULL, endpoint TEXT NOT NULL, deployment TEXT NOT NULL,
                    model_version TEXT NOT NULL, status_code INTEGER NOT NULL, latency_ms REAL NOT NULL,
                    mirrored INTEGER NOT NULL);
INSERT INTO facts VALUES (100.0, 'ep', 'blue', 'm:1', 200, 12.5, 0);
"""


def test_an_old_home_gets_the_new_columns_and_keeps_its_facts(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(FIRST_SCHEMA)
    store = RequestFactStore(path)
    try:
        store.add([RequestFact(200.0, "ep", "blue", "m:1", 200, 80.0, consumer="team-a", input_tokens=30,
                               output_tokens=16, ttft_ms=41.5, tpot_ms=2.25)])
        old, new = store.since("ep", 0)
    finally:
        store.close()
    assert (old.latency_ms, old.consumer, old.output_tokens, old.ttft_ms, old.tpot_ms) == (12.5, "", 0, None, None)
    assert (new.input_tokens, new.output_tokens, new.ttft_ms, new.tpot_ms) == (30, 16, 41.5, 2.25)
