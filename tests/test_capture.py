"""``gridreader capture`` against pages served on 127.0.0.1, with real headless Chromium."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from chromium import CHROME_FLAGS

from capture import browser as br
from capture.config import BrowserConfig
from gridreader.cli import main
from gridreader.imageio import load_image

if TYPE_CHECKING:
    from conftest import CaptureSite

pytestmark = pytest.mark.browser

STEM_RE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)-\d{8}T\d{6}Z(?:-p(?P<page>\d+))?$")


def write_config(path: Path, targets: list[str], **browser: str) -> Path:
    """A config file from ``[[target]]`` bodies; ``browser`` holds raw TOML values."""
    settings = {"window": "[800, 600]", "timeout_s": "3", **browser}
    parts = ["[browser]", *(f"{key} = {value}" for key, value in settings.items())]
    parts += [f"[[target]]\n{body}" for body in targets]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def run_capture(
    tmp_path: Path, config: Path, *extra: str
) -> tuple[int, Path, list[dict[str, Any]]]:
    """Run the verb; return its exit code, the out dir and the report's lines."""
    out = tmp_path / "out"
    code = main(["capture", str(config), "--out", str(out), *extra])
    report_path = out / "capture-report.jsonl"
    lines = report_path.read_text().splitlines() if report_path.exists() else []
    return code, out, [json.loads(line) for line in lines]


def by_target(report: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["target"]: row for row in report}


