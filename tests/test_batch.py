"""``gridreader batch`` end to end, with the committed default model.

The tables are rendered by the ``clear_tables`` fixture (clear DejaVu faces, cells
of 30 px and more), so the default model must read them almost perfectly: at
most one wrong cell per table.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ClearTable
from PIL import Image

from gridreader.cli import main

REVIEW_BELOW = 0.999
REPORT_KEYS = {"image", "status", "error", "rows", "cols", "model", "cells"}
CELL_KEYS = {"row", "col", "box", "value", "confidence"}
SIDECAR_KEYS = {
    "crop",
    "row_strip",
    "image",
    "row",
    "col",
    "box",
    "guess",
    "confidence",
    "model",
    "classes",
    "sha256",
}


@dataclass(frozen=True)
class Run:
    code: int
    err: str
    input_dir: Path
    out_dir: Path


def batch(input_dir: Path, out_dir: Path, *extra: str) -> Run:
    """Run ``gridreader batch`` and keep its exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["batch", str(input_dir), "--out", str(out_dir), *extra])
    return Run(code, err.getvalue(), input_dir, out_dir)


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def report(out_dir: Path) -> list[dict[str, Any]]:
    lines = (out_dir / "report.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def wrong_cells(pred: list[list[str]], table: ClearTable) -> list[str]:
    truth = table.csv_rows()
    assert len(pred) == len(truth), f"{table.stem}: {len(pred)} rows, truth {len(truth)}"
    out = []
    for r, (prow, trow) in enumerate(zip(pred, truth, strict=True)):
        assert len(prow) == len(trow), f"{table.stem} row {r}: {len(prow)} cells"
        out += [
            f"({r},{c}) {b!r}->{a!r}"
            for c, (a, b) in enumerate(zip(prow, trow, strict=True))
            if a != b
        ]
    return out


def copy_images(tables: list[ClearTable], dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for t in tables:
        shutil.copy2(t.path, dst / t.path.name)
    return dst


def mtimes(out_dir: Path, stems: list[str]) -> dict[str, int]:
    return {s: (out_dir / f"{s}.csv").stat().st_mtime_ns for s in stems}


def touch(path: Path) -> None:
    os.utime(path)


@pytest.fixture(scope="module")
def first_run(
    tmp_path_factory: pytest.TempPathFactory,
    clear_tables: tuple[Path, list[ClearTable]],
    default_classifier: Any,
) -> Run:
    """One batch over the six tables, their truth files and some non-image clutter."""
    src, _ = clear_tables
    root = tmp_path_factory.mktemp("batch")
    input_dir = root / "in"
    shutil.copytree(src, input_dir)
    (input_dir / "notes.txt").write_text("not an image\n")
    (input_dir / "archive.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    (input_dir / "sub").mkdir()
    shutil.copy2(next(input_dir.glob("*.png")), input_dir / "sub" / "nested.png")
    return batch(input_dir, root / "out", "--review-below", str(REVIEW_BELOW))


def test_exit_code_and_summary(first_run: Run) -> None:
    assert first_run.code == 0, first_run.err
    assert "6 images: 6 read, 0 failed, 0 up to date" in first_run.err


def test_csvs_match_the_truth(first_run: Run, clear_tables: tuple[Path, list[ClearTable]]) -> None:
    _, tables = clear_tables
    problems, total, wrong = [], 0, 0
    for t in tables:
        bad = wrong_cells(read_csv(first_run.out_dir / f"{t.stem}.csv"), t)
        total += sum(len(r) for r in t.values)
        wrong += len(bad)
        if len(bad) > 1:
            problems.append(f"{t.stem}: {len(bad)} wrong: {', '.join(bad)}")
    print(f"batch cell accuracy {(total - wrong) / total:.4f} ({wrong} wrong of {total})")
    assert not problems, "; ".join(problems)


def test_report_has_one_complete_record_per_image(
    first_run: Run, clear_tables: tuple[Path, list[ClearTable]], default_classifier: Any
) -> None:
    _, tables = clear_tables
    records = report(first_run.out_dir)
    assert [r["image"] for r in records] == [str(first_run.input_dir / t.path.name) for t in tables]
    for rec, t in zip(records, tables, strict=True):
        assert set(rec) == REPORT_KEYS
        assert rec["status"] == "ok" and rec["error"] is None
        assert (rec["rows"], rec["cols"]) == (len(t.values), len(t.values[0]))
        assert rec["model"] == default_classifier.name
        assert len(rec["cells"]) == rec["rows"] * rec["cols"]
        pred = read_csv(first_run.out_dir / f"{t.stem}.csv")
        h, w = np.asarray(Image.open(t.path)).shape[:2]
        for k, cell in enumerate(rec["cells"]):
            assert set(cell) == CELL_KEYS
            assert (cell["row"], cell["col"]) == divmod(k, rec["cols"])
            x0, y0, x1, y1 = cell["box"]
            assert 0 <= x0 < x1 <= w + 1 and 0 <= y0 < y1 <= h + 1
            assert 0.0 < cell["confidence"] <= 1.0
            shown = "" if cell["value"] is None else str(cell["value"])
            assert shown == pred[cell["row"]][cell["col"]]


def test_review_queue_holds_the_uncertain_cells(first_run: Run, default_classifier: Any) -> None:
    review = first_run.out_dir / "review"
    sidecars = sorted(review.glob("*.json"))
    records = {Path(r["image"]).stem: r for r in report(first_run.out_dir)}
    expected = {
        (stem, c["row"], c["col"])
        for stem, r in records.items()
        for c in r["cells"]
        if c["confidence"] < REVIEW_BELOW
    }
    found = set()
    for sc in sidecars:
        meta = json.loads(sc.read_text())
        assert set(meta) == SIDECAR_KEYS
        stem = sc.name.split(".r")[0]
        found.add((stem, meta["row"], meta["col"]))
        assert sc.name == f"{stem}.r{meta['row']:03d}c{meta['col']:03d}.json"
        assert meta["crop"] == sc.with_suffix(".png").name
        assert meta["row_strip"] == f"{stem}.r{meta['row']:03d}.row.png"
        crop = (review / meta["crop"]).read_bytes()
        assert hashlib.sha256(crop).hexdigest() == meta["sha256"]
        assert Image.open(io.BytesIO(crop)).mode == "RGB"
        strip = Image.open(review / meta["row_strip"])
        assert strip.width > Image.open(io.BytesIO(crop)).width
        assert Path(meta["image"]).is_absolute()
        assert Path(meta["image"]) == (first_run.input_dir / Path(records[stem]["image"]).name)
        assert meta["confidence"] < REVIEW_BELOW
        assert meta["model"] == default_classifier.name
        assert meta["classes"] == list(default_classifier.classes)
        cell = records[stem]["cells"][meta["row"] * records[stem]["cols"] + meta["col"]]
        assert meta["box"] == cell["box"]
        assert meta["guess"] == ("empty" if cell["value"] is None else str(cell["value"]))
    # The report rounds confidences to 4 places; a cell right at the threshold may go either way.
    boundary = {
        (stem, c["row"], c["col"])
        for stem, r in records.items()
        for c in r["cells"]
        if c["confidence"] == REVIEW_BELOW
    }
    assert found, f"no cell below {REVIEW_BELOW}: nothing to check (raise REVIEW_BELOW)"
    assert expected <= found <= expected | boundary
    crops = [p for p in review.glob("*.png") if not p.name.endswith(".row.png")]
    assert len(crops) == len(sidecars)
    rows_with_review = {(stem, row) for stem, row, _ in found}
    assert len(list(review.glob("*.row.png"))) == len(rows_with_review)


def test_non_image_files_are_ignored(first_run: Run) -> None:
    names = sorted(p.name for p in first_run.out_dir.iterdir())
    csvs = [n for n in names if n.endswith(".csv")]
    assert len(csvs) == 6
    assert sorted(set(names) - set(csvs)) == [
        ".gridreader",
        "report",
        "report.html",
        "report.jsonl",
        "review",
    ]
    images = [Path(r["image"]).name for r in report(first_run.out_dir)]
    assert "notes.txt" not in images and "nested.png" not in images


def test_rerun_skips_fresh_images_and_redoes_touched_ones(
    tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]]
) -> None:
    _, tables = clear_tables
    two = tables[:2]
    stems = [t.stem for t in two]
    input_dir = copy_images(two, tmp_path / "in")
    out = tmp_path / "out"
    assert batch(input_dir, out).code == 0
    first = mtimes(out, stems)
    first_report = (out / "report.jsonl").read_text()

    again = batch(input_dir, out)
    assert again.code == 0
    assert "2 images: 0 read, 0 failed, 2 up to date" in again.err
    assert mtimes(out, stems) == first
    assert (out / "report.jsonl").read_text() == first_report

    touch(input_dir / two[0].path.name)
    touched = batch(input_dir, out)
    assert "2 images: 1 read, 0 failed, 1 up to date" in touched.err
    now = mtimes(out, stems)
    assert now[stems[0]] != first[stems[0]]
    assert now[stems[1]] == first[stems[1]]
    assert len(report(out)) == 2

    forced = batch(input_dir, out, "--force")
    assert "2 images: 2 read, 0 failed, 0 up to date" in forced.err
    last = mtimes(out, stems)
    assert all(last[s] != now[s] for s in stems)
    assert len(report(out)) == 2


def test_replaced_image_with_an_older_mtime_is_redone(
    tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]]
) -> None:
    # cp -p, rsync -a and unzip keep the source's (older) mtime: the content changed all
    # the same, and a stale table must not be kept.
    _, tables = clear_tables
    a, b = tables[0], tables[2]
    input_dir = copy_images([a], tmp_path / "in")
    out = tmp_path / "out"
    assert batch(input_dir, out).code == 0
    image = input_dir / a.path.name
    shutil.copyfile(b.path, image)
    os.utime(image, (1_000_000_000, 1_000_000_000))  # 2001
    run = batch(input_dir, out)
    assert run.code == 0, run.err
    assert "1 read" in run.err, run.err
    assert wrong_cells(read_csv(out / f"{a.stem}.csv"), b) == []


