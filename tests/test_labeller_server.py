"""The real server process: labels posted over HTTP survive SIGKILL, and it resumes.

``LabelServer`` runs ``python -m gridreader label ... --port 0`` and reads the
URL it prints; the load test reuses it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from test_labeller_review import make_review_dir, queue_order

from labeller.store import LabelStore

# Loopback only: never route the test's requests through a configured proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """One JSON request; returns ``(status, decoded body)``, HTTP errors included."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


class LabelServer:
    """``gridreader label`` as a child process on a free port."""

    def __init__(self, review_dirs: list[Path], db: Path, *, startup_s: float = 120) -> None:
        cmd = [sys.executable, "-m", "gridreader", "label", *map(str, review_dirs)]
        cmd += ["--db", str(db), "--port", "0"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        self._url = threading.Event()
        self.url = ""
        self._drainer = drain = threading.Thread(target=self._drain, daemon=True)
        drain.start()
        deadline = time.monotonic() + startup_s
        while not self._url.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                drain.join(timeout=5)
                raise AssertionError("server did not start:\n" + "".join(self.lines))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.search(r"serving on (http://\S+/)", line)
            if m:
                self.url = m.group(1).rstrip("/")
                self._url.set()

    def get(self, path: str) -> Any:
        status, body = http("GET", self.url + path)
        assert status == 200, body
        return body

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self._drainer.join(timeout=10)
        return code


def test_sigkill_mid_session_loses_no_acknowledged_label_and_resumes(tmp_path: Path) -> None:
    cells = make_review_dir(tmp_path / "review", 60, seed=31)
    truth = {c.sha256: c.value for c in cells}
    order = queue_order(cells)
    db = tmp_path / "labels.db"
    server = LabelServer([tmp_path / "review"], db)
    assert server.get("/api/progress")["total"] == 60

    acked: list[str] = []
    attempted: list[str] = []
    # An assert inside the thread would only be a warning under pytest: the
    # thread records what went wrong and the test asserts it.
    refused: list[tuple[str, int, Any]] = []

    def label_until_killed() -> None:
        for sha in order:
            attempted.append(sha)
            try:
                status, body = http(
                    "POST", server.url + "/api/label", {"sha256": sha, "label": truth[sha]}
                )
            except OSError:
                return  # the server died under us
            if status != 200:
                refused.append((sha, status, body))
                return
            acked.append(sha)

    writer = threading.Thread(target=label_until_killed)
    writer.start()
    deadline = time.monotonic() + 60
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    server.proc.send_signal(signal.SIGKILL)  # mid-stream: the writer is still posting
    server.proc.wait(timeout=30)
    writer.join(timeout=60)
    assert not writer.is_alive(), "the writer thread did not stop after the kill"
    assert refused == [], f"the server refused a label before the kill: {refused}"
    assert 20 <= len(acked) < 60, "the kill should land in the middle of the session"

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = LabelStore(db).labels()
    # Every acknowledged label is there; at most the one in flight was added besides.
    assert set(acked) <= set(stored)
    assert set(stored) <= set(attempted)
    assert all(stored[s] == truth[s] for s in stored)

    again = LabelServer([tmp_path / "review"], db)
    try:
        progress = again.get("/api/progress")
        assert progress["labelled"] == len(stored)
        queue = [it["sha256"] for it in again.get("/api/queue")["items"]]
        assert queue == [s for s in order if s not in stored]
        assert again.get("/api/next")["item"]["sha256"] == queue[0]
        status, body = http("POST", again.url + "/api/label", {"sha256": queue[0], "label": "e"})
        assert (status, body["progress"]["labelled"]) == (200, len(stored) + 1)
    finally:
        code = again.stop(signal.SIGTERM)
    assert code == 0
    assert any("every label is saved" in line for line in again.lines)
    assert LabelStore(db).count() == len(stored) + 1
