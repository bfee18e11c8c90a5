"""The thin layer over Selenium and headless Chromium.

Everything that touches Selenium lives here; the rest of ``capture`` calls these
functions with a driver and gets plain values back (PNG bytes, boxes, strings).
Selenium's exceptions are translated: a page-level failure becomes
``CaptureError`` with a one-line reason, a dead browser or tab becomes
``BrowserCrashError`` (which the caller answers with a fresh browser).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    InvalidSelectorException,
    InvalidSessionIdException,
    JavascriptException,
    NoSuchElementException,
    NoSuchWindowException,
    SessionNotCreatedException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from urllib3.exceptions import HTTPError as Urllib3Error

from capture.config import BrowserConfig, LoginConfig
from gridreader.errors import CaptureError, one_line

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in CSS px of the page (document coordinates), x1/y1 exclusive."""

BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Overlay scrollbars come and go around a beyond-viewport capture and shift
    # centred layouts by half their width; without them the layout is stable.
    "--hide-scrollbars",
)
_POLL_S = 0.1
_CRASH_MARKERS = (
    "tab crashed",
    "session deleted",
    "invalid session id",
    "chrome not reachable",
    "disconnected",
    "no such window",
    "target window already closed",
    "browser has closed",
    "cannot connect to chrome",
    "devtoolsactiveport",
    "chrome failed to start",
)


class BrowserCrashError(CaptureError):
    """The browser, its tab or chromedriver died; only a fresh browser helps."""


class NetworkError(CaptureError):
    """The page could not be fetched for a reason that may pass: a timeout, a
    refused or reset connection, a failed DNS lookup, or an HTTP 5xx (or 408,
    429) answer for the page itself. The caller retries these after a pause."""


# Chromium's net error names that say "the network or the server failed this
# time"; certificate errors, bad URLs and missing files are not among them.
TRANSIENT_NET_ERRORS = frozenset(
    {
        "ERR_ADDRESS_UNREACHABLE",
        "ERR_CONNECTION_ABORTED",
        "ERR_CONNECTION_CLOSED",
        "ERR_CONNECTION_FAILED",
        "ERR_CONNECTION_REFUSED",
        "ERR_CONNECTION_RESET",
        "ERR_CONNECTION_TIMED_OUT",
        "ERR_EMPTY_RESPONSE",
        "ERR_HTTP2_PROTOCOL_ERROR",
        "ERR_INTERNET_DISCONNECTED",
        "ERR_NAME_NOT_RESOLVED",
        "ERR_NAME_RESOLUTION_FAILED",
        "ERR_NETWORK_CHANGED",
        "ERR_PROXY_CONNECTION_FAILED",
        "ERR_SOCKET_NOT_CONNECTED",
        "ERR_TIMED_OUT",
        "ERR_TUNNEL_CONNECTION_FAILED",
    }
)
# Answers that mean "try again later" by definition.
TRANSIENT_HTTP = frozenset({408, 429})


def is_transient_net_error(code: str) -> bool:
    """Whether Chromium's ``ERR_...`` name is a network failure worth a retry."""
    return code in TRANSIENT_NET_ERRORS or code.startswith("ERR_DNS_")


def is_transient_status(status: int) -> bool:
    """Whether an HTTP status for the page is worth a retry (5xx, 408, 429)."""
    return 500 <= status <= 599 or status in TRANSIENT_HTTP


class SelectorTimeoutError(CaptureError):
    """A selector did not become visible within the timeout."""


@dataclass(frozen=True)
class Screenshot:
    """A PNG of part of a page and where that part is in the page (CSS px)."""

    png: bytes
    box: Box


