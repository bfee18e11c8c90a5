"""``gridreader nightly``: config checks, the lock, resuming, and a real run with
headless Chromium against pages served on 127.0.0.1."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from capture.config import TargetConfig
from capture.samples import serve_directory
from gridreader import nightly
from gridreader.cli import main
from gridreader.imageio import remove_temp_files

if TYPE_CHECKING:
    from conftest import CaptureSite

PAGES = Path(__file__).resolve().parents[1] / "data" / "pages"
DAY = "2024-05-01"
TIMESTAMPED_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) ")


def write_config(folder: Path, body: str, root: str = "out") -> Path:
    path = folder / "nightly.toml"
    head = f'root = "{root}"\n' if root else ""
    path.write_text(head + body, encoding="utf-8")
    return path


TARGET = '[[target]]\nname = "ruled"\nurl = "http://127.0.0.1:9/ruled.html"\ntable = "#capture"\n'


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# --- bad configurations: one line naming the key or file, exit 3 --------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (TARGET, "root: missing"),
        ("root = 5\n" + TARGET, "root: expected a path string"),
        ('root = ""\n' + TARGET, "root: expected a path string"),
        ('root = "out"\nreview_below = "high"\n' + TARGET, "review_below: expected a number"),
        ('root = "out"\nreview_below = 2\n' + TARGET, "review_below: expected a number"),
        ('root = "out"\nreview_below = -0.1\n' + TARGET, "review_below: expected a number"),
        ('root = "out"\nreview_below = true\n' + TARGET, "review_below: expected a number"),
        ('root = "out"\nmodel = 3\n' + TARGET, "model: expected a path string"),
        ('root = "out"\nrot = "x"\n' + TARGET, "rot: unknown key"),
        ('root = "out"\n', "target: missing"),
        ('root = "out"\n[[target]]\nname = "a"\n', "target[0].url: missing"),
        ('root = "out"\n[[target]\n', "invalid TOML"),
    ],
)
def test_a_bad_config_gives_one_line_naming_the_key_and_exit_3(
    body: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "nightly.toml"
    cfg.write_text(body, encoding="utf-8")
    assert main(["nightly", "--config", str(cfg), "--date", DAY]) == 3
    line = error_line(capsys)
    assert line.startswith(f"gridreader nightly: error: {cfg}: "), line
    assert named in line, line
    assert list(tmp_path.iterdir()) == [cfg], "nothing is written for a bad config"


def test_a_missing_config_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "absent.toml"
    assert main(["nightly", "--config", str(cfg)]) == 3
    line = error_line(capsys)
    assert str(cfg) in line and "cannot read" in line, line


def test_an_unknown_only_target_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, TARGET)
    assert main(["nightly", "--config", str(cfg), "--only", "nope"]) == 3
    line = error_line(capsys)
    assert "--only nope: no such target (targets: ruled)" in line, line
    assert not (tmp_path / "out").exists()


def test_a_missing_model_is_fatal_and_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, 'model = "no-such-model"\n' + TARGET)
    assert main(["nightly", "--config", str(cfg), "--date", DAY]) == 3
    line = error_line(capsys)
    assert f"{tmp_path / 'no-such-model'}: model folder not found" in line, line
    log = (tmp_path / "out" / DAY / "nightly.log").read_text()
    assert "model folder not found" in log
    assert not (tmp_path / "out" / DAY / "summary.json").exists()


def test_a_bad_date_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, TARGET)
    assert main(["nightly", "--config", str(cfg), "--date", "2024-13-01"]) == 2
    assert "not a valid date" in capsys.readouterr().err


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    cfg = write_config(
        tmp_path / "etc", 'model = "../models/m1"\nreview_below = 0.5\n' + TARGET, "../data"
    )
    config = nightly.load_nightly_config(cfg)
    assert config.root == tmp_path / "data"
    assert config.model == tmp_path / "models" / "m1"
    assert config.review_below == 0.5
    default = nightly.load_nightly_config(write_config(tmp_path, TARGET, "out"))
    assert (default.model, default.review_below) == (None, 0.9)


# --- the lock -----------------------------------------------------------------------


def test_a_second_run_exits_4_with_one_line_while_the_lock_is_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, TARGET)
    lock = tmp_path / "out" / "nightly.lock"
    lock.parent.mkdir()
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        assert main(["nightly", "--config", str(cfg), "--date", DAY]) == 4
    line = error_line(capsys)
    assert line == f"gridreader nightly: {lock}: another nightly run is in progress (pid 4242)"
    assert not (tmp_path / "out" / DAY).exists(), "a locked-out run must not touch the day"


def test_the_lock_is_released_after_a_run_and_holds_the_pid_during_it(tmp_path: Path) -> None:
    lock = tmp_path / "nightly.lock"
    with nightly.hold_lock(lock):
        assert lock.read_text() == f"{os.getpid()}\n"
        with (
            pytest.raises(nightly.LockedError, match=r"in progress \(pid \d+\)$"),
            nightly.hold_lock(lock),
        ):
            pass
    with open(lock) as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again


# --- resuming: what counts as already captured -------------------------------------


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def paged(name: str, count: int) -> TargetConfig:
    from capture.config import PagesConfig

    return TargetConfig(name=name, url="http://x/", pages=PagesConfig(next="a", count=count))


def test_a_target_is_complete_only_with_every_page_and_sidecar(tmp_path: Path) -> None:
    s = "20240501T010203Z"
    touch(
        tmp_path,
        f"a-{s}.png",
        f"a-{s}.json",  # complete
        f"b-{s}.png",  # killed before its sidecar
        f"c-{s}-p1.png",
        f"c-{s}-p1.json",  # page 2 of 2 missing
        f"d-{s}-p1.png",
        f"d-{s}-p1.json",
        f"d-{s}-p2.png",
        f"d-{s}-p2.json",
        f"a-b-{s}.png",  # a target named "a-b", not "a"
    )
    targets = [
        TargetConfig(name="a", url="http://x/"),
        TargetConfig(name="b", url="http://x/"),
        paged("c", 2),
        paged("d", 2),
        TargetConfig(name="a-b", url="http://x/"),
    ]
    assert nightly.completed_targets(tmp_path, targets) == {"a", "d"}


def test_redoing_a_target_removes_its_old_shots_and_their_tables(tmp_path: Path) -> None:
    s = "20240501T010203Z"
    screens, tables = tmp_path / "screens", tmp_path / "tables"
    touch(screens, f"c-{s}-p1.png", f"c-{s}-p1.json", f"cc-{s}.png", "capture-report.jsonl")
    touch(tables, f"c-{s}-p1.csv", f"cc-{s}.csv", "report.jsonl")
    touch(tables / ".gridreader", f"c-{s}-p1.json")
    touch(tables / "review", f"c-{s}-p1.r000c001.png", f"c-{s}-p1.r000.row.png", f"cc-{s}.r0.png")
    assert nightly.remove_target_files(screens, tables, "c") == 2
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "screens/capture-report.jsonl",
        f"screens/cc-{s}.png",
        f"tables/cc-{s}.csv",
        "tables/report.jsonl",
        f"tables/review/cc-{s}.r0.png",
    ]


def test_the_summary_points_to_the_days_report_page(tmp_path: Path) -> None:
    page = tmp_path / DAY / "tables" / "report.html"
    stats = nightly.TableStats(
        read=1, failed=0, errors=(), cells=4, review=1, confidence_mean=0.9, confidence_min=0.5
    )
    summary = nightly.NightlySummary(
        date=DAY,
        config="nightly.toml",
        root=str(tmp_path),
        model="m",
        review_below=0.9,
        targets=(),
        tables=stats,
        images_read_now=1,
        images_up_to_date=0,
        durations={"capture": 1.0, "batch": 1.0, "total": 2.0},
        report=str(page),
    )
    assert nightly.format_summary(summary).splitlines()[-1] == f"report: {page}"
    assert summary.to_dict()["report"] == str(page)


def test_temp_files_of_a_killed_run_are_swept(tmp_path: Path) -> None:
    touch(tmp_path / "tables" / "review", ".a.png.x1y2.tmp", "a.png")
    touch(tmp_path / "screens", ".b.png.k3.tmp", "keep.tmp")
    assert remove_temp_files(tmp_path, recursive=True) == 2
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png", "keep.tmp"]


# --- end to end with headless Chromium ---------------------------------------------


@pytest.fixture(scope="module")
def pages_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo pages, plus one whose captured element holds no table."""
    folder = tmp_path_factory.mktemp("pages")
    for name in ("ruled", "dark"):
        shutil.copy(PAGES / f"{name}.html", folder)
    (folder / "blank.html").write_text(
        "<!doctype html><html><body style='margin:20px'>"
        "<div id='capture' style='width:300px;height:200px;background:#c8d8e8'></div>"
        "</body></html>",
        encoding="utf-8",
    )
    with serve_directory(folder) as base:
        yield base