def test_corrupt_image_among_good_ones(
    tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]]
) -> None:
    _, tables = clear_tables
    input_dir = copy_images(tables[:2], tmp_path / "in")
    good = tables[0].path.read_bytes()
    bad = input_dir / "b-corrupt.png"
    bad.write_bytes(good[: len(good) // 3])
    run = batch(input_dir, tmp_path / "out")
    assert run.code == 1
    assert "Traceback" not in run.err
    error_lines = [line for line in run.err.splitlines() if "error" in line]
    assert len(error_lines) == 1 and str(bad) in error_lines[0]
    for t in tables[:2]:
        assert (run.out_dir / f"{t.stem}.csv").is_file()
    assert not (run.out_dir / "b-corrupt.csv").exists()
    assert not list((run.out_dir / "review").glob("b-corrupt.*"))
    records = {Path(r["image"]).name: r for r in report(run.out_dir)}
    assert len(records) == 3
    rec = records["b-corrupt.png"]
    assert rec["status"] == "error"
    assert str(bad) in rec["error"] and "\n" not in rec["error"]
    assert rec["cells"] == [] and rec["rows"] is None and rec["cols"] is None
    assert all(records[t.path.name]["status"] == "ok" for t in tables[:2])


def test_image_without_a_table_is_reported(
    tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]]
) -> None:
    _, tables = clear_tables
    input_dir = copy_images(tables[:1], tmp_path / "in")
    Image.new("RGB", (400, 300), "white").save(input_dir / "blank.png")
    run = batch(input_dir, tmp_path / "out")
    assert run.code == 1
    rec = {Path(r["image"]).name: r for r in report(run.out_dir)}["blank.png"]
    assert rec["status"] == "error" and "no table" in rec["error"]
    assert str(input_dir / "blank.png") in rec["error"]
    assert not (run.out_dir / "blank.csv").exists()