class Browser:
    """A running Chromium (via chromedriver) with its own temporary profile.

    Attributes:
        driver: the Selenium driver; pass it to this module's functions.
        version: e.g. ``"Chromium 126.0.6478.126"``.
        viewport: the measured viewport ``(width, height)`` in CSS px.
        scale: the device scale factor Chromium was pinned to.
    """

    def __init__(
        self,
        driver: WebDriver,
        profile_dir: str,
        version: str,
        viewport: tuple[int, int],
        scale: float,
    ) -> None:
        self.driver = driver
        self.version = version
        self.viewport = viewport
        self.scale = scale
        self._profile_dir = profile_dir

    def close(self) -> None:
        """Quit the browser and remove its profile; never raises."""
        try:
            self.driver.quit()
        except (WebDriverException, Urllib3Error, OSError) as e:
            log.debug("quitting the browser failed: %s", _first_line(e))
        shutil.rmtree(self._profile_dir, ignore_errors=True)


def chromium_flags(config: BrowserConfig, profile_dir: str) -> list[str]:
    """The Chromium command-line flags for ``config`` and a profile directory."""
    width, height = config.window
    return [
        *BASE_FLAGS,
        f"--user-data-dir={profile_dir}",
        f"--window-size={width},{height}",
        f"--force-device-scale-factor={config.scale:g}",
    ]


