"""The labelling page driven by real headless Chromium: keyboard flow, reload, grid mode."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chromium import chrome_driver
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from test_labeller_review import CELL_W, Cell, make_review_dir, queue_order
from test_labeller_server import http

from labeller.app import create_app, make_label_server
from labeller.review import load_review_dirs
from labeller.store import LabelStore

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with chrome_driver((1280, 1000), profile_prefix="labeller-chrome-") as drv:
        yield drv


@dataclass
class Live:
    """A labeller served on 127.0.0.1 from a thread, over a fresh review folder and store."""

    url: str
    db: Path
    cells: dict[str, Cell]
    order: list[str]

    def store(self) -> LabelStore:
        return LabelStore(self.db)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    # Every third cell is guessed "7" (often wrongly): material for grid mode.
    cells = make_review_dir(
        tmp_path / "review", 24, seed=51, guess_of=lambda i, v: "7" if i % 3 == 0 else v
    )
    db = tmp_path / "labels.db"
    app = create_app(load_review_dirs([tmp_path / "review"]), LabelStore(db))
    server = make_label_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(
            url=f"http://127.0.0.1:{server.port}/",
            db=db,
            cells={c.sha256: c for c in cells},
            order=queue_order(cells),
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def wait_for(what: Callable[[], Any], message: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.05)


def open_page(driver: WebDriver, live: Live) -> WebElement:
    driver.get(live.url)
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'")
    )
    wait_settled(driver)
    return driver.find_element(By.ID, "answer")


def wait_settled(driver: WebDriver) -> None:
    """Until the page takes keys that save (a new crop is ignored for 250 ms)."""
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.body.dataset.settled === '1'")
    )


def shown(driver: WebDriver) -> str | None:
    return driver.find_element(By.ID, "crop").get_attribute("data-sha256")


def wait_shown(driver: WebDriver, sha: str) -> None:
    wait_for(lambda: shown(driver) == sha, f"crop {sha[:10]} on screen")
    wait_settled(driver)


def wait_label(live: Live, sha: str, label: str | None) -> None:
    def stored() -> bool:
        lab = live.store().get(sha)
        return (lab.label if lab else None) == label

    wait_for(stored, f"label {label!r} stored for {sha[:10]}")


def press(driver: WebDriver, *keys: str) -> None:
    """Keys to whatever has focus, as from a keyboard: ``element.send_keys`` would
    move the caret to the end when the window lacks focus, after the selected guess."""
    ActionChains(driver).send_keys(*keys).perform()


def progress_text(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "progress").text


def test_type_17_and_enter_stores_it_and_the_next_crop_appears(
    driver: WebDriver, live: Live
) -> None:
    answer = open_page(driver, live)
    first, second = live.order[0], live.order[1]
    assert shown(driver) == first
    # The guess is pre-filled and selected, so typing replaces it.
    guess = live.cells[first].guess
    assert answer.get_attribute("value") == guess
    sel = driver.execute_script(
        "const a = document.getElementById('answer');"
        "return [document.activeElement === a, a.selectionStart, a.selectionEnd];"
    )
    assert sel == [True, 0, len(guess)]
    assert progress_text(driver) == "0 / 24 labelled"
    press(driver, "17", Keys.ENTER)
    wait_label(live, first, "17")
    wait_shown(driver, second)
    assert answer.get_attribute("value") == live.cells[second].guess
    wait_for(lambda: progress_text(driver) == "1 / 24 labelled", "progress 1 / 24")
    assert live.store().count() == 1


def test_crop_is_upscaled_pixelated_and_its_column_marked_in_the_strip(
    driver: WebDriver, live: Live
) -> None:
    open_page(driver, live)
    cell = live.cells[live.order[0]]
    crop = driver.find_element(By.ID, "crop")
    wait_for(lambda: driver.execute_script("return arguments[0].naturalWidth", crop), "crop load")
    natural, shown_w, rendering = driver.execute_script(
        "const c = arguments[0]; return [c.naturalWidth, c.getBoundingClientRect().width,"
        " getComputedStyle(c).imageRendering];",
        crop,
    )
    assert rendering == "pixelated"
    assert shown_w >= 4 * natural and shown_w % natural == 0
    mark = driver.find_element(By.ID, "strip-mark")
    wait_for(mark.is_displayed, "strip highlight")
    left, width, strip_w, strip_nat = driver.execute_script(
        "const m = arguments[0].getBoundingClientRect();"
        "const s = document.getElementById('strip');"
        "const r = s.getBoundingClientRect();"
        "return [m.left - r.left, m.width, r.width, s.naturalWidth];",
        mark,
    )
    scale = strip_w / strip_nat
    assert abs(left - cell.x_in_strip * scale) < 2
    assert abs(width - CELL_W * scale) < 2


def test_enter_on_the_prefilled_guess_accepts_it(driver: WebDriver, live: Live) -> None:
    answer = open_page(driver, live)
    first = live.order[0]
    answer.send_keys(Keys.ENTER)
    wait_label(live, first, live.cells[first].guess)
    wait_shown(driver, live.order[1])


def test_e_and_dash_mark_empty_and_s_skips(driver: WebDriver, live: Live) -> None:
    answer = open_page(driver, live)
    o = live.order
    answer.send_keys("e")
    wait_label(live, o[0], "empty")
    wait_shown(driver, o[1])
    answer.send_keys("s")
    wait_shown(driver, o[2])
    answer.send_keys("-")
    wait_label(live, o[2], "empty")
    wait_shown(driver, o[3])
    assert live.store().labels() == {o[0]: "empty", o[2]: "empty"}


def test_backspace_on_an_empty_answer_undoes_the_last_label(driver: WebDriver, live: Live) -> None:
    answer = open_page(driver, live)
    o = live.order
    press(driver, "3", Keys.ENTER)
    wait_shown(driver, o[1])
    press(driver, "4", Keys.ENTER)
    wait_shown(driver, o[2])
    wait_label(live, o[1], "4")
    press(driver, Keys.BACKSPACE)  # clears the selected guess: not an undo yet
    assert answer.get_attribute("value") == ""
    time.sleep(0.3)
    assert live.store().count() == 2
    press(driver, Keys.BACKSPACE)
    wait_label(live, o[1], None)
    wait_shown(driver, o[1])
    assert answer.get_attribute("value") == live.cells[o[1]].guess
    assert live.store().labels() == {o[0]: "3"}
    wait_for(lambda: "Undone" in driver.find_element(By.ID, "message").text, "undo message")


def test_a_label_outside_the_classes_is_refused_with_a_message(
    driver: WebDriver, live: Live
) -> None:
    answer = open_page(driver, live)
    answer.send_keys("99", Keys.ENTER)
    message = driver.find_element(By.ID, "message")
    wait_for(lambda: "not among the model's classes" in message.text, "refusal message")
    assert "0-36, empty" in message.text
    assert shown(driver) == live.order[0]
    assert live.store().count() == 0


def test_reload_resumes_at_the_right_crop(driver: WebDriver, live: Live) -> None:
    answer = open_page(driver, live)
    o = live.order
    for i in range(3):
        wait_shown(driver, o[i])
        answer.send_keys(Keys.ENTER)
    wait_shown(driver, o[3])
    answer.send_keys("s")
    wait_shown(driver, o[4])
    wait_for(lambda: live.store().count() == 3, "three labels stored")
    driver.refresh()
    answer = open_page(driver, live)
    assert shown(driver) == o[4]
    assert progress_text(driver) == "3 / 24 labelled"
    # A new tab (no session state) starts at the first unlabelled crop: the skipped one.
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    open_page(driver, live)
    assert shown(driver) == o[3]


def test_arrow_keys_move_back_and_forth(driver: WebDriver, live: Live) -> None:
    answer = open_page(driver, live)
    o = live.order
    press(driver, "5", Keys.ENTER)
    wait_shown(driver, o[1])
    press(driver, "6", Keys.ENTER)
    wait_shown(driver, o[2])
    press(driver, Keys.ARROW_LEFT)
    wait_shown(driver, o[1])
    assert answer.get_attribute("value") == "6"
    press(driver, Keys.ARROW_LEFT)
    wait_shown(driver, o[0])
    assert answer.get_attribute("value") == "5"
    press(driver, Keys.ARROW_RIGHT)
    wait_shown(driver, o[1])
    press(driver, "12", Keys.ENTER)  # relabel, then on to the next unlabelled crop
    wait_label(live, o[1], "12")
    wait_shown(driver, o[2])
    assert live.store().labels() == {o[0]: "5", o[1]: "12"}


def test_grid_mode_confirms_the_unclicked_crops_only(driver: WebDriver, live: Live) -> None:
    open_page(driver, live)
    keys = ActionChains(driver)
    keys.send_keys("g").perform()
    grid = driver.find_element(By.ID, "grid")
    wait_for(grid.is_displayed, "grid")
    cls = grid.get_attribute("data-class")
    assert cls == live.cells[live.order[0]].guess
    expected = [s for s in live.order if live.cells[s].guess == cls][:48]
    cells = grid.find_elements(By.CSS_SELECTOR, ".cell")
    assert [c.get_attribute("data-sha256") for c in cells] == expected
    assert len(expected) >= 4
    clicked = [cells[1].get_attribute("data-sha256"), cells[2].get_attribute("data-sha256")]
    cells[1].click()
    cells[2].click()
    cells[3].click()
    cells[3].click()  # toggled back: confirmed with the rest
    assert cells[1].get_attribute("aria-pressed") == "true"
    assert cells[3].get_attribute("aria-pressed") == "false"
    wait_settled(driver)
    keys.send_keys("c").perform()
    confirmed = [s for s in expected if s not in clicked]
    wait_for(lambda: live.store().count() == len(confirmed), "grid confirmation stored")
    assert live.store().labels() == {s: cls for s in confirmed}
    queue = [
        it["sha256"]
        for it in driver.execute_script(
            "return fetch('/api/queue').then(r => r.json()).then(d => d.items)"
        )
    ]
    assert all(s in queue for s in clicked)
    # The clicked ones are not offered again in this class's grid.
    wait_for(
        lambda: (
            not set(clicked)
            & {c.get_attribute("data-sha256") for c in grid.find_elements(By.CSS_SELECTOR, ".cell")}
        ),
        "grid rebuilt without the clicked crops",
    )
    keys.send_keys("g").perform()
    wait_for(lambda: driver.find_element(By.ID, "single").is_displayed(), "single mode")
    assert shown(driver) not in confirmed


def test_two_tabs_lose_nothing_and_undo_only_their_own_labels(
    driver: WebDriver, live: Live
) -> None:
    o = live.order

    def type_keys(*keys: str) -> None:
        # Keys go to whatever has focus, as from a real keyboard; element.send_keys
        # would re-focus the input in a new tab and put the caret after the guess.
        ActionChains(driver).send_keys(*keys).perform()

    open_page(driver, live)
    tab_a = driver.current_window_handle
    type_keys("3", Keys.ENTER)
    wait_label(live, o[0], "3")
    driver.switch_to.new_window("tab")
    tab_b = driver.current_window_handle
    try:
        open_page(driver, live)
        assert shown(driver) == o[1]  # A's label is not asked again
        type_keys("4", Keys.ENTER)
        wait_label(live, o[1], "4")
        driver.switch_to.window(tab_a)
        # A still showed o[1]; coming back into view it picks up B's label and moves on.
        wait_shown(driver, o[2])
        wait_for(lambda: progress_text(driver) == "2 / 24 labelled", "A synced")
        type_keys("5", Keys.ENTER)
        wait_shown(driver, o[3])
        # Another writer labels the crop A is looking at; A's later answer wins.
        status, _ = http(
            "POST", live.url + "api/label", {"sha256": o[3], "label": "7", "client": "script"}
        )
        assert status == 200
        type_keys("8", Keys.ENTER)
        wait_label(live, o[3], "8")
        wait_shown(driver, o[4])
        type_keys(Keys.BACKSPACE, Keys.BACKSPACE)  # A's undo: back to the script's 7
        wait_label(live, o[3], "7")
        wait_shown(driver, o[3])
        type_keys(Keys.BACKSPACE, Keys.BACKSPACE)  # A's previous label, not B's
        wait_label(live, o[2], None)
        assert live.store().labels() == {o[0]: "3", o[1]: "4", o[3]: "7"}
        assert live.store().event_count() == 5
    finally:
        driver.switch_to.window(tab_b)
        driver.close()
        driver.switch_to.window(tab_a)
