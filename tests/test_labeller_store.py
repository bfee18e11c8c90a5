"""The SQLite label store: labels, undo, errors and concurrent writers."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from gridreader.classes import parse_classes
from gridreader.errors import LabelError
from labeller.store import CropRecord, LabelStore, describe_classes, normalize_label

CLASSES = parse_classes("0-36")


def record(i: int, *, guess: str = "5", classes: tuple[str, ...] = CLASSES) -> CropRecord:
    """A distinct fake crop (the store checks only that the hash matches the bytes)."""
    png = b"\x89PNG fake crop %d" % i
    return CropRecord(
        sha256=hashlib.sha256(png).hexdigest(),
        png=png,
        path=f"/review/img.r000c{i:03d}.png",
        image="/data/img.png",
        row=0,
        col=i,
        model="gridreader-v1",
        guess=guess,
        confidence=0.5,
        classes=classes,
    )


def test_add_stores_every_field_and_survives_reopening(tmp_path: Path) -> None:
    db = tmp_path / "labels.db"
    store = LabelStore(db)
    crops = [record(i) for i in range(3)]
    assert store.add(crops[0], "017") == "17"
    assert store.add(crops[1], "e") == "empty"
    assert store.add(crops[2], 4) == "4"
    again = LabelStore(db)
    assert again.count() == 3
    assert again.labelled_hashes() == {c.sha256 for c in crops}
    lab = again.get(crops[0].sha256)
    assert lab is not None
    assert (lab.label, lab.png, lab.path, lab.image, lab.row, lab.col) == (
        "17",
        crops[0].png,
        crops[0].path,
        "/data/img.png",
        0,
        0,
    )
    assert (lab.model, lab.guess, lab.confidence) == ("gridreader-v1", "5", 0.5)
    assert lab.labelled_at.startswith("20")
    assert sorted(again.iter_samples()) == sorted(
        [(crops[0].png, "17"), (crops[1].png, "empty"), (crops[2].png, "4")]
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_relabelling_replaces_the_label_and_keeps_one_row(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    crop = record(0)
    store.add(crop, "3")
    store.add(crop, "8")
    assert store.count() == 1
    assert store.labels() == {crop.sha256: "8"}
    assert store.event_count() == 2


@pytest.mark.parametrize("bad", ["37", "-1", "", "x", "1.5", None, True, [3]])
def test_labels_outside_the_classes_are_refused(tmp_path: Path, bad: object) -> None:
    store = LabelStore(tmp_path / "labels.db")
    with pytest.raises(LabelError):
        store.add(record(0), bad)  # type: ignore[arg-type]
    assert store.count() == 0


def test_out_of_class_message_names_the_classes() -> None:
    with pytest.raises(LabelError, match=r"0-36, empty"):
        normalize_label("99", CLASSES)
    assert describe_classes(("0", "1", "2", "7", "9", "10", "empty")) == "0-2, 7, 9-10, empty"
    assert normalize_label(" 07 ", CLASSES) == "7"
    assert normalize_label("-", CLASSES) == "empty"


def test_bytes_that_do_not_match_the_hash_are_refused(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    good = record(0)
    bad = CropRecord(**{**good.__dict__, "png": b"other bytes"})
    with pytest.raises(LabelError, match="do not match"):
        store.add(bad, "3")
    assert store.count() == 0


def test_undo_takes_back_the_clients_latest_label_only(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    a, b, c = record(0), record(1), record(2)
    store.add(a, "1", client="tab-a")
    store.add(b, "2", client="tab-a")
    store.add(c, "3", client="tab-b")
    undone = store.undo(client="tab-a")
    assert [(u.sha256, u.label, u.now) for u in undone] == [(b.sha256, "2", None)]
    assert store.labels() == {a.sha256: "1", c.sha256: "3"}
    store.undo(client="tab-a")
    assert store.undo(client="tab-a") == []
    assert store.labels() == {c.sha256: "3"}


def test_undo_restores_the_label_another_client_gave(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    crop = record(0)
    store.add(crop, "4", client="tab-a")
    store.add(crop, "9", client="tab-b")
    undone = store.undo(client="tab-b")
    assert undone[0].now == "4"
    assert store.labels() == {crop.sha256: "4"}
    # tab-a's label was overwritten and then restored: undoing it empties the crop.
    store.undo(client="tab-a")
    assert store.count() == 0


def test_a_grid_confirmation_is_one_undo_step(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    crops = [record(i) for i in range(5)]
    store.add(crops[0], "1", client="t")
    store.add_many(crops[1:], "7", client="t")
    assert store.count() == 5
    assert len(store.undo(client="t")) == 4
    assert store.labels() == {crops[0].sha256: "1"}


def test_a_batch_with_one_bad_crop_stores_nothing(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    narrow = parse_classes("0-5")
    crops = [record(0), record(1, classes=narrow)]
    with pytest.raises(LabelError, match="not among"):
        store.add_many(crops, "20")
    assert store.count() == 0


def test_a_file_that_is_not_sqlite_is_refused_by_name(tmp_path: Path) -> None:
    bogus = tmp_path / "labels.db"
    bogus.write_bytes(b"this is not a database at all, just some text " * 100)
    with pytest.raises(LabelError, match=r"labels\.db.*not a SQLite label store"):
        LabelStore(bogus)


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(LabelError, match=r"other\.db.*not a label store"):
        LabelStore(other)


def test_missing_store_with_create_false_and_a_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="no such label store"):
        LabelStore(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(LabelError, match="is a folder"):
        LabelStore(tmp_path)


def test_a_store_locked_beyond_the_timeout_is_an_error(tmp_path: Path) -> None:
    db = tmp_path / "labels.db"
    store = LabelStore(db, timeout=0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LabelError, match=r"labels\.db.*locked"):
            store.add(record(0), "1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.add(record(0), "1")
    assert store.count() == 1


def test_concurrent_threads_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "labels.db"
    LabelStore(db)
    crops = [record(i) for i in range(400)]
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        store = LabelStore(db)  # each writer its own handle, as separate processes would
        try:
            for i, crop in enumerate(crops):
                # Each crop is written by two of the four workers: overlapping upserts.
                if i % 4 in (worker, (worker + 1) % 4):
                    store.add(crop, str(i % 37), client=f"w{worker}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = LabelStore(db)
    assert store.count() == 400
    assert store.event_count() == 800
    assert store.labels() == {c.sha256: str(i % 37) for i, c in enumerate(crops)}


_WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from gridreader.classes import parse_classes
    from labeller.store import CropRecord, LabelStore
    db, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = LabelStore(db)
    for i in range(n):
        png = b"proc %d crop %d" % (worker, i)
        crop = CropRecord(hashlib.sha256(png).hexdigest(), png, "p", "img", 0, i, "m", "1", 0.5,
                          parse_classes("0-36"))
        store.add(crop, str(i % 37), client="proc%d" % worker)
    """
)


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "labels.db"
    LabelStore(db)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(w), "250"]) for w in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = LabelStore(db)
    assert store.count() == 500
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
