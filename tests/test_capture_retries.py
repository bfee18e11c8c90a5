"""Network failures are retried with backoff; wrong credentials are not.

A local server fails the first N requests for a page (HTTP 503), hangs once
past the timeout, refuses connections until the first retry, or always fails;
real headless Chromium captures it with ``[browser] retries`` and
``retry_backoff_s``, and every attempt is in ``capture-report.jsonl``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from capture import browser as br
from capture.config import load_config
from capture.run import capture_targets, redact_report

if TYPE_CHECKING:
    from conftest import CaptureSite

pytestmark = pytest.mark.browser

HANG_S = 4.0
TIMEOUT_S = 2
PAGE = (
    b"<!doctype html><table id='t' style='font:20px sans-serif'>"
    b"<tr><td style='padding:10px 30px'>1</td><td style='padding:10px 30px'>2</td></tr></table>"
)


class FlakySite:
    """``/fail/N/STATUS/KEY``: STATUS for the first N requests, then the table;
    ``/hang-once/KEY``: the first request waits ``HANG_S``, later ones do not."""

    def __init__(self, port: int = 0) -> None:
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/favicon.ico":
                    self.send_error(404)
                    return
                with site.lock:
                    site.hits[self.path] += 1
                    n = site.hits[self.path]
                parts = self.path.strip("/").split("/")
                if parts[0] == "fail" and n <= int(parts[1]):
                    self.send_error(int(parts[2]))
                    return
                if parts[0] == "hang-once" and n == 1:
                    site.stop.wait(HANG_S)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the browser hung up on the request that hung: expected

        self.server = Server(("127.0.0.1", port), Handler, bind_and_activate=False)
        self.server.allow_reuse_address = True
        self.server.server_bind()
        self.port = self.server.server_address[1]
        self.thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        """Listen and serve (until then, a connection is refused: bound, not listening)."""
        self.server.server_activate()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()


@pytest.fixture
def flaky() -> Iterator[FlakySite]:
    site = FlakySite()
    site.start()
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def not_yet_listening() -> Iterator[FlakySite]:
    site = FlakySite()
    try:
        yield site
    finally:
        site.close()


def test_network_failures_are_retried_with_backoff_and_every_attempt_reported(
    tmp_path: Path,
    flaky: FlakySite,
    not_yet_listening: FlakySite,
    capture_site: CaptureSite,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY_USER", capture_site.username)
    monkeypatch.setenv("RETRY_PASS", "wrong-Pa55-8812")
    pauses: list[float] = []
    real_sleep = br.sleep

    def recording_sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:  # the refused target's first pause: the server comes up
            not_yet_listening.start()
        real_sleep(seconds)

    monkeypatch.setattr(br, "sleep", recording_sleep)
    userinfo = f"http://bob:hunter2@127.0.0.1:{flaky.port}"
    targets = [
        ("flaky", flaky.url("/fail/2/503/a")),
        ("refused", not_yet_listening.url("/t")),
        ("hang", flaky.url("/hang-once/b")),
        ("down", f"{userinfo}/fail/99/500/c"),
        ("missing", flaky.url("/fail/99/404/d")),
    ]
    body = "".join(f'[[target]]\nname = "{n}"\nurl = "{u}"\ntable = "#t"\n' for n, u in targets)
    login = (
        f'[[target]]\nname = "login"\nurl = "{capture_site.base}/secret"\ntable = "#history"\n'
        f'[target.login]\nurl = "{capture_site.base}/login"\nusername = "#user"\npassword = "#pass"\n'
        'submit = "button"\nusername_env = "RETRY_USER"\npassword_env = "RETRY_PASS"\n'
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"[browser]\nwindow = [800, 600]\ntimeout_s = {TIMEOUT_S}\nretries = 3\n"
        f"retry_backoff_s = 0.2\n{body}{login}",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    results = {r.name: r for r in capture_targets(load_config(cfg), out)}
    text = (out / "capture-report.jsonl").read_text()
    report = {row["target"]: row for row in map(json.loads, text.splitlines())}

    def outcomes(name: str) -> list[str]:
        return [t["outcome"] for t in report[name]["tries"]]

    # 503 twice, then the table: three attempts, 0.2 s then 0.4 s apart.
    assert report["flaky"]["status"] == "ok", report["flaky"]
    assert report["flaky"]["attempts"] == 3
    assert outcomes("flaky") == ["network", "network", "ok"]
    assert [t["retry_in_s"] for t in report["flaky"]["tries"]] == [0.2, 0.4, None]
    assert report["flaky"]["tries"][0]["reason"] == f"HTTP 503 from {flaky.url('/fail/2/503/a')}"
    assert flaky.hits["/fail/2/503/a"] == 3
    assert len(results["flaky"].files) == 1 and results["flaky"].files[0].is_file()

    # Connection refused until the first retry.
    assert report["refused"]["status"] == "ok", report["refused"]
    assert outcomes("refused") == ["network", "ok"]
    assert "ERR_CONNECTION_REFUSED" in report["refused"]["tries"][0]["reason"]

    # Hung past the timeout once, then answered.
    assert report["hang"]["status"] == "ok", report["hang"]
    assert outcomes("hang") == ["network", "ok"]
    assert report["hang"]["tries"][0]["reason"].startswith("timeout:")
    assert report["hang"]["tries"][0]["seconds"] >= TIMEOUT_S - 0.1

    # Always 500: 1 + 3 retries, backoff doubling, then given up.
    assert report["down"]["status"] == "failed"
    assert outcomes("down") == ["network"] * 4
    assert [t["retry_in_s"] for t in report["down"]["tries"]] == [0.2, 0.4, 0.8, None]
    assert report["down"]["reason"].endswith("(gave up after 4 attempts)")
    assert flaky.hits["/fail/99/500/c"] == 4

    # A 404 and a refused login are final: one attempt each.
    assert outcomes("missing") == ["failed"] and flaky.hits["/fail/99/404/d"] == 1
    assert report["login"]["status"] == "failed" and outcomes("login") == ["failed"]
    assert report["login"]["reason"].startswith("login failed")

    assert pauses == [0.2, 0.4, 0.2, 0.2, 0.2, 0.4, 0.8]
    # No secret reaches the report: not the login's password, not a URL's.
    assert "wrong-Pa55-8812" not in text and "hunter2" not in text
    assert "http://***@127.0.0.1" in report["down"]["reason"]


def test_transient_failures_are_told_from_final_ones() -> None:
    for code in ("ERR_CONNECTION_REFUSED", "ERR_NAME_NOT_RESOLVED", "ERR_DNS_TIMED_OUT"):
        assert br.is_transient_net_error(code), code
    for code in ("ERR_CERT_DATE_INVALID", "ERR_FILE_NOT_FOUND", "ERR_INVALID_URL"):
        assert not br.is_transient_net_error(code), code
    assert [
        s for s in (200, 301, 403, 404, 408, 429, 500, 503, 599) if br.is_transient_status(s)
    ] == [
        408,
        429,
        500,
        503,
        599,
    ]
    text = redact_report("unreachable: https://u:pw@h.example/x and s3cr3t", ["s3cr3t"])
    assert text == "unreachable: https://***@h.example/x and ***"
