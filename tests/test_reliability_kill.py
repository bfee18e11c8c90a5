"""Kill in the middle: SIGKILL a run part way, run again, compare with a clean run.

A killed run cannot clean up, so this checks the design: every output is
written atomically, batch keeps a per-image record, nightly skips targets whose
screenshots are complete and the lock dies with its process. After the re-run
the outputs must be byte for byte those of a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from capture.samples import serve_directory

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DAY = "2024-05-01"


def gridreader(*args: str) -> list[str]:
    return [sys.executable, "-m", "gridreader", *args]


def child_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def run_killed(cmd: list[str], when: Callable[[], bool], log: Path, limit_s: float = 240) -> int:
    """Run ``cmd`` and SIGKILL its whole process group (browser included) as
    soon as ``when()`` holds; return its exit status (-9 when killed)."""
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        deadline = time.monotonic() + limit_s
        try:
            while proc.poll() is None:
                if when():
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"{cmd}: still running after {limit_s} s")
                time.sleep(0.01)
            return proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run_clean(cmd: list[str], log: Path) -> int:
    return run_killed(cmd, lambda: False, log)


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def temp_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*.tmp"))


# --- batch --------------------------------------------------------------------------


def test_batch_killed_twice_then_rerun_equals_a_clean_run(
    table_image_dir: Path, untrained_model_dir: Path, tmp_path: Path
) -> None:
    # Every cell goes to review, so each image writes ~200 files: the kills
    # land while outputs are being written, not before or after.
    def batch(out: Path) -> list[str]:
        return gridreader(
            "batch",
            str(table_image_dir),
            "--out",
            str(out),
            "--model",
            str(untrained_model_dir),
            "--review-below",
            "1.0",
        )

    log = tmp_path / "stderr.log"
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert run_clean(batch(clean), log) == 0, log.read_text()
    n_images = len(list(table_image_dir.glob("*.png")))

    def csvs() -> int:
        return len(list(killed.glob("*.csv")))

    def csvs_at_least(n: int) -> Callable[[], bool]:
        return lambda: csvs() >= n

    for at_least in (3, 7):
        status = run_killed(batch(killed), csvs_at_least(at_least), log)
        assert status == -signal.SIGKILL, f"the run ended before the kill: {status}"
        assert at_least <= csvs() < n_images
    assert run_clean(batch(killed), log) == 0, log.read_text()

    expected, got = files_under(clean), files_under(killed)
    # Not even a temp file of an interrupted write is left behind.
    assert temp_files(killed) == []
    assert sorted(got) == sorted(expected)
    different = [name for name in expected if got[name] != expected[name]]
    assert different == [], different[:10]
    assert len([n for n in got if n.endswith(".csv")]) == n_images
    report = (killed / "report.jsonl").read_text().splitlines()
    assert len(report) == n_images
    assert all(json.loads(line)["status"] == "ok" for line in report)


# --- nightly ------------------------------------------------------------------------


def table_page(title: str, rows: int, cols: int, seed: int) -> str:
    cells = "".join(
        "<tr>"
        + "".join(f"<td>{(seed * 7 + r * cols + c * 3) % 37}</td>" for c in range(cols))
        + "</tr>"
        for r in range(rows)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><style>"
        "body{margin:24px;background:#fff;font-family:'DejaVu Sans',sans-serif}"
        "#capture{display:inline-block;padding:12px;background:#fff}"
        "table{border-collapse:collapse}"
        "td{border:1px solid #444;padding:6px 12px;min-width:28px;text-align:center;"
        "font:15px 'DejaVu Sans',sans-serif;color:#111}"
        f"</style></head><body><h1>{title}</h1><div id='capture'><table>{cells}</table></div>"
        "</body></html>"
    )


@pytest.fixture(scope="module")
def table_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Three pages with a 12 x 8 ruled table each, served on 127.0.0.1."""
    pages = tmp_path_factory.mktemp("pages")
    for i, name in enumerate(("alpha", "beta", "gamma")):
        (pages / f"{name}.html").write_text(table_page(name, 12, 8, i), encoding="utf-8")
    with serve_directory(pages) as base:
        yield base


def write_nightly_config(folder: Path, base: str, model: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        'root = "out"',
        f'model = "{model}"',
        "review_below = 1.0",
        "[browser]",
        "timeout_s = 20",
    ]
    for name in ("alpha", "beta", "gamma"):
        lines += [
            "[[target]]",
            f'name = "{name}"',
            f'url = "{base}/{name}.html"',
            'table = "#capture"',
            'wait_for = "#capture td"',
        ]
    path = folder / "nightly.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tables_by_target(tables: Path) -> dict[str, bytes]:
    """CSV bytes by target name (file names carry the capture time)."""
    return {p.name.split("-")[0]: p.read_bytes() for p in sorted(tables.glob("*.csv"))}


def summary_counts(day: Path) -> dict[str, object]:
    s = json.loads((day / "summary.json").read_text())
    return {
        "exit_code": s["exit_code"],
        "targets": {k: s["targets"][k] for k in ("total", "captured", "failed")},
        "tables": {k: s["tables"][k] for k in ("read", "failed")},
        "cells": s["cells"],
        "review": s["review"],
        "confidence": s["confidence"],
    }


