"""Review-folder indexing, plus the synthetic review folders the labeller tests share.

``make_review_dir`` writes what ``gridreader batch`` leaves in ``OUT/review/``
(CONVENTIONS.md): per cell a crop PNG, a JSON sidecar, and per row a strip PNG.
Every crop carries a little noise so no two are byte-identical (dedup is by hash).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from gridreader.classes import parse_classes
from gridreader.errors import DataError, LabelError
from gridreader.formats.review import ReviewCell
from gridreader.imageio import encode_png
from labeller.locate import locate_crop
from labeller.review import load_review_dirs

CLASSES = parse_classes("0-36")
CELL_H, CELL_W, GAP = 30, 44, 3


@dataclass(frozen=True)
class Cell:
    """What the test wrote for one cell."""

    sha256: str
    name: str
    row: int
    col: int
    value: str
    guess: str
    confidence: float
    x_in_strip: int


def draw_cell(value: str, rng: np.random.Generator) -> np.ndarray:
    """A cell crop: light background, a thin ruling, the number (or nothing), noise."""
    img = np.full((CELL_H, CELL_W, 3), 245, np.uint8)
    img[0, :] = img[-1, :] = 120
    if value != "empty":
        size, _ = cv2.getTextSize(value, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        org = ((CELL_W - size[0]) // 2, (CELL_H + size[1]) // 2)
        cv2.putText(img, value, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    noise = rng.integers(-6, 7, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def make_review_dir(
    root: Path,
    count: int,
    *,
    stem: str = "img1",
    cols: int = 8,
    seed: int = 0,
    guess_of: Callable[[int, str], str] | None = None,
    confidences: list[float] | None = None,
    model: str = "gridreader-v1",
    classes: tuple[str, ...] = CLASSES,
) -> list[Cell]:
    """Write ``count`` review cells under ``root`` (created); return them in file order.

    ``guess_of(i, true_value)`` gives the model's guess for cell ``i`` (default: right).
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cells: list[Cell] = []
    numbers = [c for c in classes if c != "empty"]
    rows = math.ceil(count / cols)
    for r in range(rows):
        n_here = min(cols, count - r * cols)
        strip = np.full((CELL_H + 2 * GAP, GAP + cols * (CELL_W + GAP), 3), 255, np.uint8)
        strip_name = f"{stem}.r{r:03d}.row.png"
        for c in range(n_here):
            i = r * cols + c
            value = "empty" if i % 7 == 3 else numbers[int(rng.integers(0, len(numbers)))]
            guess = guess_of(i, value) if guess_of is not None else value
            conf = confidences[i] if confidences is not None else round(float(rng.uniform()), 4)
            crop = draw_cell(value, rng)
            x = GAP + c * (CELL_W + GAP)
            strip[GAP : GAP + CELL_H, x : x + CELL_W] = crop
            data = encode_png(crop)
            sha = hashlib.sha256(data).hexdigest()
            name = f"{stem}.r{r:03d}c{c:03d}.png"
            (root / name).write_bytes(data)
            sidecar = {
                "crop": name,
                "row_strip": strip_name,
                "image": f"/data/{stem}.png",
                "row": r,
                "col": c,
                "box": [
                    100 + c * CELL_W,
                    50 + r * CELL_H,
                    100 + (c + 1) * CELL_W,
                    50 + (r + 1) * CELL_H,
                ],
                "guess": guess,
                "confidence": conf,
                "model": model,
                "classes": list(classes),
                "sha256": sha,
            }
            (root / f"{stem}.r{r:03d}c{c:03d}.json").write_text(json.dumps(sidecar))
            cells.append(Cell(sha, name, r, c, value, guess, conf, x))
        (root / strip_name).write_bytes(encode_png(strip))
    return cells


def queue_order(cells: list[Cell]) -> list[str]:
    """The sha256s in the order the labeller must ask them (least confident first)."""
    return [c.sha256 for c in sorted(cells, key=lambda c: (c.confidence, c.name))]


# -- tests of the index ---------------------------------------------------------


