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
    Shot,
    build_stem,
    complete_shots,
    parse_stem,
    remove_target_shots,
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
