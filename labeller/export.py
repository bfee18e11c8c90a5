"""Exporting the label store as a CSV or as one folder per class.

The export is built in a hidden folder beside ``--out`` and renamed into place,
so ``--out`` always holds one complete export: never a half-written one, and
never a crop left over under its old label by an earlier export.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from gridreader.errors import LabelError, OutputError
from labeller.store import Label, LabelStore, is_sha256

EXPORT_FORMATS = ("csv", "folders")
MARKER = ".gridreader-labels-export"
_LABEL_RE = re.compile(r"[0-9]{1,6}|empty")


def export_labels(store: LabelStore, out: str | Path, fmt: str) -> int:
    """Write every stored label under ``out``; return how many.

    Args:
        store: the label store.
        out: the export folder; replaced if it holds an earlier export.
        fmt: ``"csv"`` (``out/labels.csv`` with ``path,label`` and crops under
            ``out/crops/``) or ``"folders"`` (``out/<label>/<sha256>.png``).

    Raises:
        LabelError: unknown format, or a stored row is damaged.
        OutputError: ``out`` is a non-empty folder that is not an earlier
            export, or cannot be written.
    """
    if fmt not in EXPORT_FORMATS:
        raise LabelError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    target = Path(out).absolute()
    _check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as e:
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from e
    try:
        count = _write_csv(store, stage) if fmt == "csv" else _write_folders(store, stage)
        marker = {"db": str(store.path), "format": fmt, "labels": count}
        (stage / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        _swap_in(stage, target)
    except OSError as e:
        shutil.rmtree(stage, ignore_errors=True)
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from e
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return count


def _check_target(target: Path) -> None:
    if not target.exists():
        return
    if not target.is_dir() or target.is_symlink():
        raise OutputError(f"{target}: exists and is not a folder")
    if any(target.iterdir()) and not (target / MARKER).is_file():
        raise OutputError(
            f"{target}: folder is not empty and holds no earlier label export; "
            "choose an empty or new --out"
        )


def _swap_in(stage: Path, target: Path) -> None:
    if not target.exists():
        os.replace(stage, target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(target, old)
    os.replace(stage, target)
    shutil.rmtree(old, ignore_errors=True)


def _checked(lab: Label) -> Label:
    """A stored row fit to become a file name and a training sample."""
    if not is_sha256(lab.sha256) or hashlib.sha256(lab.png).hexdigest() != lab.sha256:
        raise LabelError(f"label store row {lab.sha256[:16]!r}: crop bytes do not match sha256")
    if not _LABEL_RE.fullmatch(lab.label):
        raise LabelError(f"label store row {lab.sha256[:16]}: label {lab.label!r} is malformed")
    return lab


def _write_csv(store: LabelStore, stage: Path) -> int:
    crops = stage / "crops"
    crops.mkdir()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "label"])
    count = 0
    for lab in map(_checked, store.iter_labels()):
        (crops / f"{lab.sha256}.png").write_bytes(lab.png)
        writer.writerow([f"crops/{lab.sha256}.png", lab.label])
        count += 1
    (stage / "labels.csv").write_text(text.getvalue(), encoding="utf-8")
    return count


def _write_folders(store: LabelStore, stage: Path) -> int:
    count = 0
    for lab in map(_checked, store.iter_labels()):
        folder = stage / lab.label
        folder.mkdir(exist_ok=True)
        (folder / f"{lab.sha256}.png").write_bytes(lab.png)
        count += 1
    return count