def start_browser(config: BrowserConfig, chromium: str, chromedriver: str) -> Browser:
    """Start headless Chromium with a fresh profile and the viewport of ``config``.

    Raises:
        BrowserCrashError: Chromium or chromedriver did not start.
    """
    profile_dir = tempfile.mkdtemp(prefix="gridreader-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in chromium_flags(config, profile_dir):
        options.add_argument(flag)
    service = guarded_service(chromedriver, profile_dir)
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except (WebDriverException, Urllib3Error, OSError) as e:
        shutil.rmtree(profile_dir, ignore_errors=True)
        raise BrowserCrashError(f"browser did not start ({_first_line(e)})") from e
    browser = Browser(driver, profile_dir, "", config.window, config.scale)
    try:
        with _translate_errors("starting the browser"):
            viewport = _set_viewport(driver, config.window)
            version = f"Chromium {driver.capabilities.get('browserVersion', '?')}"
            driver.set_script_timeout(config.timeout_s)
    except CaptureError as e:
        browser.close()
        raise BrowserCrashError(str(e)) from e
    browser.viewport = viewport
    browser.version = version
    return browser


GUARD = Path(__file__).with_name("guard.py")


class _GuardedService(Service):
    """chromedriver started under ``capture/guard.py``, which takes the whole
    browser tree (and its profile folder) down when this process dies."""

    def __init__(self, chromedriver: str, profile_dir: str) -> None:
        super().__init__(executable_path=sys.executable, log_output=subprocess.DEVNULL)
        self._guard_args = ["-I", "-S", str(GUARD), str(os.getpid()), profile_dir, chromedriver]

    def env_path(self) -> str | None:
        # SE_CHROMEDRIVER would replace the interpreter that runs the guard.
        return None

    def command_line_args(self) -> list[str]:
        return [*self._guard_args, *super().command_line_args()]


def guarded_service(chromedriver: str, profile_dir: str) -> Service:
    """The Selenium service for ``chromedriver``: guarded on Linux, plain elsewhere.

    The guard gets its parent-death signal when the *thread* that starts the
    browser ends, so start it from a thread that outlives the browser (the
    capture runs on the main thread).
    """
    if sys.platform.startswith("linux") and sys.executable and GUARD.is_file():
        return _GuardedService(chromedriver, profile_dir)
    return Service(executable_path=chromedriver, log_output=subprocess.DEVNULL)


def _set_viewport(driver: WebDriver, window: tuple[int, int]) -> tuple[int, int]:
    # --window-size sizes the whole (invisible) window, browser frame included;
    # grow the window by the frame so that the viewport gets the configured size.
    # With a fractional scale factor the frame rounds differently, so correct
    # by what is measured, a few times at most.
    measure = "return [window.innerWidth, window.innerHeight]"
    viewport = (0, 0)
    for _ in range(3):
        got = driver.execute_script(measure)
        viewport = (int(got[0]), int(got[1]))
        if viewport == window:
            break
        size = driver.get_window_size()
        driver.set_window_size(
            int(size["width"]) + window[0] - viewport[0],
            int(size["height"]) + window[1] - viewport[1],
        )
    else:
        got = driver.execute_script(measure)
        viewport = (int(got[0]), int(got[1]))
    # Off by one CSS px is as close as a fractional scale factor allows.
    if max(abs(viewport[0] - window[0]), abs(viewport[1] - window[1])) > 1:
        log.warning("viewport is %sx%s, not the configured %sx%s", *viewport, *window)
    return viewport


def reset_session(driver: WebDriver) -> None:
    """Forget cookies and leave the current page, so targets do not leak into each other."""
    with _translate_errors("resetting the browser"):
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        driver.get("about:blank")


def open_page(driver: WebDriver, url: str, timeout_s: float) -> None:
    """Navigate to ``url`` and wait for its load event.

    The page's own HTTP status is read from Navigation Timing
    (``responseStatus``): the answer the browser rendered, with the session's
    cookies, at no extra request.

    Raises:
        NetworkError: no load event within ``timeout_s``, a transient network
            error (``unreachable: URL (ERR_...)``) or an HTTP 5xx/408/429.
        CaptureError: any other network error or HTTP error status.
    """
    driver.set_page_load_timeout(timeout_s)
    try:
        driver.get(url)
    except TimeoutException as e:
        raise NetworkError(f"timeout: {url} did not load within {_secs(timeout_s)}") from e
    except WebDriverException as e:
        code = re.search(r"net::(ERR_[A-Z_0-9]+)", e.msg or "")
        if code:
            kind = NetworkError if is_transient_net_error(code.group(1)) else CaptureError
            raise kind(f"unreachable: {url} ({code.group(1)})") from e
        _raise_translated(e, f"opening {url}")
    with _translate_errors(f"opening {url}"):
        uri, error_code, status = driver.execute_script(
            "const nav = performance.getEntriesByType('navigation')[0] || {};"
            "const code = document.querySelector('.error-code');"
            "return [document.documentURI, code ? code.textContent : '',"
            " nav.responseStatus || 0];"
        )
    if str(uri).startswith("chrome-error:"):
        name = str(error_code).strip()
        kind = NetworkError if not name or is_transient_net_error(name) else CaptureError
        raise kind(f"unreachable: {url} ({name or 'network error'})")
    if int(status) >= 400:
        kind = NetworkError if is_transient_status(int(status)) else CaptureError
        raise kind(f"HTTP {int(status)} from {url}")


def current_url(driver: WebDriver) -> str:
    """The URL of the page the browser shows."""
    with _translate_errors("reading the URL"):
        return str(driver.current_url)


def wait_visible(driver: WebDriver, selector: str, timeout_s: float) -> None:
    """Wait until an element matching ``selector`` is displayed.

    Raises:
        SelectorTimeoutError: it did not appear within ``timeout_s``.
        CaptureError: the selector is not valid CSS.
    """
    _wait_for_css(
        driver, ec.visibility_of_element_located, selector, timeout_s, f"waiting for {selector!r}"
    )


def is_visible(driver: WebDriver, selector: str) -> bool:
    """Whether an element matching ``selector`` is displayed now."""
    with _translate_errors(f"looking for {selector!r}"):
        try:
            return any(el.is_displayed() for el in driver.find_elements(By.CSS_SELECTOR, selector))
        except StaleElementReferenceException:
            return False


def wait_fonts(driver: WebDriver, timeout_s: float) -> str:
    """Wait for ``document.fonts.ready`` (repeatedly, as late layout can start more
    font loads) and two frames, so that what is painted uses the final fonts.

    Returns:
        ``document.fonts.status`` at the end (``"loaded"`` normally).

    Raises:
        CaptureError: fonts still loading after ``timeout_s``.
    """
    driver.set_script_timeout(timeout_s)
    try:
        return str(driver.execute_async_script(_FONTS_JS))
    except TimeoutException as e:
        raise CaptureError(f"timeout: fonts not ready within {_secs(timeout_s)}") from e
    except WebDriverException as e:
        _raise_translated(e, "waiting for fonts")


_FONTS_JS = """
const done = arguments[arguments.length - 1];
const frame = () => new Promise(r => {
  requestAnimationFrame(() => r());
  setTimeout(r, 100);  // rAF does not run while a page is hidden
});
(async () => {
  if (document.body) void document.body.offsetHeight;  // lay out, which starts font loads
  await frame(); await frame();
  for (let i = 0; i < 20; i++) {
    await document.fonts.ready;
    await frame();
    if (document.fonts.status === 'loaded') break;
  }
  await frame(); await frame();
  done(document.fonts.status);
})().catch(e => done('error: ' + e));
"""


def sleep(seconds: float) -> None:
    """Pause for a ``wait_s`` step."""
    time.sleep(seconds)


def click(driver: WebDriver, selector: str, timeout_s: float) -> None:
    """Click the element ``selector`` once it is clickable.

    Raises:
        CaptureError: no clickable element within ``timeout_s``.
    """
    element = _wait_clickable(driver, selector, timeout_s)
    with _translate_errors(f"clicking {selector!r}"):
        try:
            element.click()
        except ElementClickInterceptedException:
            # Something (a sticky header, an overlay) covers it; a DOM click still works.
            driver.execute_script("arguments[0].click()", element)


def scroll_to(driver: WebDriver, selector: str, timeout_s: float) -> None:
    """Scroll the element ``selector`` into view.

    Raises:
        CaptureError: it did not appear within ``timeout_s``.
    """
    element = _wait_for_css(
        driver, ec.presence_of_element_located, selector, timeout_s, f"scrolling to {selector!r}"
    )
    with _translate_errors(f"scrolling to {selector!r}"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)


def submit_login(
    driver: WebDriver, login: LoginConfig, username: str, password: str, timeout_s: float
) -> None:
    """Fill and submit a login form, and check that it went away.

    The credentials are typed into the fields and never put into a message.

    Raises:
        CaptureError: ``login failed: ...`` when the form is missing, stays, or
            comes back after submitting.
    """
    open_page(driver, login.url, timeout_s)
    try:
        wait_visible(driver, login.username, timeout_s)
    except SelectorTimeoutError as e:
        raise CaptureError(f"login failed: {e}") from e
    with _translate_errors("filling the login form"):
        try:
            user_field = driver.find_element(By.CSS_SELECTOR, login.username)
            pass_field = driver.find_element(By.CSS_SELECTOR, login.password)
        except NoSuchElementException as e:
            raise CaptureError(
                f"login failed: field {login.password!r} not found on {login.url}"
            ) from e
        user_field.clear()
        user_field.send_keys(username)
        pass_field.clear()
        pass_field.send_keys(password)
    click(driver, login.submit, timeout_s)
    try:
        WebDriverWait(driver, timeout_s, poll_frequency=_POLL_S).until(
            lambda _: _is_gone(pass_field)
        )
    except TimeoutException as e:
        raise CaptureError(
            f"login failed: the login form was still shown {_secs(timeout_s)} after submitting"
        ) from e
    except WebDriverException as e:
        _raise_translated(e, "submitting the login form")
    _wait_ready(driver, timeout_s)
    if is_visible(driver, login.password):
        raise CaptureError("login failed: the login form came back after submitting")


def _is_gone(element: WebElement) -> bool:
    try:
        return not element.is_displayed()
    except StaleElementReferenceException:
        return True
    except WebDriverException as e:
        # Asked while the next page replaces the document, chromedriver may
        # answer with an inspector error instead of a stale reference.
        if any(m in (e.msg or "") for m in _DETACHED_NODE):
            return True
        raise


_DETACHED_NODE = ("does not belong to the document", "No node with given id")


def _wait_ready(driver: WebDriver, timeout_s: float) -> None:
    try:
        WebDriverWait(driver, timeout_s, poll_frequency=_POLL_S).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
    except TimeoutException as e:
        raise CaptureError(f"timeout: page did not finish loading within {_secs(timeout_s)}") from e
    except WebDriverException as e:
        _raise_translated(e, "waiting for the page to load")


def mark_content(driver: WebDriver, selector: str | None) -> str:
    """Tag the element ``selector`` (or the document) and return its current HTML,
    so that ``wait_changed`` can tell when the next page has replaced it."""
    with _translate_errors("reading the page"):
        html = driver.execute_script(
            "const el = arguments[0] ? document.querySelector(arguments[0])"
            " : document.documentElement;"
            "if (!el) return null;"
            "el.dataset.gridreaderMark = '1';"
            "return el.outerHTML;",
            selector,
        )
    if html is None:
        raise CaptureError(f"selector {selector!r} not found")
    return str(html)


def wait_changed(driver: WebDriver, selector: str | None, before: str, timeout_s: float) -> None:
    """Wait until the element ``selector`` was replaced or its HTML differs from ``before``.

    Raises:
        CaptureError: no change within ``timeout_s``.
    """

    def turned(d: WebDriver) -> bool:
        try:
            return d.execute_script(_CHANGED_JS, selector, before) in ("new", "changed")
        except JavascriptException:
            # The document is being replaced under the script; look again.
            return False

    try:
        WebDriverWait(driver, timeout_s, poll_frequency=_POLL_S).until(turned)
    except TimeoutException as e:
        raise CaptureError(f"the page did not change within {_secs(timeout_s)}") from e
    except WebDriverException as e:
        _raise_translated(e, "waiting for the next page")


_CHANGED_JS = """
const el = arguments[0] ? document.querySelector(arguments[0]) : document.documentElement;
if (!el) return 'gone';
if (el.dataset.gridreaderMark !== '1') return 'new';
return el.outerHTML === arguments[1] ? 'same' : 'changed';
"""


def screenshot_element(driver: WebDriver, selector: str | None) -> Screenshot:
    """A PNG of the whole element ``selector`` (None: the whole page), at the pinned scale.

    Chrome clips element screenshots to the viewport, so this asks the DevTools
    protocol for a clip in page coordinates instead; an element that does not fit
    the viewport is captured with ``captureBeyondViewport``.

    Raises:
        CaptureError: no such element, or it has an empty box.
    """
    with _translate_errors(f"capturing {selector or 'the page'!r}"):
        box, fits = _element_box(driver, selector)
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            raise CaptureError(f"selector {selector!r} has an empty box ({x1 - x0}x{y1 - y0})")
        clip = {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0, "scale": 1}
        result = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": not fits},
        )
    return Screenshot(png=base64.b64decode(result["data"]), box=box)


