"""Disk full during batch: the error is one clear line, no output is half-written,
and the next run loses nothing.

ENOSPC is injected at each step of an atomic write (the data, the fsync, the
rename) and for both a table and a review crop, and once while an earlier
run's complete outputs are being redone.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

import gridreader.imageio as imageio
from gridreader.cli import main

N_IMAGES = 5
REVIEW_BELOW = "0.03"  # the untrained model's confidences straddle it


def no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class HalfWriter:
    """A file that takes half of what is written, then reports a full disk."""

    def __init__(self, f: IO[Any]) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise no_space()

    def __enter__(self) -> HalfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def fail_write(monkeypatch: pytest.MonkeyPatch, hit: Callable[[str], bool]) -> None:
    real_open = builtins.open

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, mode, *args, **kwargs)
        return HalfWriter(f) if "w" in mode and hit(Path(file).name) else f

    # atomic_path and write_atomic look ``open`` up in their module first.
    monkeypatch.setattr(imageio, "open", fake_open, raising=False)


def fail_fsync(monkeypatch: pytest.MonkeyPatch, hit: Callable[[str], bool]) -> None:
    real_fsync = os.fsync

    def fake_fsync(fd: int) -> None:
        if hit(Path(os.readlink(f"/proc/self/fd/{fd}")).name):
            raise no_space()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fake_fsync)


def fail_rename(monkeypatch: pytest.MonkeyPatch, hit: Callable[[str], bool]) -> None:
    real_replace = os.replace

    def fake_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if hit(f".{Path(dst).name}.x.tmp"):
            raise no_space()
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", fake_replace)


def temp_of(name: str) -> Callable[[str], bool]:
    """Whether a temp file name (``.NAME.XXXX.tmp``) is the one for ``name``."""
    return lambda tmp: tmp.startswith(f".{name}.") and tmp.endswith(".tmp")


def first_review_crop(stem: str) -> Callable[[str], bool]:
    return lambda tmp: tmp.startswith(f".{stem}.r") and ".png." in tmp and tmp.endswith(".tmp")


@pytest.fixture(scope="module")
def images(table_image_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("diskfull-in")
    for p in sorted(table_image_dir.glob("*.png"))[:N_IMAGES]:
        shutil.copy(p, folder / p.name)
    return folder


def batch_args(images: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [
        "batch",
        str(images),
        "--out",
        str(out),
        "--model",
        str(model),
        "--review-below",
        REVIEW_BELOW,
        *extra,
    ]


@pytest.fixture(scope="module")
def reference(
    images: Path, untrained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("diskfull-ref") / "out"
    assert main(batch_args(images, out, untrained_model_dir)) == 0
    assert any((out / "review").glob("t02.r*.png")), "the review-crop case needs review items"
    return out


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def check_nothing_half_written(out: Path, reference: Path) -> None:
    """Every output is absent or exactly the reference's; the report holds whole,
    distinct records; no temp file is left."""
    assert sorted(out.rglob("*.tmp")) == []
    expected = files_under(reference)
    for name, data in files_under(out).items():
        if name == "report.jsonl":
            lines = data.decode().splitlines(keepends=True)
            images = [json.loads(line)["image"] for line in lines]
            assert len(images) == len(set(images)), f"duplicate report records: {images}"
            clean = set(expected[name].decode().splitlines(keepends=True))
            assert set(lines) <= clean, "a report record differs from a clean run's"
        else:
            assert data == expected[name], f"{name} differs from a clean run"


CASES = {
    "table data": (fail_write, temp_of("t03.csv"), "t03.csv"),
    "table fsync": (fail_fsync, temp_of("t03.csv"), "t03.csv"),
    "table rename": (fail_rename, temp_of("t03.csv"), "t03.csv"),
    "review crop data": (fail_write, first_review_crop("t02"), "review/t02.r"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_disk_full_gives_one_line_naming_the_file_and_no_partial_output(
    case: str,
    images: Path,
    reference: Path,
    untrained_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inject, hit, named = CASES[case]
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        inject(m, hit)
        status = main(batch_args(images, out, untrained_model_dir))
    err = capsys.readouterr().err
    assert status == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gridreader batch: error: {out}/{named}"), lines[0]
    assert "No space left on device" in lines[0]
    check_nothing_half_written(out, reference)
    assert not (out / "t03.csv").exists()

    # Space is back: the next run finishes the job, identical to a clean run.
    assert main(batch_args(images, out, untrained_model_dir)) == 0
    assert files_under(out) == files_under(reference)


def test_disk_full_while_redoing_keeps_the_earlier_complete_outputs(
    images: Path,
    reference: Path,
    untrained_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    with monkeypatch.context() as m:
        fail_write(m, temp_of("t03.csv"))
        status = main(batch_args(images, out, untrained_model_dir, "--force"))
    err = capsys.readouterr().err.strip()
    assert status == 3 and err.count("\n") == 0 and f"{out}/t03.csv" in err, err
    check_nothing_half_written(out, reference)
    # The old table is still there, whole: a failed rewrite never truncates it.
    assert (out / "t03.csv").read_bytes() == (reference / "t03.csv").read_bytes()
    assert files_under(out) == files_under(reference)
