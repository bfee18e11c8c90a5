"""``gridreader labels export`` and the ``label`` verb's failures, through cli.main."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import pytest
from test_labeller_review import Cell, make_review_dir

from gridreader.cli import main
from labeller.review import load_review_dirs
from labeller.store import LabelStore


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, list[Cell]]:
    """A store with 9 labelled crops (their true values), and the cells."""
    cells = make_review_dir(tmp_path / "review", 9, seed=21)
    index = load_review_dirs([tmp_path / "review"])
    db = tmp_path / "labels.db"
    store = LabelStore(db)
    for c in cells:
        store.add(index.by_sha[c.sha256].to_record(), c.value)
    return db, cells


def test_export_csv_writes_labels_and_crops(
    tmp_path: Path, labelled: tuple[Path, list[Cell]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, cells = labelled
    out = tmp_path / "export"
    assert main(["labels", "export", "--db", str(db), "--format", "csv", "--out", str(out)]) == 0
    assert "9 labels" in capsys.readouterr().out
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "label"]
    assert sorted((r["path"], r["label"]) for r in rows) == sorted(
        (f"crops/{c.sha256}.png", c.value) for c in cells
    )
    for c in cells:
        assert (out / "crops" / f"{c.sha256}.png").read_bytes() == (
            tmp_path / "review" / c.name
        ).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export")]


def test_export_folders_and_reexport_replaces_stale_files(
    tmp_path: Path, labelled: tuple[Path, list[Cell]]
) -> None:
    db, cells = labelled
    out = tmp_path / "by-class"
    args = ["labels", "export", "--db", str(db), "--format", "folders", "--out", str(out)]
    assert main(args) == 0
    files = {str(p.relative_to(out)) for p in out.rglob("*.png")}
    assert files == {f"{c.value}/{c.sha256}.png" for c in cells}
    # Relabel one crop: the next export must not keep it under its old class.
    index = load_review_dirs([tmp_path / "review"])
    moved = next(c for c in cells if c.value != "36")
    LabelStore(db).add(index.by_sha[moved.sha256].to_record(), "36")
    assert main(args) == 0
    assert not (out / moved.value / f"{moved.sha256}.png").exists()
    assert (out / "36" / f"{moved.sha256}.png").is_file()
    assert len(list(out.rglob("*.png"))) == 9


def test_export_refuses_a_folder_that_is_not_an_earlier_export(
    tmp_path: Path, labelled: tuple[Path, list[Cell]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = labelled
    out = tmp_path / "documents"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    code = main(["labels", "export", "--db", str(db), "--format", "csv", "--out", str(out)])
    assert code == 3
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]


def test_export_of_a_missing_store_fails_without_creating_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "nope.db"
    code = main(["labels", "export", "--db", str(db), "--format", "csv", "--out", str(tmp_path)])
    assert code == 3
    assert "nope.db: no such label store" in capsys.readouterr().err
    assert not db.exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["labels"]) == 2
    assert main(["labels", "export", "--db", "x.db", "--format", "zip", "--out", "o"]) == 2
    assert main(["label", str(tmp_path), "--port", "70000"]) == 2
    assert main(["label"]) == 2


def test_label_fails_cleanly_on_a_missing_folder_or_busy_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["label", str(tmp_path / "missing"), "--db", str(tmp_path / "l.db")]) == 3
    assert "review folder does not exist" in capsys.readouterr().err
    make_review_dir(tmp_path / "review", 2, seed=22)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(
            ["label", str(tmp_path / "review"), "--db", str(tmp_path / "l.db"), "--port", str(port)]
        )
    assert code == 3
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