def _element_box(driver: WebDriver, selector: str | None) -> tuple[Box, bool]:
    # Scroll an element that fits into view, so that it is captured exactly as
    # laid out in the configured viewport; measure after scrolling.
    raw = driver.execute_script(_BOX_JS, selector)
    if raw is None:
        raise CaptureError(f"selector {selector!r} not found")
    left, top, right, bottom, fits = raw
    # Snap outwards to whole CSS px, ignoring float noise from layout.
    box = (
        math.floor(left + 1e-3),
        math.floor(top + 1e-3),
        math.ceil(right - 1e-3),
        math.ceil(bottom - 1e-3),
    )
    return box, bool(fits)


_BOX_JS = """
const sel = arguments[0];
if (!sel) {
  const d = document.documentElement, b = document.body || d;
  const w = Math.max(d.scrollWidth, b.scrollWidth), h = Math.max(d.scrollHeight, b.scrollHeight);
  return [0, 0, w, h, w <= window.innerWidth && h <= window.innerHeight];
}
const el = document.querySelector(sel);
if (!el) return null;
let r = el.getBoundingClientRect();
const fits = r.width <= window.innerWidth && r.height <= window.innerHeight;
if (fits) {
  el.scrollIntoView({block: 'nearest', inline: 'nearest'});
  r = el.getBoundingClientRect();
}
return [r.left + window.scrollX, r.top + window.scrollY,
        r.right + window.scrollX, r.bottom + window.scrollY, fits];
"""


