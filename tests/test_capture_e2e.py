"""End to end: ``gridreader capture`` the demo pages, then ``gridreader batch`` reads them.

Each CSV that batch writes must equal the truth table beside the page.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from capture.samples import make_samples
from gridreader.cli import main

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = Path(__file__).resolve().parents[1] / "data" / "pages"


def read_table(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [[cell.strip() for cell in row] for row in csv.reader(f)]


def find_csv(out: Path, name: str) -> Path:
    direct = out / f"{name}.csv"
    if direct.is_file():
        return direct
    found = sorted(out.rglob(f"{name}.csv"))
    assert len(found) == 1, f"expected one {name}.csv under {out}, found {found}"
    return found[0]


def test_capture_then_batch_gives_the_numbers_on_the_pages(tmp_path: Path) -> None:
    names = make_samples(PAGES, tmp_path / "samples")  # capture.run.capture_targets
    assert names == ["borderless", "dark", "roulette", "ruled"]
    screens = tmp_path / "screens"
    screens.mkdir()
    for name in names:
        shutil.copy(tmp_path / "samples" / f"{name}.png", screens / f"{name}.png")
    out = tmp_path / "out"
    assert main(["batch", str(screens), "--out", str(out)]) == 0
    for name in names:
        assert read_table(find_csv(out, name)) == read_table(PAGES / f"{name}.csv"), name
