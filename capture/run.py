"""Capturing every target of a configuration: screenshots, sidecars and the report.

One browser serves all targets of a run; a crashed browser is replaced and the
target retried. A failing target never stops the others: its failure is a
``TargetResult`` with ``ok=False`` and a one-line reason, and a line in
``capture-report.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from capture import browser as br
from capture.config import (
    REPORT_NAME,
    BrowserConfig,
    CaptureConfig,
    Step,
    TargetConfig,
    resolve_binaries,
    select_targets,
)
from gridreader.errors import CaptureError, ImageLoadError
from gridreader.formats.shots import PageCells, ShotSidecar, build_stem, write_shot_files
from gridreader.host import iso_utc
from gridreader.imageio import load_image, write_atomic

log = logging.getLogger(__name__)

_REDACTED = "***"


@dataclass(frozen=True)
class Attempt:
    """One try at a target, as ``capture-report.jsonl`` lists it.

    Attributes:
        number: 1 for the first try.
        outcome: ``ok``; ``network`` (timeout, refused, DNS, HTTP 5xx) or
            ``crash`` (the browser died), both retried; ``failed``, not retried.
        reason: the one-line error, secrets replaced by ``***``; "" when ok.
        seconds: how long the try took.
        retry_in_s: the pause before the next try; None after the last one.
    """

    number: int
    outcome: str
    reason: str
    seconds: float
    retry_in_s: float | None = None


@dataclass(frozen=True)
class TargetResult:
    """The outcome of one target.

    Attributes:
        files: the PNGs written (each with a ``.json`` sidecar of the same stem),
            also those of a paged target that failed part way.
        attempts: tries used (more than 1 after a crash or a network failure).
        tries: every try, in order.
    """

    name: str
    ok: bool
    reason: str
    files: tuple[Path, ...]
    attempts: int = 1
    tries: tuple[Attempt, ...] = ()


def capture_targets(
    config: CaptureConfig,
    out_dir: str | os.PathLike[str],
    only: str | Sequence[str] | None = None,
) -> list[TargetResult]:
    """Capture the targets of ``config`` into ``out_dir``, one result per target.

    Appends one line per target to ``out_dir/capture-report.jsonl``.

    Args:
        config: a loaded configuration.
        out_dir: where screenshots, sidecars and the report go (created if needed).
        only: capture only the targets with these names.

    Raises:
        ConfigError: an unknown name in ``only``, or no Chromium/chromedriver.
        OutputError: ``out_dir`` cannot be written.
    """
    targets = select_targets(config, only)
    chromium, chromedriver = resolve_binaries(config.browser, config.source)
    out = Path(out_dir)
    session = _Session(config.browser, chromium, chromedriver)
    results: list[TargetResult] = []
    try:
        for target in targets:
            result = capture_with_retries(session, target, config.browser, out)
            append_report(out, result)
            results.append(result)
    finally:
        session.close()
    return results


class _Session:
    """The run's browser: started on first use, replaced after a crash."""

    def __init__(self, config: BrowserConfig, chromium: str, chromedriver: str) -> None:
        self._config = config
        self._chromium = chromium
        self._chromedriver = chromedriver
        self._browser: br.Browser | None = None

    def get(self) -> br.Browser:
        if self._browser is None:
            self._browser = br.start_browser(self._config, self._chromium, self._chromedriver)
        return self._browser

    def discard(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None

    def close(self) -> None:
        self.discard()


def capture_with_retries(
    session: _Session, target: TargetConfig, config: BrowserConfig, out: Path
) -> TargetResult:
    """Capture one target, trying again (``config.retries`` times at most) after
    a browser crash (at once, in a fresh browser) or a network failure (after
    ``retry_backoff_s``, doubled at each further retry). Any other failure, a
    refused login among them, is final: trying again would not change it."""
    stamp = datetime.now(UTC)
    written: list[Path] = []
    try:
        credentials = read_credentials(target)
    except CaptureError as e:
        return TargetResult(target.name, False, str(e), (), 1, (Attempt(1, "failed", str(e), 0.0),))
    secrets = [s for s in credentials if s]
    attempts = config.retries + 1
    tries: list[Attempt] = []
    network_retries = 0
    for attempt in range(1, attempts + 1):
        written.clear()
        t0 = time.monotonic()
        try:
            browser = session.get()
            capture_target(browser, target, config, out, stamp, credentials, written)
        except br.BrowserCrashError as e:
            session.discard()
            outcome, reason, pause = "crash", redact_report(str(e), secrets), 0.0
        except br.NetworkError as e:
            outcome, reason = "network", redact_report(str(e), secrets)
            pause = config.retry_backoff_s * 2**network_retries
            network_retries += 1
        except CaptureError as e:
            reason = redact_report(str(e), secrets)
            tries.append(Attempt(attempt, "failed", reason, time.monotonic() - t0))
            return TargetResult(target.name, False, reason, tuple(written), attempt, tuple(tries))
        else:
            tries.append(Attempt(attempt, "ok", "", time.monotonic() - t0))
            return TargetResult(target.name, True, "", tuple(written), attempt, tuple(tries))
        seconds = time.monotonic() - t0
        if attempt == attempts:
            tries.append(Attempt(attempt, outcome, reason, seconds))
            break
        tries.append(Attempt(attempt, outcome, reason, seconds, round(pause, 3)))
        log.warning(
            "%s: %s; retrying%s (attempt %d of %d)",
            target.name,
            reason,
            " with a fresh browser" if outcome == "crash" else f" in {pause:g} s",
            attempt + 1,
            attempts,
        )
        br.sleep(pause)
    last = tries[-1].reason
    reason = f"{last} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})"
    return TargetResult(target.name, False, reason, tuple(written), attempts, tuple(tries))


def read_credentials(target: TargetConfig) -> tuple[str, str]:
    """The login's username and password from their environment variables.

    Returns ``("", "")`` for a target without a login.

    Raises:
        CaptureError: ``login failed: environment variable X is not set``.
    """
    if target.login is None:
        return "", ""
    values = []
    for var, value in _login_env(target):
        if not value:
            raise CaptureError(f"login failed: environment variable {var} is not set")
        values.append(value)
    return values[0], values[1]


def login_secrets(targets: Iterable[TargetConfig]) -> list[str]:
    """The login values the environment holds for ``targets``: what no log may show."""
    return [value for t in targets for _, value in _login_env(t) if value]


def _login_env(target: TargetConfig) -> list[tuple[str, str | None]]:
    """``(variable, its value or None)`` for the login's username and password."""
    if target.login is None:
        return []
    return [
        (var, os.environ.get(var)) for var in (target.login.username_env, target.login.password_env)
    ]


def redact_secrets(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return text


_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def redact_report(text: str, secrets: Sequence[str]) -> str:
    """``text`` fit for the report and the logs: login secrets and any
    ``user:password@`` part of a URL replaced by ``***``."""
    return _USERINFO_RE.sub(r"\1***@", redact_secrets(text, secrets))


def capture_target(
    browser: br.Browser,
    target: TargetConfig,
    config: BrowserConfig,
    out: Path,
    stamp: datetime,
    credentials: tuple[str, str],
    written: list[Path],
) -> None:
    """Log in if needed, open the page, run the steps and capture each page.

    Appends each PNG written to ``written`` as it goes.

    Raises:
        CaptureError: the target failed; BrowserCrashError: the browser died.
    """
    driver = browser.driver
    timeout = config.timeout_s
    br.reset_session(driver)
    if target.login is not None:
        br.submit_login(driver, target.login, credentials[0], credentials[1], timeout)
    br.open_page(driver, target.url, timeout)
    if target.login is not None and _shows_login_form(driver, target):
        raise CaptureError(f"login failed: {target.url} showed the login form")
    for i, step in enumerate(target.before):
        run_step(driver, step, timeout, f"before[{i}]")
    count = target.pages.count if target.pages is not None else 1
    marker = ""
    for page in range(1, count + 1):
        prefix = f"page {page}: " if target.pages is not None else ""
        try:
            if page > 1 and target.pages is not None:
                _turn_page(driver, target.table, target.pages.next, marker, timeout)
            _wait_content(driver, target, timeout)
            fonts = br.wait_fonts(driver, timeout)
            shot = br.screenshot_element(driver, target.table)
            cells = br.table_cells(driver, target.table)
            # Remember what this page looks like, to recognise the next one.
            marker = br.mark_content(driver, target.table) if page < count else ""
        except br.BrowserCrashError:
            raise
        except CaptureError as e:
            raise CaptureError(f"{prefix}{e}") from e
        page_no = page if target.pages is not None else None
        written.append(write_shot(out, browser, target, stamp, page_no, shot, fonts, cells))


def _turn_page(
    driver: br.WebDriver, table: str | None, next_selector: str, marker: str, timeout: float
) -> None:
    try:
        br.click(driver, next_selector, timeout)
    except br.BrowserCrashError:
        raise
    except CaptureError as e:
        raise CaptureError(f"next {next_selector!r}: {e}") from e
    try:
        br.wait_changed(driver, table, marker, timeout)
    except br.BrowserCrashError:
        raise
    except CaptureError as e:
        raise CaptureError(f"clicking {next_selector!r} did not turn the page ({e})") from e


def _wait_content(driver: br.WebDriver, target: TargetConfig, timeout: float) -> None:
    if target.wait_for is None:
        return
    try:
        br.wait_visible(driver, target.wait_for, timeout)
    except br.SelectorTimeoutError as e:
        if target.login is not None and _shows_login_form(driver, target):
            raise CaptureError(f"login failed: the login form is shown ({e})") from e
        raise
    if target.table is not None and target.table != target.wait_for:
        br.wait_visible(driver, target.table, timeout)


def _shows_login_form(driver: br.WebDriver, target: TargetConfig) -> bool:
    login = target.login
    return login is not None and br.is_visible(driver, login.password)


def run_step(driver: br.WebDriver, step: Step, timeout: float, where: str) -> None:
    """Run one ``before`` step; errors are prefixed with ``where`` and the step."""
    try:
        if step.kind == "wait_s":
            br.sleep(step.seconds)
        elif step.kind == "click" and step.selector is not None:
            br.click(driver, step.selector, timeout)
        elif step.kind == "scroll" and step.selector is not None:
            br.scroll_to(driver, step.selector, timeout)
        else:
            raise CaptureError(f"unknown step {step.kind!r}")
    except br.BrowserCrashError:
        raise
    except CaptureError as e:
        raise CaptureError(f"{where} {step.kind}: {e}") from e


def write_shot(
    out: Path,
    browser: br.Browser,
    target: TargetConfig,
    stamp: datetime,
    page: int | None,
    shot: br.Screenshot,
    fonts: str,
    cells: dict[str, Any] | None = None,
) -> Path:
    """Write the PNG and its ``.json`` sidecar; return the PNG's path.

    ``cells`` (from :func:`capture.browser.table_cells`) become the sidecar's
    ``cells``: every cell's box in the image's pixels (see :func:`cells_in_image`).
    The sidecar's fields and format are :class:`gridreader.formats.shots.ShotSidecar`'s.

    Raises:
        CaptureError: the browser returned something that is not a usable image.
    """
    stem = build_stem(target.name, stamp, page)
    try:
        image = load_image(shot.png, name=f"{stem}.png")
    except ImageLoadError as e:
        raise CaptureError(f"the screenshot is not a usable image ({e})") from e
    height, width = image.shape[:2]
    x0, y0, x1, y1 = shot.box
    expected = (round((x1 - x0) * browser.scale), round((y1 - y0) * browser.scale))
    if abs(expected[0] - width) > 1 or abs(expected[1] - height) > 1:
        log.warning("%s: image is %dx%d px, expected %dx%d", stem, width, height, *expected)
    sidecar = ShotSidecar(
        target=target.name,
        url=target.url,
        selector=target.table,
        page=page,
        time=iso_utc(),
        scale=browser.scale,
        viewport=browser.viewport,
        browser=browser.version,
        sha256=hashlib.sha256(shot.png).hexdigest(),
        box=shot.box,
        image_size=(width, height),
        fonts=fonts,
        shape=target.shape,
        cells=cells_in_image(cells, shot.box, browser.scale, (width, height), stem),
    )
    return write_shot_files(out, stem, shot.png, sidecar)


def cells_in_image(
    cells: dict[str, Any] | None,
    box: br.Box,
    scale: float,
    size: tuple[int, int],
    stem: str = "",
) -> PageCells | None:
    """The table's cells in screenshot pixels, for the sidecar; None when the
    page's table is not one rectangle of cells.

    The page's boxes (CSS px of the document) are moved to the screenshot's
    origin and multiplied by the device pixel ratio. Header rows (``<th>``
    only) are left out, as the grid finder leaves header text out; a table
    with spanning cells, uneven rows, hidden cells, header rows between its
    data rows, or cells beyond the screenshot (``size``, the image's width and
    height) is not recorded (``batch`` then searches the picture as usual).

    Returns:
        ``R`` rows of ``C`` boxes ``(x0, y0, x1, y1)``, floats in image pixels
        rounded to 0.01, x1/y1 exclusive, and the number of header rows.
    """
    if not cells or not cells.get("rows"):
        return None
    rows = cells["rows"]
    cols = len(rows[0])
    why = ""
    if cells.get("header_inside"):
        why = "header rows between its data rows"
    elif any(len(r) != cols for r in rows):
        why = "rows of different lengths"
    elif any(c[4] != 1 or c[5] != 1 for r in rows for c in r):
        why = "cells spanning rows or columns"
    elif len(rows) * cols < 2:
        why = "fewer than two cells"
    elif any(c[2] <= c[0] or c[3] <= c[1] for r in rows for c in r):
        why = "hidden cells"
    x0, y0 = box[0], box[1]
    w, h = size
    outside = any(
        (c[0] - x0) * scale < -1
        or (c[1] - y0) * scale < -1
        or (c[2] - x0) * scale > w + 1
        or (c[3] - y0) * scale > h + 1
        for r in rows
        for c in r
    )
    if outside and not why:
        why = "cells beyond the screenshot"
    if why:
        log.info("%s: cell boxes not recorded (the table has %s)", stem, why)
        return None
    boxes = tuple(
        tuple(
            (
                round((c[0] - x0) * scale, 2),
                round((c[1] - y0) * scale, 2),
                round((c[2] - x0) * scale, 2),
                round((c[3] - y0) * scale, 2),
            )
            for c in r
        )
        for r in rows
    )
    return PageCells(len(rows), cols, int(cells.get("header_rows", 0)), boxes)


def append_report(out: Path, result: TargetResult) -> None:
    """Append ``result`` as one JSON line to ``out/capture-report.jsonl`` (atomically)."""
    line = {
        "target": result.name,
        "status": "ok" if result.ok else "failed",
        "reason": result.reason,
        "files": [_relative(p, out) for p in result.files],
        "time": iso_utc(),
        "attempts": result.attempts,
        "tries": [
            {
                "attempt": t.number,
                "outcome": t.outcome,
                "reason": t.reason,
                "seconds": round(t.seconds, 3),
                "retry_in_s": t.retry_in_s,
            }
            for t in result.tries
        ],
    }
    path = out / REPORT_NAME
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = ""
    except OSError as e:
        raise CaptureError(f"{path}: cannot read ({e.strerror or e})") from e
    if old and not old.endswith("\n"):
        old += "\n"
    write_atomic(path, old + json.dumps(line) + "\n")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