def table_cells(driver: WebDriver, selector: str | None) -> dict[str, Any] | None:
    """The cell boxes of the table in ``selector`` (None: the page), in CSS px of the page.

    The table is the element itself when it is a ``<table>``, else the table
    inside it with the most ``<td>``. Rows without a ``<td>`` (header rows of
    ``<th>``) are counted in ``header_rows`` and left out; hidden rows too.

    Returns:
        ``{"header_rows": n, "header_inside": bool, "rows": [[[x0, y0, x1, y1,
        colspan, rowspan], ...], ...]}``, or None when there is no table.
    """
    with _translate_errors(f"measuring the cells of {selector or 'the page'!r}"):
        raw = driver.execute_script(_CELLS_JS, selector)
    return raw if isinstance(raw, dict) else None


_CELLS_JS = """
const sel = arguments[0];
const root = sel ? document.querySelector(sel) : document.documentElement;
if (!root) return null;
const tables = root.tagName === 'TABLE' ? [root] : Array.from(root.querySelectorAll('table'));
let best = null, most = 0;
for (const t of tables) {
  const n = t.querySelectorAll('td').length;
  if (n > most) { best = t; most = n; }
}
if (!best) return null;
const rows = [];
let header = 0, inside = false, pending = 0;
for (const tr of best.rows) {
  const cells = Array.from(tr.cells);
  const shown = tr.getBoundingClientRect();
  if (shown.width === 0 || shown.height === 0) continue;
  if (!cells.some(c => c.tagName === 'TD')) {
    header++;
    if (rows.length) pending++;
    continue;
  }
  if (pending) inside = true;
  rows.push(cells.map(c => {
    const b = c.getBoundingClientRect();
    return [b.left + window.scrollX, b.top + window.scrollY,
            b.right + window.scrollX, b.bottom + window.scrollY, c.colSpan, c.rowSpan];
  }));
}
return {header_rows: header, header_inside: inside, rows: rows};
"""