def test_failed_image_loses_its_stale_outputs(
    tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]]
) -> None:
    _, tables = clear_tables
    input_dir = copy_images(tables[:1], tmp_path / "in")
    out = tmp_path / "out"
    assert batch(input_dir, out, "--review-below", "1").code == 0
    stem = tables[0].stem
    assert (out / f"{stem}.csv").is_file()
    image = input_dir / tables[0].path.name
    image.write_bytes(b"now broken")
    touch(image)
    run = batch(input_dir, out)
    assert run.code == 1
    assert not (out / f"{stem}.csv").exists()
    assert not list((out / "review").glob(f"{stem}.r*"))
    assert report(out)[0]["status"] == "error"


def test_missing_input_folder(tmp_path: Path) -> None:
    run = batch(tmp_path / "nowhere", tmp_path / "out")
    assert run.code == 2
    assert run.err.count("\n") == 1
    assert str(tmp_path / "nowhere") in run.err and "Traceback" not in run.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_bad_worker_count_is_a_usage_error(tmp_path: Path, value: str) -> None:
    (tmp_path / "in").mkdir()
    run = batch(tmp_path / "in", tmp_path / "out", "--workers", value)
    assert run.code == 2
    assert "--workers" in run.err and "Traceback" not in run.err
    assert not (tmp_path / "out").exists()


