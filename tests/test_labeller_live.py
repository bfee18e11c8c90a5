"""The labeller follows its review folders, and never saves a crop nobody saw.

- Crops that a running ``batch`` writes join the queue in confidence order,
  without a restart; temp files and crops without a sidecar are never served.
- A key that saves is ignored while a new crop settles (250 ms, and painted):
  ``e`` then Enter, or a double Enter, store exactly one label.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from test_labeller_browser import (
    Live,
    driver,  # noqa: F401 (the module's browser, a fixture)
    live,  # noqa: F401 (a fixture)
    open_page,
    shown,
    wait_for,
    wait_settled,
    wait_shown,
)
from test_labeller_review import make_review_dir, queue_order

from labeller.app import create_app, make_label_server
from labeller.review import LiveReviewIndex
from labeller.store import LabelStore

# -- the live index ---------------------------------------------------------------


def test_new_crops_join_the_queue_in_confidence_order(tmp_path: Path) -> None:
    review = tmp_path / "review"
    first = make_review_dir(review, 6, stem="a", seed=1)
    index = LiveReviewIndex([review], interval_s=0)
    assert [it.sha256 for it in index.items] == queue_order(first)
    assert index.generation == 0
    assert not index.refresh()  # nothing changed

    # Half-written: a temp file, and a crop whose sidecar is not there yet.
    (review / ".b.r000c000.json.x1y2.tmp").write_text("{")
    (review / "c.r000c000.png").write_bytes(b"\x89PNG half")
    more = make_review_dir(review, 5, stem="b", seed=2)
    assert index.refresh(force=True)
    assert index.generation == 1
    both = first + more
    assert [it.sha256 for it in index.items] == queue_order(both)
    assert index.problems == ()
    assert set(index.order) == {c.sha256 for c in both}
    assert index.class_sets == {index.items[0].cell.classes: 0}


def test_a_changed_folder_is_noticed_without_forcing(tmp_path: Path) -> None:
    review = tmp_path / "review"
    review.mkdir()
    index = LiveReviewIndex([review], interval_s=0)
    assert index.items == ()
    cells = make_review_dir(review, 3, stem="a", seed=3)
    assert index.refresh()
    assert [it.sha256 for it in index.items] == queue_order(cells)
    # A batch re-run replaces a crop: the old one leaves the queue.
    for p in review.glob("a.r000c000.*"):
        p.unlink()
    assert index.refresh()
    assert len(index.items) == 2 and cells[0].sha256 not in index.by_sha


def test_a_request_reads_one_snapshot_and_new_crops_reach_the_api(tmp_path: Path) -> None:
    review = tmp_path / "review"
    first = make_review_dir(review, 4, stem="a", seed=4)
    index = LiveReviewIndex([review], interval_s=0)
    client = create_app(index, LabelStore(tmp_path / "labels.db")).test_client()
    data = client.get("/api/queue").get_json()
    assert [it["sha256"] for it in data["items"]] == queue_order(first)
    assert data["progress"]["generation"] == 0
    more = make_review_dir(review, 4, stem="b", seed=5)
    data = client.get("/api/queue").get_json()
    assert [it["sha256"] for it in data["items"]] == queue_order(first + more)
    assert data["progress"] == {
        "labelled": 0,
        "total": 8,
        "remaining": 8,
        "stored": 0,
        "generation": 1,
    }
    sha = queue_order(more)[0]
    resp = client.post("/api/label", json={"sha256": sha, "label": "5"})
    assert resp.status_code == 200
    assert client.get(f"/crop/{sha}").status_code == 200


# -- in the browser ---------------------------------------------------------------


def type_keys(drv: WebDriver, *keys: str) -> None:
    # One action chain: the keys arrive within a few milliseconds of each other.
    ActionChains(drv).send_keys(*keys).perform()


def message(drv: WebDriver) -> str:
    return str(drv.find_element(By.ID, "message").text)


@pytest.mark.browser
def test_e_then_enter_stores_one_label(driver: WebDriver, live: Live) -> None:  # noqa: F811
    open_page(driver, live)
    o = live.order
    type_keys(driver, "e", Keys.ENTER)
    wait_shown(driver, o[1])
    time.sleep(0.5)  # anything that was going to be saved is saved by now
    assert live.store().labels() == {o[0]: "empty"}
    assert "Ignored that key" in message(driver)
    # Once the crop has settled, Enter works again.
    type_keys(driver, Keys.ENTER)
    wait_shown(driver, o[2])
    wait_for(lambda: live.store().count() == 2, "the second label")
    assert live.store().labels() == {o[0]: "empty", o[1]: live.cells[o[1]].guess}


@pytest.mark.browser
def test_a_double_enter_stores_one_label(driver: WebDriver, live: Live) -> None:  # noqa: F811
    open_page(driver, live)
    o = live.order
    type_keys(driver, Keys.ENTER, Keys.ENTER)
    wait_shown(driver, o[1])
    time.sleep(0.5)
    assert live.store().labels() == {o[0]: live.cells[o[0]].guess}
    assert "Ignored that key" in message(driver)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A labeller over an empty review folder, as ``gridreader label`` serves it."""
    review = tmp_path / "out" / "review"
    review.mkdir(parents=True)
    db = tmp_path / "labels.db"
    app = create_app(LiveReviewIndex([review]), LabelStore(db))
    server = make_label_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/", tmp_path / "out", db
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.mark.browser
def test_crops_from_a_batch_run_become_labellable_without_a_restart(
    driver: WebDriver,  # noqa: F811
    served: tuple[str, Path, Path],
    table_image_dir: Path,
    untrained_model_dir: Path,
    tmp_path: Path,
) -> None:
    from gridreader.batch import run_batch
    from gridreader.model import load_classifier

    url, out, db = served
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === '1'"), "page")
    assert driver.find_element(By.ID, "done").is_displayed()
    assert driver.find_element(By.ID, "progress").text == "0 / 0 labelled"

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(table_image_dir / "t00.png", images)
    summary = run_batch(images, out, load_classifier(untrained_model_dir), review_below=1.0)
    assert summary.ok == 1 and summary.review > 0
    written = time.monotonic()
    sidecars = sorted((out / "review").glob("*.json"))
    assert len(sidecars) == summary.review
    # Blank cells give byte-identical crops: each is asked once (the first sidecar's).
    metas: dict[str, dict[str, Any]] = {}
    for p in sidecars:
        meta = json.loads(p.read_text())
        metas.setdefault(meta["sha256"], meta)
    order = [
        m["sha256"] for m in sorted(metas.values(), key=lambda m: (m["confidence"], m["crop"]))
    ]

    # The page finds the new crops on its own, least confident first.
    wait_for(lambda: shown(driver) == order[0], "the first new crop", timeout=15)
    seen_after = time.monotonic() - written
    total = f"0 / {len(order)} labelled"
    wait_for(lambda: driver.find_element(By.ID, "progress").text == total, "the new total")
    wait_settled(driver)
    type_keys(driver, "7", Keys.ENTER)
    wait_shown(driver, order[1])
    wait_for(lambda: LabelStore(db).labels() == {order[0]: "7"}, "the label stored")
    assert seen_after < 10, f"new crops took {seen_after:.1f} s to show"
