"""No orphans: the browser tree of a capture dies with the process that started it.

The nightly job is SIGKILLed alone (not its process group), as the OOM killer
does, while Chromium waits for a page; within 5 s nothing of its browser
(guard, chromedriver, Chromium and its helpers) may still run, and the
temporary browser profile is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from chromium import CHROMEDRIVER, CHROMIUM
from conftest import child_processes

from capture import browser as br
from capture.config import BrowserConfig

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
KILL_LIMIT_S = 5.0


class _HangingSite:
    """``/hang`` answers only when the test lets it (or after 60 s)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/hang":
                    site.requested.set()
                    site.release.wait(60)
                body = b"<table id='t'><tr><td>1</td></tr></table>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def hanging_site() -> Iterator[_HangingSite]:
    site = _HangingSite()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release.set()
        site.server.shutdown()
        site.server.server_close()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _profile_of(cmdlines: list[str]) -> str:
    for line in cmdlines:
        for arg in line.split():
            if arg.startswith("--user-data-dir="):
                return arg.split("=", 1)[1]
    return ""


def _users_of(text: str) -> list[int]:
    """Running processes whose command line mentions ``text``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            pid = int(entry)
            if text in _cmdline(pid) and _running(pid):
                out.append(pid)
    return out


def test_nightly_killed_alone_during_capture_takes_its_browser_with_it(
    hanging_site: _HangingSite, untrained_model_dir: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "nightly.toml"
    cfg.write_text(
        f'root = "out"\nmodel = "{untrained_model_dir}"\n'
        "[browser]\ntimeout_s = 120\nretries = 0\n"
        f'[[target]]\nname = "hang"\nurl = "{hanging_site.url}/hang"\ntable = "#t"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridreader", "nightly", "--config", str(cfg)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert hanging_site.requested.wait(120), f"capture never asked for the page ({proc.poll()})"
        time.sleep(0.5)  # let the browser's helpers start
        below = child_processes(proc.pid)
        lines = [_cmdline(p) for p in below]
        assert any("chromedriver" in line for line in lines), lines
        assert sum("chromium" in line for line in lines) >= 3, lines
        profile = _profile_of(lines)
        assert profile and Path(profile).is_dir()

        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert proc.wait(timeout=10) == -signal.SIGKILL
        while time.monotonic() - killed < KILL_LIMIT_S:
            if not any(_running(p) for p in below) and not _users_of(profile):
                break
            time.sleep(0.05)
        took = time.monotonic() - killed
        left = [f"{p}: {_cmdline(p)[:100]}" for p in below if _running(p)]
        assert left == [], f"still running {took:.1f} s after the kill: {left}"
        assert _users_of(profile) == []
        # The guard removes the profile once the browser is dead.
        while Path(profile).exists() and time.monotonic() - killed < KILL_LIMIT_S:
            time.sleep(0.05)
        assert not Path(profile).exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_closed_browser_leaves_no_process_and_no_profile() -> None:
    browser = br.start_browser(BrowserConfig(), CHROMIUM, CHROMEDRIVER)
    guard = browser.driver.service.process.pid
    assert "guard.py" in _cmdline(guard)
    below = [guard, *child_processes(guard)]
    profile = _profile_of([_cmdline(p) for p in below])
    browser.close()
    deadline = time.monotonic() + KILL_LIMIT_S
    while any(_running(p) for p in below) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in below if _running(p)] == []
    assert profile and not Path(profile).exists()
