"""Headless Chromium for the browser tests, set up once (CONVENTIONS.md): the
binaries, passed explicitly (Selenium Manager cannot download), and the flags."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextlib.contextmanager
def chrome_driver(
    window: tuple[int, int], *, profile_prefix: str, browser_log: bool = False
) -> Iterator[WebDriver]:
    """A Selenium driver of headless Chromium with a ``window`` (width, height)
    and a fresh profile, removed on exit; ``browser_log`` keeps the console log."""
    profile = tempfile.mkdtemp(prefix=profile_prefix)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--window-size={window[0]},{window[1]}"):
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    if browser_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        try:
            yield drv
        finally:
            drv.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
