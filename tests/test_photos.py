"""Photographed grids: the generator, rectification (perspective and page sag) and
golden photos of every family.

The golden photos are the first two of each family in ``data/devset/photos`` (the
rule, not a pick by result). A photo counts as right when ``find_grid`` gets its
shape and every truth cell's box is matched with IoU >= 0.5. When written, all 60
photos of the set passed this check (held-out families included).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from gridreader.errors import DataError
from gridreader.grid import cell_boxes, find_grid, rectify_image
from gridreader.grid.bounds import merge_slivers
from gridreader.grid.ink import InkMaps
from gridreader.grid.rectify import (
    bend_points,
    find_outline,
    needs_homography,
    outline_transform,
)
from gridreader.imageio import load_image
from gridreader.imaging import rendered_page, to_gray
from gridreader.synth.photos import FAMILIES, render_photo, with_settings
from gridreader.synth.tables import render_table
from gridreader.types import Grid, PageBend

PHOTOS = Path(__file__).resolve().parent.parent / "data" / "devset" / "photos"
PICTURES = Path(__file__).resolve().parent / "data" / "photos"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _iou(a: tuple[int, ...] | list[int], b: tuple[int, ...] | list[int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union else 0.0


def grid_problems(image: np.ndarray, rows: int, cols: int, truth: list) -> list[str]:
    grid = find_grid(image)
    if grid.shape != (rows, cols):
        return [f"shape {grid.shape}, expected {(rows, cols)}"]
    bad = [c for c in cell_boxes(grid) if _iou(c.box, truth[c.row][c.col]) < 0.5]
    return [f"cell {c.row},{c.col}: {c.box} vs {truth[c.row][c.col]}" for c in bad]


@pytest.mark.parametrize("name", [f"{f}-{k:02d}" for f in FAMILIES for k in (0, 1)])
def test_golden_photo(name: str) -> None:
    meta = json.loads((PHOTOS / f"{name}.boxes.json").read_text(encoding="utf-8"))
    image = load_image(PHOTOS / f"{name}.jpg")
    problems = grid_problems(image, meta["rows"], meta["cols"], meta["boxes"])
    assert not problems, f"{name}: " + "; ".join(problems[:4])


def test_photo_set_matches_its_truth_files() -> None:
    photos = sorted(PHOTOS.glob("*.jpg"))
    assert len(photos) == 10 * len(FAMILIES)
    heldout = {f.name for f in FAMILIES.values() if f.heldout}
    assert len(heldout) == 3
    for p in photos:
        meta = json.loads(p.with_suffix("").with_suffix(".boxes.json").read_text())
        csv_rows = p.with_suffix(".csv").read_text().splitlines()
        assert len(csv_rows) == meta["rows"] == len(meta["boxes"])
        assert all(len(r.split(",")) == meta["cols"] for r in csv_rows)
        assert meta["heldout"] == (meta["style"] in heldout)


def test_a_photo_is_seeded_and_its_boxes_lie_in_the_frame() -> None:
    a = render_photo("puzzle-lowres", seed=5)
    b = render_photo("puzzle-lowres", seed=5)
    assert a.jpeg == b.jpeg
    h, w = a.image.shape[:2]
    assert (w, h) == FAMILIES["puzzle-lowres"].frame
    assert len(a.boxes) == 9 and all(len(r) == 9 for r in a.boxes)
    for row in a.boxes:
        for x0, y0, x1, y1 in row:
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # Neighbouring cells touch: the boxes follow one lattice.
    assert abs(a.boxes[4][4][2] - a.boxes[4][5][0]) <= 0.35 * (a.boxes[4][4][2] - a.boxes[4][4][0])


def test_a_handwritten_family_needs_mnist() -> None:
    with pytest.raises(DataError, match="tally-hand"):
        render_photo("tally-hand", seed=0)
    with pytest.raises(DataError, match="not one of"):
        render_photo("nope")


@pytest.mark.parametrize("tilt", [12.0, 30.0])
def test_a_steep_photo_is_rectified_and_read(tilt: float) -> None:
    fam = with_settings("puzzle-tilt", max_tilt=tilt, frame=(640, 480), bend=0.0)
    p = render_photo(fam, seed=int(tilt), font=FONT)
    assert p.tilt > 0.0
    problems = grid_problems(p.image, 9, 9, p.boxes)
    assert not problems, "; ".join(problems[:4])


def test_a_sagging_page_is_flattened() -> None:
    fam = with_settings("puzzle-lowres", max_tilt=4.0, bend=0.06, frame=(960, 1280))
    p = render_photo(fam, seed=3, font=FONT)
    outline = find_outline(to_gray(p.image))
    assert outline is not None and outline.cells >= 60
    rect = outline_transform(outline)
    assert rect.bend is not None and needs_homography(outline, rect.bend)
    grid = find_grid(p.image)
    assert grid.bend is not None
    assert not grid_problems(p.image, 9, 9, p.boxes)
    # Cells are cut from the flattened picture: it has the frame's size.
    flat = rectify_image(p.image, grid)
    assert flat.shape[1::-1] == grid.rectified_size


@pytest.mark.parametrize("style", ["ruled", "dark", "zebra"])
def test_a_screenshot_is_not_rectified(style: str) -> None:
    values = [[(r * 5 + c) % 37 for c in range(6)] for r in range(5)]
    table = render_table(values, style, seed=3, font=FONT)
    grid = find_grid(table.image)
    assert grid.bend is None
    assert np.array_equal(grid.to_image, np.eye(3))
    assert rectify_image(table.image, grid) is table.image


def test_a_turned_scan_is_left_to_the_rotation_search() -> None:
    values = [[(r * 5 + c) % 37 for c in range(5)] for r in range(6)]
    table = render_table(values, "ruled", seed=2, font=FONT, line_width=2)
    h, w = table.image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 3.0, 1.0)
    turned = cv2.warpAffine(table.image, m, (w, h), borderValue=(255, 255, 255))
    outline = find_outline(to_gray(turned))
    assert outline is not None
    assert not needs_homography(outline, outline_transform(outline).bend)


def test_bend_points_follow_the_fitted_sides() -> None:
    box = (10.0, 20.0, 110.0, 220.0)
    # Top and bottom sag 5 px in the middle (x = 60), the sides are straight.
    sag = (-5.0 / 50**2, 2 * 5.0 * 60 / 50**2, 5.0 - 5.0 * 60**2 / 50**2)
    bend = PageBend(box, sag, sag, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    pts = np.array([[60.0, 20.0], [60.0, 120.0], [10.0, 20.0], [110.0, 220.0]])
    moved = bend_points(bend, pts)
    assert moved[0] == pytest.approx([60.0, 25.0])
    assert moved[1] == pytest.approx([60.0, 125.0])
    assert moved[2] == pytest.approx([10.0, 20.0], abs=1e-9)
    assert bend_points(None, pts) is pts
    grid = Grid((20.0, 120.0, 220.0), (10.0, 60.0, 110.0), np.eye(3), (120, 240), bend=bend)
    boxes = {(c.row, c.col): c.box for c in cell_boxes(grid)}
    # The top cells' upper side bulges down to y = 25 in the middle, not below 20.
    assert boxes[(0, 0)][1] == 20 and boxes[(0, 0)][3] == 125


def test_a_shape_hint_keeps_the_page_sag() -> None:
    meta = json.loads((PHOTOS / "puzzle-tilt-00.boxes.json").read_text(encoding="utf-8"))
    image = load_image(PHOTOS / "puzzle-tilt-00.jpg")
    plain = find_grid(image)
    hinted = find_grid(image, shape=(9, 9))
    assert hinted.shape == (9, 9)
    assert (hinted.bend is None) == (plain.bend is None)
    assert np.array_equal(hinted.to_image, plain.to_image)
    boxes = {(c.row, c.col): c.box for c in cell_boxes(hinted)}
    assert min(_iou(boxes[r, c], meta["boxes"][r][c]) for r in range(9) for c in range(9)) >= 0.5


def two_grids_side_by_side(gap: int) -> np.ndarray:
    """Two ruled 9x9 puzzles ``gap`` px apart on a page over a dark desk, the
    second cut by the picture's right edge (a neighbouring puzzle in view)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (900, 560), (70, 50, 40))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 899, 500), fill=(235, 235, 230))
    font = ImageFont.truetype(str(FONT), 24)
    rng = np.random.default_rng(7)
    cell = 44
    for left in (40, 40 + 9 * cell + gap):
        for k in range(10):
            width = 3 if k % 3 == 0 else 1
            d.line(
                [(left + k * cell, 40), (left + k * cell, 40 + 9 * cell)], fill="black", width=width
            )
            d.line(
                [(left, 40 + k * cell), (left + 9 * cell, 40 + k * cell)], fill="black", width=width
            )
        for r in range(9):
            for c in range(9):
                if rng.random() < 0.4:
                    xy = (left + c * cell + 15, 40 + r * cell + 8)
                    d.text(xy, str(int(rng.integers(1, 10))), font=font, fill="black")
    return np.asarray(img)


