"""The review folder, ``OUT/review/`` (CONVENTIONS.md): per uncertain cell of image STEM,

- ``STEM.rRRRcCCC.png``: the cell crop, exactly what the classifier saw;
- ``STEM.rRRR.row.png``: the cell's table row, for context (shared by the row's cells);
- ``STEM.rRRRcCCC.json``: the sidecar: the files' names, where the cell is and
  what the model said (:class:`ReviewCell`), and the crop's sha256.

Batch makes it (:func:`review_cell_files`, :func:`write_review_files`); nightly counts it and the labeller
indexes it (:func:`sidecar_stem`, :func:`parse_sidecar`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gridreader.errors import DataError
from gridreader.imageio import write_atomic

REVIEW_DIR = "review"
SIDECAR_PATTERN = "STEM.rRRRcCCC.json"
MAX_SIDECAR_BYTES = 1024 * 1024

# Other JSON in the folder is not a cell sidecar.
_SIDECAR_RE = re.compile(r"(?P<stem>.+)\.r\d{3,}c\d{3,}\.json")
_CLASS_RE = re.compile(r"\d{1,4}|empty")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ReviewCell:
    """What a sidecar says about one cell (less its file names and hash)."""

    image: str
    row: int
    col: int
    box: tuple[int, int, int, int]
    guess: str
    confidence: float
    model: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Sidecar:
    """A parsed and checked sidecar: the cell and the names of its files."""

    cell: ReviewCell
    crop: str
    row_strip: str | None
    sha256: str


def crop_name(stem: str, row: int, col: int) -> str:
    """``STEM.rRRRcCCC.png``."""
    return f"{stem}.r{row:03d}c{col:03d}.png"


def strip_name(stem: str, row: int) -> str:
    """``STEM.rRRR.row.png``."""
    return f"{stem}.r{row:03d}.row.png"


def sidecar_name(stem: str, row: int, col: int) -> str:
    """``STEM.rRRRcCCC.json``."""
    return f"{stem}.r{row:03d}c{col:03d}.json"


def sidecar_stem(name: str) -> str | None:
    """The image stem of a sidecar's file name, or ``None`` if ``name`` is none."""
    m = _SIDECAR_RE.fullmatch(name)
    return m.group("stem") if m else None


def image_files(review_dir: Path, stem: str) -> list[Path]:
    """Every review file of image ``stem`` (crops, strips, sidecars) in ``review_dir``."""
    try:
        return [p for p in review_dir.iterdir() if p.name.startswith(f"{stem}.r")]
    except FileNotFoundError:
        return []


def review_cell_files(
    stem: str, cell: ReviewCell, crop_png: bytes, strip_png: bytes | None
) -> list[tuple[str, bytes]]:
    """One cell's review files as ``(name, bytes)``: its row's strip when
    ``strip_png`` is given (the first of the row's cells brings it), its crop
    and its sidecar, in that order (a reader may produce them far from the folder)."""
    files: list[tuple[str, bytes]] = []
    if strip_png is not None:
        files.append((strip_name(stem, cell.row), strip_png))
    files.append((crop_name(stem, cell.row, cell.col), crop_png))
    meta = {
        "crop": crop_name(stem, cell.row, cell.col),
        "row_strip": strip_name(stem, cell.row),
        "image": cell.image,
        "row": cell.row,
        "col": cell.col,
        "box": list(cell.box),
        "guess": cell.guess,
        "confidence": round(cell.confidence, 4),
        "model": cell.model,
        "classes": list(cell.classes),
        "sha256": hashlib.sha256(crop_png).hexdigest(),
    }
    files.append((sidecar_name(stem, cell.row, cell.col), (json.dumps(meta) + "\n").encode()))
    return files


def write_review_files(review_dir: Path, stem: str, files: Sequence[tuple[str, bytes]]) -> None:
    """Replace image ``stem``'s review files with ``files`` (each written atomically;
    a sidecar comes after the crop it names, so a reader never sees it alone)."""
    for old in image_files(review_dir, stem):
        old.unlink(missing_ok=True)
    for name, data in files:
        write_atomic(review_dir / name, data)


def is_sidecar_file(name: str) -> bool:
    """Whether a review file's name is a cell sidecar's."""
    return sidecar_stem(name) is not None


def parse_sidecar(sidecar: Path) -> Sidecar:
    """Read and check one sidecar's fields (not the files it names).

    Raises:
        DataError: unreadable, too large, not a JSON object, or a field is
            missing or wrong; the message names the file.
    """
    try:
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            raise DataError(f"{sidecar}: sidecar is over {MAX_SIDECAR_BYTES} bytes")
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{sidecar}: unreadable sidecar ({e})") from e
    if not isinstance(meta, dict):
        raise DataError(f"{sidecar}: sidecar is not a JSON object")

    crop = _get(meta, "crop", str, sidecar)
    strip = meta.get("row_strip")
    sha = _get(meta, "sha256", str, sidecar).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise DataError(f"{sidecar}: 'sha256' is not a sha256 hex digest")
    classes_raw = _get(meta, "classes", list, sidecar)
    good = all(isinstance(c, str) and _CLASS_RE.fullmatch(c) for c in classes_raw)
    if not classes_raw or not good:
        raise DataError(f"{sidecar}: 'classes' must be a list of integers-as-text and 'empty'")
    box_raw = _get(meta, "box", list, sidecar)
    if len(box_raw) != 4 or not all(type(v) is int for v in box_raw):
        raise DataError(f"{sidecar}: 'box' must be four integers [x0, y0, x1, y1]")
    conf_raw = meta.get("confidence")
    if not isinstance(conf_raw, int | float) or isinstance(conf_raw, bool):
        raise DataError(f"{sidecar}: key 'confidence' is missing or has the wrong type")
    confidence = float(conf_raw)
    if not 0.0 <= confidence <= 1.0:
        raise DataError(f"{sidecar}: 'confidence' {confidence} is outside [0, 1]")
    cell = ReviewCell(
        image=_get(meta, "image", str, sidecar),
        row=_get(meta, "row", int, sidecar),
        col=_get(meta, "col", int, sidecar),
        box=(int(box_raw[0]), int(box_raw[1]), int(box_raw[2]), int(box_raw[3])),
        guess=_get(meta, "guess", str, sidecar),
        confidence=confidence,
        model=_get(meta, "model", str, sidecar),
        classes=tuple(str(c) for c in classes_raw),
    )
    return Sidecar(cell, crop, strip if isinstance(strip, str) and strip else None, sha)


def _get(meta: dict[str, object], key: str, kind: type[_T], sidecar: Path) -> _T:
    """``meta[key]`` if it has exactly type ``kind`` (so ``True`` is not an int)."""
    value = meta.get(key)
    if type(value) is not kind:
        raise DataError(f"{sidecar}: key {key!r} is missing or has the wrong type")
    return value
