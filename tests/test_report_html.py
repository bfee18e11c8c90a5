"""``OUT/report.html``: built from report.jsonl, checked as text and in headless Chromium."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chromium import chrome_driver
from conftest import ClearTable
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from capture.samples import serve_directory
from gridreader.cli import main
from gridreader.formats.report import read_report
from gridreader.report_html import (
    HIST_BINS,
    PageEntry,
    needs_review,
    render_report,
)

ODD_NAME = "odd #1 & <b>.png"  # escaped in the page, percent-encoded in its links


@dataclass(frozen=True)
class Run:
    out: Path
    below: float
    records: list[dict[str, Any]]


def batch(images: Path, out: Path, *extra: str) -> int:
    return main(["batch", str(images), "--out", str(out), "--workers", "1", *extra])


@pytest.fixture(scope="module")
def run(
    clear_tables: tuple[Path, list[ClearTable]], tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """A batch over the clear tables, an oddly named copy and a broken file, re-run
    with ``--review-below`` at a recorded confidence in the middle of those seen, so
    that some cells are low and some are not."""
    _, tables = clear_tables
    images = tmp_path_factory.mktemp("report-in")
    for t in tables:
        shutil.copy(t.path, images / t.path.name)
    shutil.copy(tables[0].path, images / ODD_NAME)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but nothing else")
    out = tmp_path_factory.mktemp("report-out") / "out"
    assert batch(images, out) == 1
    seen = sorted({c["confidence"] for r in read_report(out) for c in r["cells"]})
    below = seen[len(seen) // 2]
    assert 0 < below < 1, seen
    assert batch(images, out, "--force", "--review-below", f"{below}") == 1
    return Run(out, below, read_report(out))


def low_cells(records: list[dict[str, Any]], below: float) -> set[tuple[str, int, int]]:
    """The cells under ``below``, read straight off report.jsonl."""
    return {
        (str(Path(r["image"]).resolve()), c["row"], c["col"])
        for r in records
        for c in r["cells"]
        if c["confidence"] < below
    }


def review_cells(out: Path) -> set[tuple[str, int, int]]:
    """The cells batch put in the review queue."""
    found = set()
    for p in (out / "review").glob("*.json"):
        meta = json.loads(p.read_text())
        found.add((str(Path(meta["image"]).resolve()), meta["row"], meta["col"]))
    return found


# --- the page as text ------------------------------------------------------------------


def test_page_is_written_with_thumbnails_beside_it(run: Run) -> None:
    page = (run.out / "report.html").read_text(encoding="utf-8")
    thumbs = sorted(p.name for p in (run.out / "report" / "thumbs").iterdir())
    ok = [r for r in run.records if r["status"] == "ok"]
    assert len(thumbs) == len(ok) == 7, thumbs
    assert page.count("loading='lazy'") == len(ok)
    # Nothing is fetched from elsewhere: no scripts, no style sheets, no icon request.
    assert "<script" not in page and "stylesheet" not in page and "http" not in page
    assert "<link rel='icon' href='data:,'>" in page
    assert "<b>.png" not in page and "odd #1 &amp; &lt;b&gt;.png" in page


def test_a_rerun_that_reads_nothing_writes_the_same_page(run: Run) -> None:
    before = (run.out / "report.html").read_bytes()
    images = Path(run.records[0]["image"]).parent
    (run.out / "report.html").unlink()
    # As if read by a version without thumbnails: made again from the image file.
    thumb = run.out / "report" / "thumbs" / "t3-dark.jpg"
    thumb.unlink()
    assert batch(images, run.out, "--review-below", f"{run.below}") == 1
    # Every good image was skipped as up to date, and still is on the page.
    assert (run.out / "report.html").read_bytes() == before
    assert thumb.stat().st_size > 1000


def test_the_review_queue_and_the_page_share_one_rule(run: Run) -> None:
    assert review_cells(run.out) == low_cells(run.records, run.below)
    # On the recorded value: 0.89996 is recorded as 0.9, which is not under 0.9.
    assert needs_review(0.89994, 0.9) and not needs_review(0.89996, 0.9)
    assert needs_review(1.0, 1.0) and not needs_review(0.95, 0.9)


def test_render_report_escapes_every_text() -> None:
    record = {
        "image": "/in/<script>alert(1)</script>.png",
        "status": "error",
        "error": "/in/x.png: bad header <img src=x onerror=alert(2)>",
        "rows": None,
        "cols": None,
        "model": "m'\"<",
        "cells": [],
    }
    ok = {
        "image": "/in/a.png",
        "status": "ok",
        "error": None,
        "rows": 1,
        "cols": 2,
        "model": "m",
        "cells": [
            {"row": 0, "col": 0, "box": [0, 0, 5, 5], "value": 7, "confidence": 0.5},
            {"row": 0, "col": 1, "box": [5, 0, 9, 5], "value": None, "confidence": 0.99},
        ],
    }
    page = render_report(
        [PageEntry(record, "<script>"), PageEntry(ok, "a", "report/thumbs/a b#.jpg")],
        0.9,
        title="t <i>",
    )
    assert "<script" not in page and "<img src=x" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    assert "src='report/thumbs/a%20b%23.jpg'" in page
    assert "<td class='low' title='confidence 0.5000'>7</td>" in page
    assert "<td title='confidence 0.9900'></td>" in page
    assert page.count("<rect ") == HIST_BINS


# --- the page in Chromium ------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with chrome_driver((1280, 900), profile_prefix="report-chrome-", browser_log=True) as drv:
        yield drv


# Every thumbnail scrolled into view (they load lazily), then their state.
_LOAD_THUMBS = """
const done = arguments[arguments.length - 1];
const imgs = [...document.querySelectorAll('img.thumb')];
(async () => {
  for (const img of imgs) {
    img.scrollIntoView();
    for (let i = 0; i < 200 && !img.complete; i++) await new Promise(r => setTimeout(r, 25));
  }
  done(imgs.map(i => [i.complete, i.naturalWidth]));
})();
"""

_HIGHLIGHTED = """
const out = [];
for (const a of document.querySelectorAll('article.entry')) {
  a.querySelectorAll('table.cells tr').forEach((tr, r) =>
    tr.querySelectorAll('td').forEach((td, c) => {
      if (td.classList.contains('low')) out.push([a.dataset.image, r, c, td.title]);
    }));
}
return out;
"""


def open_report(driver: WebDriver, url: str) -> list[tuple[bool, int]]:
    driver.get(url)
    driver.set_script_timeout(60)
    return [tuple(s) for s in driver.execute_async_script(_LOAD_THUMBS)]


def severe_console_entries(driver: WebDriver) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


@pytest.mark.browser
def test_report_page_in_chromium(run: Run, driver: WebDriver) -> None:
    driver.get_log("browser")  # start from an empty log
    with serve_directory(run.out) as base:
        t0 = time.perf_counter()
        loaded = open_report(driver, f"{base}/report.html")
        assert time.perf_counter() - t0 < 60
        assert severe_console_entries(driver) == []
        assert len(loaded) == 7 and all(ok and w > 0 for ok, w in loaded), loaded

        # One entry per image, failures included, in report order.
        entries = driver.find_elements(By.CSS_SELECTOR, "main article.entry")
        assert [e.get_attribute("data-image") for e in entries] == [r["image"] for r in run.records]
        failed = driver.find_elements(By.CSS_SELECTOR, "article.entry.failed")
        (broken,) = [r for r in run.records if r["status"] == "error"]
        assert len(failed) == 1 and broken["error"] in failed[0].text
        assert broken["error"] in driver.find_element(By.ID, "failures").text

        # Highlighted cells: exactly those under --review-below, i.e. the review queue.
        shown = driver.execute_script(_HIGHLIGHTED)
        got = {(str(Path(i).resolve()), r, c) for i, r, c, _ in shown}
        assert got == low_cells(run.records, run.below) == review_cells(run.out)
        assert 0 < len(got) < sum(len(r["cells"]) for r in run.records)
        conf = {
            (str(Path(r["image"]).resolve()), c["row"], c["col"]): c["confidence"]
            for r in run.records
            for c in r["cells"]
        }
        assert all(
            t == f"confidence {conf[(str(Path(i).resolve()), r, c)]:.4f}" for i, r, c, t in shown
        )

        # Counts at the top, the histogram, and the links.
        counts = [e.text.split("\n") for e in driver.find_elements(By.CSS_SELECTOR, ".counts div")]
        n_cells = sum(len(r["cells"]) for r in run.records)
        assert counts == [
            ["8", "images"],
            [f"{n_cells:,}", "cells"],
            [str(len(got)), "cells to review"],
            ["1", "failures"],
        ]
        assert len(driver.find_elements(By.CSS_SELECTOR, "#histogram svg rect")) == HIST_BINS
        review = driver.find_element(By.ID, "review-link").get_attribute("href")
        assert review == f"{base}/review/"
        odd = [e for e in entries if e.get_attribute("data-image").endswith(ODD_NAME)]
        csv_link = odd[0].find_element(By.LINK_TEXT, "CSV").get_attribute("href")
        with urllib.request.urlopen(csv_link, timeout=10) as got_csv:
            assert got_csv.read() == (run.out / f"{Path(ODD_NAME).stem}.csv").read_bytes()

    # Opened straight from disk, no server: the same page, thumbnails and all.
    loaded = open_report(driver, (run.out / "report.html").as_uri())
    assert len(loaded) == 7 and all(ok and w > 0 for ok, w in loaded), loaded
    assert len(driver.find_elements(By.CSS_SELECTOR, "main article.entry")) == 8
    assert severe_console_entries(driver) == []