@pytest.mark.parametrize("gap", [50, 80])
def test_a_second_grid_beside_the_first_is_left_out(gap: int) -> None:
    # Their rows line up and the search's reach spans the gap: the two were
    # one structure of 9x19 or so. No horizontal rule crosses the gap.
    grid = find_grid(two_grids_side_by_side(gap))
    assert grid.shape == (9, 9)
    assert grid.col_edges[0] >= 30 and grid.col_edges[-1] <= 40 + 9 * 44 + 10


def _maps(centres: list[tuple[float, float]]) -> InkMaps:
    blank = np.zeros((500, 500), np.uint8)
    pts = np.array(centres, float).reshape(-1, 2)
    return InkMaps(blank, blank, blank, blank, blank, 20.0, pts)


def test_a_sliver_without_glyphs_is_no_column() -> None:
    # A thick box line cut at both edges leaves a 6 px column among 44 px
    # ones: its edges become one. With a glyph in it, it is a column.
    rows = [float(40 + 44 * k) for k in range(10)]
    cols = [40.0, 84.0, 128.0, 172.0, 178.0, 222.0, 266.0, 310.0, 354.0, 398.0, 442.0]
    _, merged = merge_slivers(_maps([(60.0, 60.0)]), rows, cols, 0.25)
    assert merged == [40.0, 84.0, 128.0, 175.0, 222.0, 266.0, 310.0, 354.0, 398.0, 442.0]
    _, kept = merge_slivers(_maps([(175.0, 100.0)]), rows, cols, 0.25)
    assert kept == cols
    # A sliver that makes one cell with its neighbour is a stray cut: that
    # edge goes. A short empty row (a web row of padding, 0.3 of a pitch) makes 1.3 cells.
    stray = [40.0, 84.0, 128.0, 135.0, 172.0, 216.0]
    assert merge_slivers(_maps([]), rows, stray, 0.25)[1] == [40.0, 84.0, 128.0, 172.0, 216.0]
    short = [40.0, 84.0, 128.0, 141.0, 185.0, 229.0]
    assert merge_slivers(_maps([]), rows, short, 0.25)[1] == short
    # An outer sliver goes; rows are treated alike.
    merged_rows, _ = merge_slivers(_maps([]), [*rows, rows[-1] + 8.0], cols[:4], 0.25)
    assert merged_rows == rows