def run_child(script: str, *args: Path, hang: str, timeout: int = 120) -> tuple[str, str]:
    """Run ``script`` in a fresh Python with ``args``; its stdout and stderr.

    A hung child (a deadlocked worker pool) fails the test with ``hang``
    instead of hanging the session; a failed one fails it with its stderr.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{hang} ({timeout} s): {out!r}")
    assert proc.returncode == 0, err[-2000:]
    return out, err


# Runs in a child process: a deadlocked pool must fail the test, not hang the session.
_TWO_RUNS = """
import sys
from gridreader.cli import main
src, out = sys.argv[1], sys.argv[2]
# One process, two jobs (as eval and the nightly job do): workers 1, then workers 2.
print("workers1", main(["batch", src, "--out", out + "/w1", "--workers", "1"]), flush=True)
print("workers2", main(["batch", src, "--out", out + "/w2", "--workers", "2"]), flush=True)
"""


def test_two_workers_give_identical_outputs(
    first_run: Run, tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]]
) -> None:
    _, tables = clear_tables
    out, err = run_child(
        _TWO_RUNS,
        first_run.input_dir,
        tmp_path,
        hang="batch --workers 2 hung after an earlier batch in the same process",
    )
    assert out.split() == ["workers1", "0", "workers2", "0"], err[-2000:]
    for t in tables:
        one = (tmp_path / "w1" / f"{t.stem}.csv").read_bytes()
        two = (tmp_path / "w2" / f"{t.stem}.csv").read_bytes()
        assert one == two, t.stem
        assert one == (first_run.out_dir / f"{t.stem}.csv").read_bytes(), t.stem
    assert [r["cells"] for r in report(tmp_path / "w2")] == [
        r["cells"] for r in report(tmp_path / "w1")
    ]


# Runs in a child process: a pool left busy or broken must fail the test, not hang it.
_SHARED_POOL = """
import sys
from pathlib import Path
from gridreader.batch import run_batch
from gridreader.model import load_classifier
from gridreader.pipeline import iter_analysed, start_workers
src, out = Path(sys.argv[1]), Path(sys.argv[2])
images = sorted(p for p in src.iterdir() if p.suffix == ".png")
with start_workers(2) as pool:
    clf = load_classifier(None)
    # A reader that stops after one image leaves the pool free for the next job.
    first = next(iter(iter_analysed(images, clf.input_size, pool=pool)))
    print("first", first.path.name, flush=True)
    for name in ("a", "b"):
        s = run_batch(src, out / name, clf, pool=pool, progress=False)
        print(name, s.ok, s.failed, flush=True)