def truth_shape(name: str) -> tuple[int, int]:
    rows = list(csv.reader((PAGES / f"{name}.csv").open(encoding="utf-8")))
    return len(rows), len(rows[0])


def csv_shape(path: Path) -> tuple[int, int]:
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert len({len(r) for r in rows}) == 1, f"{path}: ragged rows"
    return len(rows), len(rows[0])


def one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"{pattern}: {found}"
    return found[0]


@pytest.mark.browser
@pytest.mark.slow
def test_nightly_end_to_end_with_a_failing_target_and_a_rerun(
    pages_site: str,
    capture_site: CaptureSite,
    untrained_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = capture_site.base
    user, password = capture_site.username, capture_site.password
    monkeypatch.setenv("NIGHTLY_TEST_USER", user)
    monkeypatch.setenv("NIGHTLY_TEST_PASSWORD", password)
    model = os.path.relpath(untrained_model_dir, tmp_path)
    cfg = write_config(
        tmp_path,
        f"""model = "{model}"
review_below = 0.9
[browser]
timeout_s = 3
[[target]]
name = "ruled"
url = "{pages_site}/ruled.html"
table = "#capture"
wait_for = "#capture td"
[[target]]
name = "dark"
url = "{pages_site}/dark.html"
table = "#capture"
[[target]]
name = "missing"
url = "{pages_site}/ruled.html"
table = "#no-such-table"
[[target]]
name = "blank"
url = "{pages_site}/blank.html"
table = "#capture"
[[target]]
name = "secret"
url = "{site}/secret"
table = "#history"
[target.login]
url = "{site}/login"
username = "#user"
password = "#pass"
submit = "button"
username_env = "NIGHTLY_TEST_USER"
password_env = "NIGHTLY_TEST_PASSWORD"
""",
    )
    day = tmp_path / "out" / DAY
    first = ["--only", "ruled", "--only", "dark", "--only", "missing"]

    # Run 1: the selector of "missing" never appears; the other tables are read.
    assert main(["nightly", "--config", str(cfg), "--date", DAY, *first]) == 1
    out = capsys.readouterr().out
    summary = json.loads((day / "summary.json").read_text())
    assert summary["exit_code"] == 1 and summary["status"] == "failed"
    assert summary["date"] == DAY and summary["model"] == "untrained"
    assert summary["targets"] == {
        "total": 3,
        "captured": 2,
        "captured_earlier": 0,
        "failed": 1,
        "failures": [
            {"target": "missing", "reason": "selector '#no-such-table' did not appear within 3s"}
        ],
    }
    assert summary["tables"] == {
        "read": 2,
        "failed": 0,
        "failures": [],
        "read_now": 2,
        "up_to_date": 0,
    }
    shapes = {n: csv_shape(one(day / "tables", f"{n}-*.csv")) for n in ("ruled", "dark")}
    assert shapes == {n: truth_shape(n) for n in ("ruled", "dark")}
    assert summary["cells"] == sum(r * c for r, c in shapes.values())
    review_files = list((day / "tables" / "review").glob("*.r???c???.json"))
    assert summary["review"] == len(review_files) > 0
    assert 0 <= summary["confidence"]["min"] <= summary["confidence"]["mean"] <= 1
    assert set(summary["durations_s"]) == {"capture", "batch", "total"}
    assert summary["durations_s"]["total"] >= summary["durations_s"]["capture"] > 0
    text = (day / "summary.txt").read_text()
    assert text == out, "the command prints the summary it writes"
    assert text.startswith(f"gridreader nightly {DAY}: FAILED (exit 1)\n")
    assert "targets: 2 of 3 captured, 1 failed" in text
    assert "  failed missing: selector '#no-such-table' did not appear within 3s" in text
    assert f"cells: {summary['cells']}, {summary['review']} sent to review" in text
    assert "time: capture" in text and len(text.splitlines()) <= 12
    # It points to the day's report page, which lists every screenshot read.
    page = day / "tables" / "report.html"
    assert text.endswith(f"\nreport: {page}\n") and summary["report"] == str(page)
    assert page.read_text(encoding="utf-8").count("<article ") == 2
    log_lines = (day / "nightly.log").read_text().splitlines()
    assert all(TIMESTAMPED_LINE.match(line) for line in log_lines), log_lines
    assert any("capture: missing: failed: selector" in line for line in log_lines)

    # Run 2, same day: nothing captured or read twice, the failed target retried.
    shots = sorted(p.name for p in (day / "screens").glob("*.png"))
    assert main(["nightly", "--config", str(cfg), "--date", DAY, *first]) == 1
    again = json.loads((day / "summary.json").read_text())
    assert sorted(p.name for p in (day / "screens").glob("*.png")) == shots
    assert again["targets"]["captured_earlier"] == 2 and again["targets"]["failed"] == 1
    assert again["tables"] | {"read_now": 0, "up_to_date": 2} == again["tables"]
    assert {k: again[k] for k in ("cells", "review", "confidence")} == {
        k: summary[k] for k in ("cells", "review", "confidence")
    }
    report = (day / "screens" / "capture-report.jsonl").read_text().splitlines()
    assert [json.loads(r)["target"] for r in report] == ["ruled", "dark", "missing", "missing"]

    # Run 3: a login target and a picture without a table; secrets never written.
    assert (
        main(
            ["nightly", "--config", str(cfg), "--date", DAY, "--only", "secret", "--only", "blank"]
        )
        == 1
    )
    third = json.loads((day / "summary.json").read_text())
    assert third["targets"]["captured"] == 2 and third["targets"]["failed"] == 0
    assert third["tables"]["failed"] == 1
    (failure,) = third["tables"]["failures"]
    assert "blank-" in failure and "\n" not in failure
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.suffix in (".log", ".json", ".jsonl", ".txt", ".csv"):
            content = path.read_text(encoding="utf-8")
            assert password not in content and user not in content, path
