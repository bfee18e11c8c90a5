"""Four clients posting 500 labels each to the running server: all 2,000 are stored."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from test_labeller_review import make_review_dir
from test_labeller_server import LabelServer, http

from labeller.store import LabelStore

CLIENTS = 4
PER_CLIENT = 500


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_four_clients_post_500_labels_each_and_all_are_stored(tmp_path: Path) -> None:
    cells = make_review_dir(tmp_path / "review", CLIENTS * PER_CLIENT, cols=25, seed=41)
    truth = {c.sha256: c.value for c in cells}
    db = tmp_path / "labels.db"
    server = LabelServer([tmp_path / "review"], db)
    failures: list[str] = []
    try:
        assert server.get("/api/progress")["total"] == CLIENTS * PER_CLIENT

        def client(k: int) -> None:
            mine = cells[k::CLIENTS]  # interleaved, so the writers contend row by row
            for c in mine:
                body = {"sha256": c.sha256, "label": c.value, "client": f"load{k}"}
                try:
                    status, resp = http("POST", server.url + "/api/label", body)
                except OSError as e:  # recorded: an exception in a thread is only a warning
                    failures.append(f"{c.sha256}: {e}")
                    continue
                if status != 200:
                    failures.append(f"{c.sha256}: {status} {resp}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        print(f"{CLIENTS * PER_CLIENT} labels in {elapsed:.1f} s")
        assert failures == []
        progress = server.get("/api/progress")
        assert progress == {
            "labelled": 2000,
            "total": 2000,
            "remaining": 0,
            "stored": 2000,
            "generation": 0,
        }
        assert server.get("/api/queue")["items"] == []
    finally:
        server.stop()
    store = LabelStore(db)
    assert store.count() == CLIENTS * PER_CLIENT
    assert store.event_count() == CLIENTS * PER_CLIENT
    assert store.labels() == truth
    with sqlite3.connect(db) as conn:
        per_client = dict(conn.execute("SELECT client, count(*) FROM labels GROUP BY client"))
    assert per_client == {f"load{k}": PER_CLIENT for k in range(CLIENTS)}
