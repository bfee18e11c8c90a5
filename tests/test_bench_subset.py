"""A fast subset of the dev bench: grid shapes and cell boxes on real screenshots and scans.

The subset is chosen by rule, not by result: every 4th screen (``ds-000``,
``ds-004``, ...: ten images, each of the five styles twice) and every 5th scan
(six images). An image counts as right when ``find_grid`` gets its shape and every
truth cell's box is matched with IoU >= 0.5. The thresholds are the counts
measured when the test was written; a drop fails the test.

Measured when written (whole dev bench, for reference): screens 40/40, scans 30/30.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gridreader.errors import NoTableError
from gridreader.grid import cell_boxes, find_grid
from gridreader.imageio import is_image_path, load_image

BENCH = Path(__file__).resolve().parent.parent / "data" / "bench" / "dev"
MIN_IOU = 0.5

# folder -> (take every n-th image, images in the subset, images right when measured)
SUBSETS = {"screens": (4, 10, 10), "scans": (5, 6, 6)}


def _iou(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def subset(folder: str) -> list[Path]:
    d = BENCH / folder
    if not d.is_dir():
        pytest.fail(f"{d} is missing: the dev bench ships with the project (data/bench/dev)")
    step = SUBSETS[folder][0]
    images = sorted(p for p in d.iterdir() if p.is_file() and is_image_path(p))
    return images[::step]


def check(path: Path) -> str | None:
    """None when the grid is right, else what is wrong."""
    meta = json.loads(path.with_suffix(".boxes.json").read_text(encoding="utf-8"))
    truth = meta["boxes"]
    try:
        grid = find_grid(load_image(path))
    except NoTableError as e:
        return f"{path.name}: no table ({e})"
    if grid.shape != (meta["rows"], meta["cols"]):
        return f"{path.name} ({meta['style']}): shape {grid.shape}, truth {(meta['rows'], meta['cols'])}"
    ious = [_iou(c.box, truth[c.row][c.col]) for c in cell_boxes(grid)]
    if min(ious) < MIN_IOU:
        bad = int(np.sum(np.array(ious) < MIN_IOU))
        return f"{path.name} ({meta['style']}): {bad} cells with IoU < {MIN_IOU}"
    return None


def test_screen_subset_covers_every_style() -> None:
    styles = {
        json.loads(p.with_suffix(".boxes.json").read_text(encoding="utf-8"))["style"]
        for p in subset("screens")
    }
    assert styles == {"lined", "roulette", "zebra", "borderless", "dark"}


@pytest.mark.parametrize("folder", sorted(SUBSETS))
def test_bench_subset_grid_accuracy(folder: str) -> None:
    images = subset(folder)
    _, size, expected = SUBSETS[folder]
    assert len(images) == size, f"the {folder} subset changed: {len(images)} images"
    problems = [p for p in (check(path) for path in images) if p]
    right = len(images) - len(problems)
    assert right >= expected, (
        f"{folder}: {right}/{len(images)} grids right, was {expected}: " + "; ".join(problems)
    )