@pytest.mark.browser
def test_nightly_killed_in_capture_and_in_batch_then_rerun_equals_a_clean_run(
    table_site: str, untrained_model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "stderr.log"
    clean_cfg = write_nightly_config(tmp_path / "clean", table_site, untrained_model_dir)
    killed_cfg = write_nightly_config(tmp_path / "killed", table_site, untrained_model_dir)
    clean_day, day = tmp_path / "clean" / "out" / DAY, tmp_path / "killed" / "out" / DAY

    def nightly(cfg: Path, *extra: str) -> list[str]:
        return gridreader("nightly", "--config", str(cfg), "--date", DAY, *extra)

    # The clean run uses two workers: the tables must not depend on that either.
    assert run_clean(nightly(clean_cfg, "--workers", "2"), log) == 0, log.read_text()

    # Kill 1: as soon as the first target's screenshot and sidecar are on disk.
    status = run_killed(nightly(killed_cfg), lambda: any(day.glob("screens/*.json")), log)
    assert status == -signal.SIGKILL, f"the run ended before the kill: {status}"
    assert not (day / "summary.json").exists()
    complete = sorted(p.with_suffix(".png").name for p in day.glob("screens/*.json"))
    assert 1 <= len(complete) < 3

    # Kill 2: as soon as batch has written its first table.
    status = run_killed(nightly(killed_cfg), lambda: any(day.glob("tables/*.csv")), log)
    assert status == -signal.SIGKILL, f"the run ended before the kill: {status}"
    assert not (day / "summary.json").exists()
    assert len(list(day.glob("tables/*.csv"))) < 3

    assert run_clean(nightly(killed_cfg), log) == 0, log.read_text()

    # Nothing lost, nothing done twice.
    assert summary_counts(day) == summary_counts(clean_day)
    assert tables_by_target(day / "tables") == tables_by_target(clean_day / "tables")
    shots = sorted(p.name for p in day.glob("screens/*.png"))
    assert [s.split("-")[0] for s in shots] == ["alpha", "beta", "gamma"]
    assert all((day / "screens" / s).with_suffix(".json").is_file() for s in shots)
    assert set(complete) <= set(shots), "a target complete before a kill was captured again"
    assert temp_files(day) == []
    assert len((day / "tables" / "report.jsonl").read_text().splitlines()) == 3
    text = (day / "nightly.log").read_text()
    assert text.count("run started") == 3 and text.count("run finished") == 1
    assert "already captured today" in text


def descendants(pid: int) -> set[int]:
    """All processes below ``pid`` (pool workers, a fork server, trackers)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            kids = []
        todo += [k for k in kids if k not in found]
        found.update(kids)
    return found


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_nightly_killed_alone_leaves_neither_a_lock_nor_workers_behind(
    table_image_dir: Path, untrained_model_dir: Path, tmp_path: Path
) -> None:
    # Only the main process is killed (as the OOM killer does), while its batch
    # workers run. Screens from an earlier run make this run go straight to batch.
    day = tmp_path / "out" / DAY
    (day / "screens").mkdir(parents=True)
    # Enough images that the batch is still running well after its workers start.
    pngs = sorted(table_image_dir.glob("*.png")) * 8
    for i, png in enumerate(pngs, start=1):
        (day / "screens" / f"x-20240501T000000Z-p{i}.png").write_bytes(png.read_bytes())
        (day / "screens" / f"x-20240501T000000Z-p{i}.json").write_text("{}\n")
    cfg = tmp_path / "nightly.toml"
    cfg.write_text(
        f'root = "out"\nmodel = "{untrained_model_dir}"\nreview_below = 0.0\n'
        '[[target]]\nname = "x"\nurl = "http://127.0.0.1:9/"\n'
        f'pages = {{ next = "a.next", count = {len(pngs)} }}\n',
        encoding="utf-8",
    )
    cmd = gridreader("nightly", "--config", str(cfg), "--date", DAY, "--workers", "2")
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    below: set[int] = set()
    try:
        # Kill once batch has started and its process tree has stopped growing.
        deadline = time.monotonic() + 120
        log = day / "nightly.log"
        stable_since = time.monotonic()
        while proc.poll() is None and time.monotonic() < deadline:
            now = descendants(proc.pid)
            if now - below:
                below |= now
                stable_since = time.monotonic()
            started = log.is_file() and "batch: reading" in log.read_text()
            if started and len(below) >= 2 and time.monotonic() - stable_since > 1.0:
                break
            time.sleep(0.02)
        assert proc.poll() is None and len(below) >= 2, f"no workers seen (exit {proc.poll()})"
        done = len(list(day.glob("tables/*.csv")))
        assert done < len(pngs), "batch ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert proc.wait(timeout=30) == -signal.SIGKILL
        # Its workers, fork server and resource tracker follow within 5 s...
        while any(alive(p) for p in below) and time.monotonic() - killed < 5:
            time.sleep(0.05)
        left = [p for p in below if alive(p)]
        assert left == [], f"still running 5 s after the kill: {left}"

        # ... and the next run is not locked out by anything the killed one left.
        again = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, timeout=240)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        summary = json.loads((day / "summary.json").read_text())
        assert summary["tables"]["read"] == len(pngs) and summary["tables"]["failed"] == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