def test_index_orders_by_confidence_and_reads_every_field(tmp_path: Path) -> None:
    cells = make_review_dir(tmp_path / "review", 20, seed=1)
    index = load_review_dirs([tmp_path / "review"])
    assert [it.sha256 for it in index.items] == queue_order(cells)
    assert index.problems == ()
    first = index.items[0]
    cell = next(c for c in cells if c.sha256 == first.sha256)
    x0, y0 = 100 + cell.col * CELL_W, 50 + cell.row * CELL_H
    assert first.cell == ReviewCell(
        image="/data/img1.png",
        row=cell.row,
        col=cell.col,
        box=(x0, y0, x0 + CELL_W, y0 + CELL_H),
        guess=cell.guess,
        confidence=cell.confidence,
        model="gridreader-v1",
        classes=CLASSES,
    )
    assert first.strip_path is not None and first.strip_path.name == f"img1.r{cell.row:03d}.row.png"
    assert first.read_crop() == (tmp_path / "review" / cell.name).read_bytes()
    assert index.by_name[cell.name] == cell.sha256


def test_same_crop_in_two_folders_is_indexed_once(tmp_path: Path) -> None:
    cells = make_review_dir(tmp_path / "a", 12, seed=2)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    index = load_review_dirs([tmp_path / "a", tmp_path / "b"])
    assert len(index.items) == 12
    assert index.duplicates == 12
    assert {it.sha256 for it in index.items} == {c.sha256 for c in cells}
    assert index.by_name == {c.name: c.sha256 for c in cells}


def test_a_name_shared_by_different_crops_is_not_a_key(tmp_path: Path) -> None:
    a = make_review_dir(tmp_path / "a", 4, seed=6)
    b = make_review_dir(tmp_path / "b", 4, seed=7)
    index = load_review_dirs([tmp_path / "a", tmp_path / "b"])
    assert len(index.items) == 8
    assert {c.name for c in a} == {c.name for c in b}
    assert index.by_name == {}


def test_bad_sidecars_are_reported_and_left_out(tmp_path: Path) -> None:
    review = tmp_path / "review"
    cells = make_review_dir(review, 6, seed=3)
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not for the browser")

    def sidecar(i: int) -> Path:
        return review / cells[i].name.replace(".png", ".json")

    def rewrite(i: int, **changes: object) -> None:
        meta = json.loads(sidecar(i).read_text())
        meta.update(changes)
        sidecar(i).write_text(json.dumps(meta))

    rewrite(0, sha256="0" * 64)  # hash does not match the crop
    rewrite(1, crop="../secret.png")  # path traversal
    (review / "link.png").symlink_to(outside)
    rewrite(2, crop="link.png", sha256=hashlib.sha256(outside.read_bytes()).hexdigest())
    rewrite(3, confidence="high")
    sidecar(4).write_text("{not json")
    (review / "summary.json").write_text("{}")  # not a cell sidecar: ignored, not a problem
    index = load_review_dirs([review])
    assert [it.sha256 for it in index.items] == [cells[5].sha256]
    assert len(index.problems) == 5
    assert all(str(review) in p for p in index.problems)


def test_missing_or_empty_review_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_review_dirs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.json").write_text("{}")
    with pytest.raises(DataError, match="no review sidecars"):
        load_review_dirs([tmp_path / "empty"])


def test_crop_changed_after_indexing_is_refused(tmp_path: Path) -> None:
    cells = make_review_dir(tmp_path / "review", 3, seed=4)
    index = load_review_dirs([tmp_path / "review"])
    (tmp_path / "review" / cells[0].name).write_bytes(encode_png(np.zeros((30, 44, 3), np.uint8)))
    with pytest.raises(LabelError, match="changed on disk"):
        index.by_sha[cells[0].sha256].read_crop()


def test_locate_finds_each_crop_in_its_row_strip(tmp_path: Path) -> None:
    cells = make_review_dir(tmp_path / "review", 16, seed=5)
    index = load_review_dirs([tmp_path / "review"])
    for cell in cells:
        item = index.by_sha[cell.sha256]
        strip = item.read_strip()
        assert strip is not None
        spot = locate_crop(item.read_crop(), strip)
        assert spot is not None, cell.name
        assert (spot.x0, spot.x1) == (cell.x_in_strip, cell.x_in_strip + CELL_W)
    # A crop from another row is not in this strip.
    other = index.by_sha[cells[0].sha256].read_strip()
    assert other is not None
    assert locate_crop(index.by_sha[cells[-1].sha256].read_crop(), other) is None