def sidecar_of(png: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(png.with_suffix(".json").read_text())
    return data


def dominant_color(img: np.ndarray) -> tuple[int, int, int]:
    """The most frequent RGB colour (of every other pixel, for speed on big images)."""
    px = img[::2, ::2].reshape(-1, 3).astype(np.uint32)
    packed = (px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    top = int(values[int(np.argmax(counts))])
    return top >> 16, (top >> 8) & 255, top & 255


def hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_plain_table_gives_png_sidecar_and_report(
    tmp_path: Path, capture_site: CaptureSite
) -> None:
    config = write_config(
        tmp_path / "c.toml",
        [
            f'name = "plain"\nurl = "{capture_site.url("/plain")}"\ntable = "#t"',
            f'name = "other"\nurl = "{capture_site.url("/plain")}"',
        ],
    )
    code, out, report = run_capture(tmp_path, config, "--only", "plain")
    assert code == 0
    assert [row["target"] for row in report] == ["plain"]
    row = report[0]
    assert row["status"] == "ok" and row["reason"] == ""
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", row["time"])
    assert len(row["files"]) == 1
    png = out / row["files"][0]
    match = STEM_RE.match(png.stem)
    assert match and match["name"] == "plain" and match["page"] is None
    side = sidecar_of(png)
    assert side["url"] == capture_site.url("/plain")
    assert side["selector"] == "#t"
    assert side["scale"] == 1
    assert side["viewport"] == [800, 600]
    assert side["browser"].startswith("Chromium ")
    assert side["sha256"] == hashlib.sha256(png.read_bytes()).hexdigest()
    img = load_image(png)
    x0, y0, x1, y1 = side["box"]
    assert img.shape[:2] == (y1 - y0, x1 - x0)
    assert x0 >= 20 and y0 > 20  # below the heading, inside the body's padding
    assert dominant_color(img) == hex_rgb("#e0e0e0")
    # Nothing else was written: no temp files, no other target.
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [png.name, png.with_suffix(".json").name, "capture-report.jsonl"]
    )


def test_full_page_when_table_is_omitted(tmp_path: Path, capture_site: CaptureSite) -> None:
    config = write_config(
        tmp_path / "c.toml", [f'name = "page"\nurl = "{capture_site.url("/plain")}"']
    )
    code, out, report = run_capture(tmp_path, config)
    assert code == 0
    png = out / report[0]["files"][0]
    side = sidecar_of(png)
    assert side["selector"] is None
    assert side["box"][:2] == [0, 0]
    assert load_image(png).shape[1] == 800  # the page is as wide as the viewport


def test_login_with_credentials_from_env_no_secret_in_outputs_no_cookie_leak(
    tmp_path: Path,
    capture_site: CaptureSite,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GRID_USER", capture_site.username)
    monkeypatch.setenv("GRID_PASS", capture_site.password)
    login = (
        f'[target.login]\nurl = "{capture_site.url("/login")}"\nusername = "#user"\n'
        'password = "#pass"\nsubmit = "button[type=submit]"\n'
        'username_env = "GRID_USER"\npassword_env = "GRID_PASS"\n'
    )
    secret = capture_site.url("/secret")
    config = write_config(
        tmp_path / "c.toml",
        [
            f'name = "secret"\nurl = "{secret}"\ntable = "#history"\n'
            f'wait_for = "#history td"\n{login}',
            # The session cookie of the target before must not carry over.
            f'name = "no-login"\nurl = "{secret}"\ntable = "#history"',
        ],
        timeout_s="2",
    )
    code, out, report = run_capture(tmp_path, config)
    assert code == 1, report
    rows = by_target(report)
    assert rows["secret"]["status"] == "ok"
    img = load_image(out / rows["secret"]["files"][0])
    assert dominant_color(img) == hex_rgb("#ffe0a0")  # the table behind the login
    assert rows["no-login"]["status"] == "failed"
    assert rows["no-login"]["reason"] == "selector '#history' did not appear within 2s"
    assert_no_secret(out, capsys, capture_site.password)


def test_login_that_fails_and_missing_credentials(
    tmp_path: Path,
    capture_site: CaptureSite,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "wrong-Pa55-4242"
    monkeypatch.setenv("GRID_USER", capture_site.username)
    monkeypatch.setenv("GRID_PASS_WRONG", wrong)
    monkeypatch.delenv("GRID_PASS_UNSET", raising=False)

    def target(name: str, password_env: str) -> str:
        return (
            f'name = "{name}"\nurl = "{capture_site.url("/secret")}"\ntable = "#history"\n'
            f'[target.login]\nurl = "{capture_site.url("/login")}"\nusername = "#user"\n'
            'password = "#pass"\nsubmit = "button[type=submit]"\n'
            f'username_env = "GRID_USER"\npassword_env = "{password_env}"\n'
        )

    config = write_config(
        tmp_path / "c.toml",
        [target("wrong", "GRID_PASS_WRONG"), target("unset", "GRID_PASS_UNSET")],
        timeout_s="2",
    )
    code, out, report = run_capture(tmp_path, config)
    assert code == 1
    rows = by_target(report)
    assert rows["wrong"]["status"] == "failed"
    assert rows["wrong"]["reason"].startswith("login failed")
    assert rows["wrong"]["files"] == []
    assert rows["unset"]["status"] == "failed"
    assert rows["unset"]["reason"] == (
        "login failed: environment variable GRID_PASS_UNSET is not set"
    )
    assert_no_secret(out, capsys, wrong)


def assert_no_secret(out: Path, capsys: pytest.CaptureFixture[str], secret: str) -> None:
    """The secret is in no file name, no file under ``out`` and no console output."""
    captured = capsys.readouterr()
    assert secret not in captured.out and secret not in captured.err
    files = list(out.rglob("*"))
    assert files
    for path in files:
        assert secret not in path.name
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_table_inserted_by_js_after_a_delay_and_before_steps(
    tmp_path: Path, capture_site: CaptureSite
) -> None:
    steps = (
        '[[target.before]]\nscroll = "#show-all"\n[[target.before]]\nwait_s = 0.1\n'
        '[[target.before]]\nclick = "#show-all"\n'
    )
    config = write_config(
        tmp_path / "c.toml",
        [
            f'name = "late"\nurl = "{capture_site.url("/delayed")}"\ntable = "#late"',
            f'name = "hidden"\nurl = "{capture_site.url("/hidden")}"\ntable = "#h"\n{steps}',
        ],
    )
    code, out, report = run_capture(tmp_path, config)
    assert code == 0, report
    rows = by_target(report)
    img = load_image(out / rows["late"]["files"][0])
    assert dominant_color(img) == hex_rgb("#ff8800")
    img = load_image(out / rows["hidden"]["files"][0])
    assert dominant_color(img) == hex_rgb("#8040c0")


def test_table_taller_and_wider_than_viewport_is_whole(
    tmp_path: Path, capture_site: CaptureSite
) -> None:
    config = write_config(
        tmp_path / "c.toml",
        [f'name = "tall"\nurl = "{capture_site.url("/tall")}"\ntable = "#tall"'],
        scale="2",
    )
    code, out, report = run_capture(tmp_path, config)
    assert code == 0, report
    png = out / report[0]["files"][0]
    side = sidecar_of(png)
    x0, y0, x1, y1 = side["box"]
    # 90 rows of 30 px, 1100 px wide, in an 800x600 viewport; 150 px spacer + 20 px padding.
    assert (x1 - x0, y1 - y0) == (1100, 2700)
    assert (x0, y0) == (60, 170)
    assert side["viewport"] == [800, 600] and side["scale"] == 2
    img = load_image(png)
    assert img.shape[:2] == (2700 * 2, 1100 * 2)
    # First rows blue, last rows red, all the way to the right edge: nothing clipped.
    assert dominant_color(img[: 10 * 30 * 2]) == (0, 0, 255)
    assert dominant_color(img[-10 * 30 * 2 :]) == (255, 0, 0)
    assert tuple(img[-4, -4]) == (255, 0, 0)


@pytest.mark.parametrize("path", ["/paged", "/nav/1"], ids=["in-place-js", "links"])
def test_paged_table_three_pages(tmp_path: Path, capture_site: CaptureSite, path: str) -> None:
    config = write_config(
        tmp_path / "c.toml",
        [
            f'name = "paged"\nurl = "{capture_site.url(path)}"\ntable = "#pt"\n'
            '[target.pages]\nnext = "a.next"\ncount = 3\n'
        ],
    )
    code, out, report = run_capture(tmp_path, config)
    assert code == 0, report
    files = [out / name for name in report[0]["files"]]
    assert [STEM_RE.match(p.stem)["page"] for p in files] == ["1", "2", "3"]  # type: ignore[index]
    hashes = {sidecar_of(p)["sha256"] for p in files}
    assert len(hashes) == 3
    colors = capture_site.page_colors
    for page, (png, color) in enumerate(zip(files, colors, strict=True), start=1):
        assert sidecar_of(png)["page"] == page
        assert dominant_color(load_image(png)) == hex_rgb(color)


def test_screenshot_waits_for_a_late_web_font(tmp_path: Path, capture_site: CaptureSite) -> None:
    # The same table in the same web font, served at once / late / never (404).
    targets = [
        f'name = "{mode}"\nurl = "{capture_site.url("/font/" + mode)}"\ntable = "#ft"'
        for mode in ("fast", "slow", "missing")
    ]
    config = write_config(tmp_path / "c.toml", targets, timeout_s="10")
    code, out, report = run_capture(tmp_path, config)
    assert code == 0, report
    rows = by_target(report)
    imgs = {name: load_image(out / rows[name]["files"][0]) for name in rows}
    assert sidecar_of(out / rows["slow"]["files"][0])["fonts"] == "loaded"
    # Taken before the font arrived, the text would be invisible (font-display: block).
    assert imgs["slow"].shape == imgs["fast"].shape
    assert np.array_equal(imgs["slow"], imgs["fast"])
    assert imgs["missing"].shape != imgs["fast"].shape or not np.array_equal(
        imgs["missing"], imgs["fast"]
    )
    assert imgs["fast"].min() < 100  # dark text was drawn


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_failures_are_per_target(
    tmp_path: Path,
    capture_site: CaptureSite,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starts: list[int] = []
    real_start = br.start_browser

    def counting_start(*args: Any) -> br.Browser:
        starts.append(1)
        return real_start(*args)

    monkeypatch.setattr(br, "start_browser", counting_start)
    plain = capture_site.url("/plain")
    config = write_config(
        tmp_path / "c.toml",
        [
            f'name = "first"\nurl = "{plain}"\ntable = "#t"',
            f'name = "never"\nurl = "{capture_site.url("/never")}"\ntable = "#nope"',
            f'name = "down"\nurl = "http://127.0.0.1:{_closed_port()}/x"\ntable = "#t"',
            f'name = "slow"\nurl = "{capture_site.url("/slow")}"\ntable = "#t"',
            f'name = "last"\nurl = "{plain}"\ntable = "#t"',
        ],
        timeout_s="2",
        retries="0",  # network retries: test_capture_retries.py
    )
    code, out, report = run_capture(tmp_path, config)
    assert code == 1
    rows = by_target(report)
    assert [row["target"] for row in report] == ["first", "never", "down", "slow", "last"]
    assert rows["first"]["status"] == rows["last"]["status"] == "ok"
    assert rows["never"]["status"] == "failed"
    assert rows["never"]["reason"] == "selector '#nope' did not appear within 2s"
    assert rows["down"]["status"] == "failed"
    assert rows["down"]["reason"].startswith("unreachable: http://127.0.0.1:")
    assert "ERR_CONNECTION_REFUSED" in rows["down"]["reason"]
    assert rows["slow"]["status"] == "failed"
    assert rows["slow"]["reason"].startswith("timeout:")
    assert all(row["files"] == [] for row in report if row["status"] == "failed")
    stdout = capsys.readouterr().out
    assert "never: failed: selector '#nope' did not appear within 2s" in stdout
    assert len(list(out.glob("*.png"))) == 2
    assert len(starts) == 1  # one browser served all five targets


def test_crashed_browser_is_replaced_and_the_target_retried(
    tmp_path: Path, capture_site: CaptureSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[int] = []
    real_start, real_open = br.start_browser, br.open_page
    crashes = {"left": 1}

    def counting_start(*args: Any) -> br.Browser:
        starts.append(1)
        return real_start(*args)

    def crashing_open(driver: Any, url: str, timeout_s: float) -> None:
        if crashes["left"] and url.endswith("/plain"):
            crashes["left"] -= 1
            with contextlib.suppress(Exception):
                driver.get("chrome://crash")  # kills the renderer: "tab crashed"
        real_open(driver, url, timeout_s)

    monkeypatch.setattr(br, "start_browser", counting_start)
    monkeypatch.setattr(br, "open_page", crashing_open)
    target = f'name = "plain"\nurl = "{capture_site.url("/plain")}"\ntable = "#t"'
    config = write_config(tmp_path / "c.toml", [target], retries="1")
    code, _, report = run_capture(tmp_path, config)
    assert code == 0, report
    assert report[0]["status"] == "ok" and report[0]["attempts"] == 2
    assert len(starts) == 2

    # Without retries the target fails, and the next one still gets a (fresh) browser.
    crashes["left"] = 1
    starts.clear()
    other = f'name = "other"\nurl = "{capture_site.url("/plain")}"\ntable = "#t"'
    config = write_config(tmp_path / "c2.toml", [target, other], retries="0")
    code, _, report = run_capture(tmp_path / "second", config)
    assert code == 1
    rows = by_target(report)
    assert rows["plain"]["status"] == "failed"
    assert rows["plain"]["reason"].startswith("browser crashed")
    assert rows["other"]["status"] == "ok"
    assert len(starts) == 2


def test_browser_flags_and_profile_removed(
    tmp_path: Path, capture_site: CaptureSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = br.chromium_flags(BrowserConfig(window=(1400, 1000), scale=1.5), "/tmp/prof")
    for flag in (
        *CHROME_FLAGS,
        "--user-data-dir=/tmp/prof",
        "--window-size=1400,1000",
        "--force-device-scale-factor=1.5",
    ):
        assert flag in flags
    # The temporary profile lives under TMPDIR and is gone after the run.
    profiles = tmp_path / "tmp"
    profiles.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(profiles))
    target = f'name = "plain"\nurl = "{capture_site.url("/plain")}"\ntable = "#t"'
    config = write_config(tmp_path / "c.toml", [target])
    seen: list[list[str]] = []
    real_start = br.start_browser

    def spying_start(*args: Any) -> br.Browser:
        browser = real_start(*args)
        seen.append([p.name for p in profiles.iterdir()])
        return browser

    monkeypatch.setattr(br, "start_browser", spying_start)
    code, _, _ = run_capture(tmp_path, config)
    assert code == 0
    assert len(seen) == 1 and any(n.startswith("gridreader-chromium-") for n in seen[0])
    assert not any(p.name.startswith("gridreader-chromium-") for p in profiles.iterdir())


class _Replaced:
    """A stand-in for a login field whose document the next page replaced."""

    def __init__(self, msg: str) -> None:
        self.msg = msg

    def is_displayed(self) -> bool:
        from selenium.common.exceptions import WebDriverException

        raise WebDriverException(self.msg)


def test_a_field_whose_document_was_replaced_counts_as_gone() -> None:
    # chromedriver sometimes answers an inspector error, not a stale
    # reference, when the page navigates while the field is looked at: the
    # login went through (seen failing in CI once).
    from selenium.common.exceptions import WebDriverException

    from capture.browser import _is_gone

    detached = (
        'unknown error: unhandled inspector error: {"code":-32000,'
        '"message":"Node with given id does not belong to the document"}'
    )
    assert _is_gone(_Replaced(detached))  # type: ignore[arg-type]
    with pytest.raises(WebDriverException):
        _is_gone(_Replaced("unknown error: session deleted"))  # type: ignore[arg-type]
