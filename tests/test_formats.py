"""Each on-disk format's owner reads back what it writes, and only its own names."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridreader.errors import DataError, OutputError
from gridreader.formats.records import read_record, record_path, report_line, write_record
from gridreader.formats.report import read_report, write_report
from gridreader.formats.review import (
    ReviewCell,
    crop_name,
    image_files,
    parse_sidecar,
    review_cell_files,
    sidecar_name,
    sidecar_stem,
    strip_name,
    write_review_files,
)
from gridreader.formats.shots import (
    PageCells,
    Shot,
    ShotSidecar,
    build_stem,
    complete_shots,
    parse_stem,
    read_shot_layout,
    remove_target_shots,
    write_shot_files,
)


def test_review_cell_round_trip(tmp_path: Path) -> None:
    cell = ReviewCell("/in/a.b.png", 3, 12, (1, 2, 30, 40), "17", 0.123456, "m1", ("17", "empty"))
    write_review_files(tmp_path, "a.b", review_cell_files("a.b", cell, b"crop", b"strip"))
    # The names of CONVENTIONS.md, written out by hand.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.b.r003.row.png",
        "a.b.r003c012.json",
        "a.b.r003c012.png",
    ]
    assert (tmp_path / "a.b.r003.row.png").read_bytes() == b"strip"
    meta = parse_sidecar(tmp_path / "a.b.r003c012.json")
    assert meta.crop == crop_name("a.b", 3, 12) == "a.b.r003c012.png"
    assert meta.row_strip == strip_name("a.b", 3) == "a.b.r003.row.png"
    assert sidecar_name("a.b", 3, 12) == "a.b.r003c012.json"
    assert meta.sha256 == hashlib.sha256(b"crop").hexdigest()
    assert meta.cell == ReviewCell(
        "/in/a.b.png", 3, 12, (1, 2, 30, 40), "17", 0.1235, "m1", ("17", "empty")
    )
    # Another cell of the same row brings no strip; the first one's stays.
    second = ReviewCell(**{**cell.__dict__, "col": 13})
    files = review_cell_files("a.b", cell, b"crop", b"strip")
    files += review_cell_files("a.b", second, b"c2", None)
    write_review_files(tmp_path, "a.b", files)
    assert len(image_files(tmp_path, "a.b")) == 5
    # Writing an image's files again replaces them all: stale cells go.
    write_review_files(tmp_path, "a.b", review_cell_files("a.b", second, b"c2", b"s2"))
    assert sorted(p.name for p in image_files(tmp_path, "a.b")) == [
        "a.b.r003.row.png",
        "a.b.r003c013.json",
        "a.b.r003c013.png",
    ]
    assert image_files(tmp_path, "a") == []


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("img1.r003c012.json", "img1"),
        ("a.b.r1000c0001.json", "a.b"),
        ("img1.r003c012.png", None),
        ("img1.r003.row.png", None),
        ("img1.r03c012.json", None),
        ("report.json", None),
        (".r003c012.json", None),
    ],
)
def test_sidecar_names(name: str, stem: str | None) -> None:
    assert sidecar_stem(name) == stem


def test_a_bad_sidecar_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.r000c000.json"
    bad.write_text(json.dumps({"crop": "x.png", "sha256": "0" * 64, "classes": ["1", "empty"]}))
    with pytest.raises(DataError, match=r"x\.r000c000\.json: key 'box' is missing"):
        parse_sidecar(bad)


def test_records_and_report(tmp_path: Path) -> None:
    rec = {"image": "/in/a.png", "status": "ok", "cells": []}
    write_record(tmp_path, "a", rec, {"image_size": 5})
    assert record_path(tmp_path, "a") == tmp_path / ".gridreader" / "a.json"
    back = read_record(tmp_path, "a")
    assert back == {**rec, "source": {"image_size": 5}}
    assert report_line(back) == rec
    assert read_record(tmp_path, "missing") is None
    record_path(tmp_path, "bad").write_text("[1, 2]\n")
    with pytest.raises(OutputError, match="not a valid record"):
        read_record(tmp_path, "bad")
    assert read_report(tmp_path, missing_ok=True) == []
    with pytest.raises(OutputError, match=r"report\.jsonl: cannot read"):
        read_report(tmp_path)
    write_report(tmp_path, [rec, {"image": "/in/b.png"}])
    assert (tmp_path / "report.jsonl").read_text().count("\n") == 2
    assert read_report(tmp_path) == [rec, {"image": "/in/b.png"}]


def test_shot_names(tmp_path: Path) -> None:
    moment = datetime(2024, 5, 1, 7, 8, 9, tzinfo=UTC)
    assert parse_stem(build_stem("t-1", moment, None)) == Shot("t-1", "20240501T070809Z", None)
    assert parse_stem(build_stem("t_2", moment, 3)) == Shot("t_2", "20240501T070809Z", 3)
    assert parse_stem("t-1-20240501T0708Z") is None
    for stem in ("t-1-20240501T070809Z", "t-1-20240501T070809Z-p1", "u-20240501T070809Z"):
        (tmp_path / f"{stem}.png").write_bytes(b"png")
    (tmp_path / "t-1-20240501T070809Z.json").write_text("{}")  # only this one is complete
    assert list(complete_shots(tmp_path)) == [Shot("t-1", "20240501T070809Z", None)]
    removed = remove_target_shots(tmp_path, "t-1")
    assert sorted(removed) == ["t-1-20240501T070809Z"] * 2 + ["t-1-20240501T070809Z-p1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u-20240501T070809Z.png"]


def test_shot_sidecar_round_trip(tmp_path: Path) -> None:
    boxes = ((1.0, 2.0, 11.5, 12.0), (11.5, 2.0, 21.0, 12.0))
    sidecar = ShotSidecar(
        target="t-1",
        url="http://127.0.0.1:8000/t.html",
        selector="#t",
        page=None,
        time="2024-05-01T07:08:09Z",
        scale=1.25,
        viewport=(1280, 800),
        browser="Chromium 126",
        sha256=hashlib.sha256(b"png").hexdigest(),
        box=(8, 10, 30, 20),
        image_size=(28, 13),
        fonts="loaded",
        shape=(1, 2),
        cells=PageCells(rows=1, cols=2, header_rows=1, boxes=(boxes,)),
    )
    png = write_shot_files(tmp_path, "t-1-20240501T070809Z", b"png", sidecar)
    assert png == tmp_path / "t-1-20240501T070809Z.png" and png.read_bytes() == b"png"
    # The fields, in order, as capture has always written them.
    text = (tmp_path / "t-1-20240501T070809Z.json").read_text()
    assert text.endswith("}\n") and '\n  "target": "t-1",\n' in text
    assert list(json.loads(text)) == [
        "target",
        "url",
        "selector",
        "page",
        "time",
        "scale",
        "viewport",
        "browser",
        "sha256",
        "box",
        "image_size",
        "fonts",
        "shape",
        "cells",
    ]
    assert json.loads(text)["cells"] == {
        "rows": 1,
        "cols": 2,
        "header_rows": 1,
        "boxes": [[list(b) for b in boxes]],
    }
    layout, problem = read_shot_layout(png)
    assert problem == "" and layout is not None
    assert layout.made_for((28, 13)) and not layout.made_for((13, 28))
    assert (layout.made_for_text(), layout.shape) == ("28x13", (1, 2))
    got, why = layout.cell_boxes()
    assert why == "" and got is not None and got.tolist() == [[list(b) for b in boxes]]


def test_shot_layout_of_other_or_broken_json(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    assert read_shot_layout(png) == (None, "")  # no sidecar
    (tmp_path / "a.json").write_text('{"title": "notes"}')
    assert read_shot_layout(png) == (None, "")  # another program's JSON
    (tmp_path / "a.json").write_text("{not json")
    layout, why = read_shot_layout(png)
    assert layout is None and why.startswith("Expecting property name")
    (tmp_path / "a.json").write_text('{"image_size": "big", "shape": [2, "x"], "cells": []}')
    layout, why = read_shot_layout(png)
    assert why == "" and layout is not None and layout.shape is None
    assert layout.made_for_text() == "'big'" and layout.cell_boxes() == (None, "no boxes")
