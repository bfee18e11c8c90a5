"""Capture sidecars as ``batch`` reads them (no browser): the target's shape hint,
the page's cell boxes, and sidecars that are ignored (with a warning, or
silently when the JSON is not a capture sidecar)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from test_grid import draw_table, table_values

from capture.config import parse_config
from capture.run import cells_in_image
from gridreader.cli import main
from gridreader.errors import ConfigError
from gridreader.sidecar import read_page_hints

SIZE = (400, 300)


def _write(tmp_path: Path, data: Any) -> Path:
    image = tmp_path / "shot.png"
    (tmp_path / "shot.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return image


def _lattice(rows: int, cols: int, x0: float = 10.5, y0: float = 20.25) -> list[Any]:
    return [
        [[x0 + 50 * c, y0 + 30 * r, x0 + 50 * (c + 1), y0 + 30 * (r + 1)] for c in range(cols)]
        for r in range(rows)
    ]


def test_no_sidecar_no_hints(tmp_path: Path) -> None:
    hints = read_page_hints(tmp_path / "shot.png", SIZE, (3, 4))
    assert (hints.grid, hints.shape, hints.warnings) == (None, (3, 4), ())


def test_cells_give_the_grid(tmp_path: Path) -> None:
    cells = {"rows": 3, "cols": 4, "header_rows": 1, "boxes": _lattice(3, 4)}
    image = _write(tmp_path, {"image_size": list(SIZE), "cells": cells})
    hints = read_page_hints(image, SIZE, None)
    assert hints.grid is not None and hints.warnings == ()
    assert hints.grid.shape == (3, 4) and hints.grid.style == "page"
    assert hints.grid.col_edges == (10.5, 60.5, 110.5, 160.5, 210.5)
    assert hints.grid.row_edges == (20.25, 50.25, 80.25, 110.25)


def test_spaced_cells_meet_halfway(tmp_path: Path) -> None:
    # border-spacing: 4 px between cells; each edge runs through the middle.
    boxes = [
        [[10 + 54 * c, 10 + 34 * r, 60 + 54 * c, 40 + 34 * r] for c in range(2)] for r in range(2)
    ]
    image = _write(tmp_path, {"image_size": list(SIZE), "cells": {"boxes": boxes}})
    grid = read_page_hints(image, SIZE, None).grid
    assert grid is not None
    assert grid.col_edges == (10.0, 62.0, 114.0) and grid.row_edges == (10.0, 42.0, 74.0)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("{not json", "unreadable sidecar ignored"),
        (
            {"image_size": [401, 300], "cells": None},
            "made for a 401x300 image, shot.png is 400x300",
        ),
        ({"image_size": list(SIZE), "cells": {"boxes": [[[0, 0, 10]]]}}, "cell boxes ignored"),
        (
            {"image_size": list(SIZE), "cells": {"boxes": [[[0, 0, 10, 10], [10, 2, 20, 10]]]}},
            "not level",
        ),
        (
            {"image_size": list(SIZE), "cells": {"boxes": _lattice(2, 2, x0=380)}},
            "outside the image",
        ),
    ],
    ids=["bad-json", "other-size", "bad-boxes", "uneven-row", "outside"],
)
def test_bad_sidecars_are_ignored_with_one_line(tmp_path: Path, data: Any, words: str) -> None:
    image = _write(tmp_path, data)
    hints = read_page_hints(image, SIZE, None)
    assert hints.grid is None and len(hints.warnings) == 1
    (line,) = hints.warnings
    assert "\n" not in line and str(tmp_path / "shot.json") in line and words in line


def test_other_json_is_not_a_sidecar(tmp_path: Path) -> None:
    image = _write(tmp_path, {"title": "my notes"})
    assert read_page_hints(image, SIZE, None) == read_page_hints(tmp_path / "x.png", SIZE, None)


def test_shape_hint_wins_over_cells_of_another_shape(tmp_path: Path) -> None:
    cells = {"boxes": _lattice(3, 4)}
    image = _write(tmp_path, {"image_size": list(SIZE), "shape": [3, 4], "cells": cells})
    hints = read_page_hints(image, SIZE, (3, 5))
    assert hints.grid is None and hints.shape == (3, 5)
    assert "table is 3x4, not 3x5" in hints.warnings[0]
    assert read_page_hints(image, SIZE, None).shape == (3, 4)


def _empty_last_col(seed: int) -> list[list[int | None]]:
    values = table_values(seed, 6, 7)
    return [[*row[:-1], None] for row in values]


def test_batch_takes_the_targets_shape_from_the_sidecar(
    tmp_path: Path, default_classifier: object
) -> None:
    """A capture target's ``shape`` reaches ``batch`` through the sidecar."""
    src = tmp_path / "in"
    src.mkdir()
    values = _empty_last_col(201)
    image, _ = draw_table(values, rules="none", cell=(56, 30))
    Image.fromarray(image).save(src / "a.png")
    Image.fromarray(image).save(src / "b.png")
    h, w = image.shape[:2]
    (src / "a.json").write_text(json.dumps({"image_size": [w, h], "shape": [6, 7], "cells": None}))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["batch", str(src), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert code == 0, err.getvalue()
    a = list(csv.reader((tmp_path / "out" / "a.csv").open()))
    b = list(csv.reader((tmp_path / "out" / "b.csv").open()))
    assert (len(a), len(a[0])) == (6, 7)
    assert len(b[0]) != 7, "without a hint the empty column is invisible"


def test_config_shape(tmp_path: Path) -> None:
    target = {"name": "t", "url": "http://127.0.0.1:9/x", "table": "#t"}
    config = parse_config({"target": [dict(target, shape="8x15")]}, "c.toml")
    assert config.targets[0].shape == (8, 15)
    assert parse_config({"target": [target]}, "c.toml").targets[0].shape is None
    for bad in ("8-15", 815, "0x3"):
        with pytest.raises(ConfigError, match=r"^c\.toml: target\[0\]\.shape: "):
            parse_config({"target": [dict(target, shape=bad)]}, "c.toml")


def _page_cells(rows: int, cols: int, **change: Any) -> dict[str, Any]:
    """Cells as the browser reports them: CSS px of the page, spans 1."""
    cells = [
        [[100 + 40 * c, 50 + 20 * r, 140 + 40 * c, 70 + 20 * r, 1, 1] for c in range(cols)]
        for r in range(rows)
    ]
    return {"header_rows": 1, "header_inside": False, "rows": cells, **change}


def test_page_cells_become_image_pixels() -> None:
    got = cells_in_image(_page_cells(2, 3), (90, 20, 230, 100), 1.25, (175, 100))
    assert got is not None
    assert (got.rows, got.cols, got.header_rows) == (2, 3, 1)
    # (100 - 90) * 1.25 = 12.5, (50 - 20) * 1.25 = 37.5, ...
    assert got.boxes[0][0] == (12.5, 37.5, 62.5, 62.5)
    assert got.boxes[1][2] == (112.5, 62.5, 162.5, 87.5)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {"rows": []},
        _page_cells(2, 3, header_inside=True),
        {"rows": [[[0, 0, 10, 10, 2, 1]], [[0, 10, 10, 20, 1, 1]]]},
        {"rows": [[[0, 0, 10, 10, 1, 1], [10, 0, 20, 10, 1, 1]], [[0, 10, 10, 20, 1, 1]]]},
        {"rows": [[[0, 0, 10, 10, 1, 1], [10, 0, 10, 10, 1, 1]]]},
        _page_cells(2, 9),
    ],
    ids=["none", "no-rows", "header-inside", "span", "uneven", "hidden", "beyond"],
)
def test_page_cells_not_recorded(raw: dict[str, Any] | None) -> None:
    assert cells_in_image(raw, (0, 0, 400, 300), 1.0, (400, 300)) is None