"""


def test_one_worker_pool_serves_several_jobs(
    first_run: Run, tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]]
) -> None:
    _, tables = clear_tables
    out, err = run_child(
        _SHARED_POOL, first_run.input_dir, tmp_path, hang="a job on a shared worker pool hung"
    )
    n = len(tables)
    first = sorted(t.path.name for t in tables)[0]
    assert out.split() == ["first", first, "a", str(n), "0", "b", str(n), "0"], err[-2000:]
    for t in tables:
        want = (first_run.out_dir / f"{t.stem}.csv").read_bytes()
        assert (tmp_path / "a" / f"{t.stem}.csv").read_bytes() == want, t.stem
        assert (tmp_path / "b" / f"{t.stem}.csv").read_bytes() == want, t.stem


# Runs in a child process, so its peak RSS is this batch's alone.
_PEAK = """
import resource, sys
from gridreader.cli import main
code = main(["batch", sys.argv[1], "--out", sys.argv[2], "--workers", sys.argv[3]])
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(code, own, kids)
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_peak_memory_does_not_grow_with_the_number_of_images(
    tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]], workers: str
) -> None:
    image = clear_tables[1][0].path
    peaks = {}
    # 42 cells each: 60 images already fill many of the network's batches (512
    # cells), so any growth beyond that is a leak.
    for n in (60, 180):
        src = tmp_path / f"in{n}"
        src.mkdir()
        for i in range(n):
            shutil.copy(image, src / f"t{i:03d}{image.suffix}")
        run = subprocess.run(
            [sys.executable, "-c", _PEAK, str(src), str(tmp_path / f"out{n}"), workers],
            capture_output=True,
            text=True,
            timeout=300,
        )
        code, own, kids = (int(v) for v in run.stdout.split()[-3:])
        assert code == 0, run.stderr[-2000:]
        assert len(list((tmp_path / f"out{n}").glob("*.csv"))) == n
        peaks[n] = (own, kids)
    # Three times the images: the main process and each worker stay within 40 MB.
    assert peaks[180][0] - peaks[60][0] < 40_000, peaks
    assert peaks[180][1] - peaks[60][1] < 40_000, peaks


def test_analysed_crops_are_the_cells_the_classifier_saw(
    clear_tables: tuple[Path, list[ClearTable]],
) -> None:
    from gridreader.grid import cut_cells, find_grid, rectify_image
    from gridreader.imageio import load_image
    from gridreader.pipeline import analyse_image
    from gridreader.preprocess import prepare_batch, quantise

    path = clear_tables[1][0].path
    a = analyse_image(path, (32, 48))
    image = load_image(path)
    grid = find_grid(image)
    crops = cut_cells(rectify_image(image, grid), grid)
    assert len(crops) == grid.rows * grid.cols == len(a.inputs)
    for k, crop in enumerate(crops):
        assert np.array_equal(a.crop(k), crop), k
    assert np.array_equal(a.inputs, quantise(prepare_batch(crops, (32, 48))))
    for r in range(grid.rows):
        strip = a.row_strip(r)
        row = [a.crop(r * grid.cols + c) for c in range(grid.cols)]
        assert strip.shape[0] == row[0].shape[0]
        assert strip.shape[1] >= sum(c.shape[1] for c in row)


# Runs in a child process: malloc settings last for the process.
_FAULTS = """
import resource, sys
from pathlib import Path
from gridreader.pipeline import _keep_freed_memory, analyse_image
if sys.argv[2] == "keep":
    _keep_freed_memory()
images = sorted(Path(sys.argv[1]).glob("*.png"))
for p in images:  # the first pass sizes the heap
    analyse_image(p, (32, 48))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for p in images:
    analyse_image(p, (32, 48))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_workers_reuse_freed_memory(table_image_dir: Path) -> None:
    # A worker's arrays, freed after one image and allocated again for the
    # next, are reused rather than page-faulted in afresh from the kernel.
    counts = {}
    for mode in ("default", "keep"):
        run = subprocess.run(
            [sys.executable, "-c", _FAULTS, str(table_image_dir), mode],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        counts[mode] = int(run.stdout.split()[-1])
    assert counts["keep"] * 5 < counts["default"], counts