def _wait_clickable(driver: WebDriver, selector: str, timeout_s: float) -> WebElement:
    return _wait_for_css(
        driver,
        ec.element_to_be_clickable,
        selector,
        timeout_s,
        f"waiting for {selector!r}",
        missing=f"no clickable {selector!r} within {_secs(timeout_s)}",
    )


def _wait_for_css(
    driver: WebDriver,
    condition: Any,
    selector: str,
    timeout_s: float,
    action: str,
    missing: str | None = None,
) -> WebElement:
    """Wait until ``condition`` (an ``expected_conditions`` factory) holds for
    the CSS ``selector``, and return the element it found.

    Raises:
        SelectorTimeoutError: not within ``timeout_s`` (``missing`` says so, if given).
        CaptureError: the selector is not valid CSS, or the browser failed.
    """
    try:
        element: WebElement = WebDriverWait(driver, timeout_s, poll_frequency=_POLL_S).until(
            condition((By.CSS_SELECTOR, selector))
        )
    except TimeoutException as e:
        raise SelectorTimeoutError(
            missing or f"selector {selector!r} did not appear within {_secs(timeout_s)}"
        ) from e
    except InvalidSelectorException as e:
        raise CaptureError(f"invalid CSS selector {selector!r}") from e
    except WebDriverException as e:
        _raise_translated(e, action)
    return element


@contextlib.contextmanager
def _translate_errors(action: str) -> Iterator[None]:
    try:
        yield
    except CaptureError:
        raise
    except TimeoutException as e:
        raise CaptureError(f"timeout: {action}") from e
    except WebDriverException as e:
        _raise_translated(e, action)
    except (Urllib3Error, ConnectionError) as e:
        # chromedriver itself is gone.
        raise BrowserCrashError(f"browser crashed while {action} ({_first_line(e)})") from e


def _raise_translated(e: WebDriverException, action: str) -> NoReturn:
    message = _first_line(e)
    crashed = isinstance(
        e, InvalidSessionIdException | NoSuchWindowException | SessionNotCreatedException
    ) or any(marker in message.lower() for marker in _CRASH_MARKERS)
    if crashed:
        raise BrowserCrashError(f"browser crashed while {action} ({message})") from e
    raise CaptureError(f"{action}: {message}") from e


def _first_line(e: BaseException) -> str:
    # Selenium's str(e) adds a stack trace; its msg is the message alone.
    return one_line(e, 200, e.msg if isinstance(e, WebDriverException) and e.msg else None)


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"