@pytest.mark.parametrize(("family", "seed"), [("puzzle-lowres", 120116), ("puzzle-tilt", 170010)])
def test_a_thick_line_cut_twice_is_one_edge(family: str, seed: int) -> None:
    # Photos of two generator draws that came out 9x10: a box line cut at
    # both of its edges (or a line doubled by the rectification) made a
    # sliver column.
    p = render_photo(family, seed=seed)
    assert find_grid(p.image).shape == (9, 9)


def test_a_small_box_in_perspective_is_no_photographed_grid() -> None:
    # A piece of ink around four holes (a strip of badges on a web page, a
    # logo) took the page for a photograph, and the search for that box's
    # frame missed the table of numbers beside it.
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (760, 560), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 18)
    rng = np.random.default_rng(3)
    for r in range(8):
        y = 30 + 44 * r
        d.line([(20, y - 10), (420, y - 10)], fill=(200, 200, 200), width=1)
        for c in range(5):
            d.text((34 + 80 * c, y), str(int(rng.integers(0, 37))), font=font, fill="black")
    d.polygon([(500, 420), (700, 420), (680, 500), (520, 500)], outline="black", width=3)
    d.line([(600, 420), (600, 500)], fill="black", width=3)
    d.line([(510, 460), (690, 460)], fill="black", width=3)
    assert find_grid(np.asarray(img)).shape == (8, 5)


@pytest.mark.parametrize(
    "family", ["puzzle-lowres", "puzzle-thin", "puzzle-tilt", "tally-print-lowres"]
)
def test_a_photographed_page_is_no_rendered_page(family: str) -> None:
    # Only a rendered page skips the search for a photographed outline:
    # paper's grain and shading keep a photo's pixels off a few flat fills.
    photo = render_photo(family, seed=11)
    assert not rendered_page(
        to_gray(cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR))
    )
    for name in ("astronaut.jpg", "coffee.jpg"):
        assert not rendered_page(to_gray(load_image(PICTURES / name)))
