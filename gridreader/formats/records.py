"""Batch's per-image records, ``OUT/.gridreader/STEM.json``.

One per image: its report line (:func:`gridreader.formats.report.image_record`)
plus ``source``, what the outputs were made from (the image's size and mtime,
the model's name and mtime), or ``null`` when that could not be read. A re-run
skips an image whose record matches; the report is rebuilt from the records;
nightly counts the day's results from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gridreader.errors import OutputError
from gridreader.imageio import write_atomic

RECORDS_DIR = ".gridreader"


def record_path(out_dir: Path, stem: str) -> Path:
    """Where image ``stem``'s record lives."""
    return out_dir / RECORDS_DIR / f"{stem}.json"


def write_record(
    out_dir: Path, stem: str, record: dict[str, Any], source: dict[str, Any] | None
) -> None:
    """Write image ``stem``'s record: its report line and its ``source``."""
    write_atomic(record_path(out_dir, stem), json.dumps(dict(record, source=source)) + "\n")


def read_record(out_dir: Path, stem: str) -> dict[str, Any] | None:
    """Image ``stem``'s record, or ``None`` if it has none.

    Raises:
        OutputError: the record cannot be read or is not a JSON object.
    """
    path = record_path(out_dir, stem)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise OutputError(f"{path}: cannot read ({e.strerror or e})") from e
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise OutputError(f"{path}: not a valid record ({e.msg})") from e
    if not isinstance(record, dict):
        raise OutputError(f"{path}: not a valid record (not a JSON object)")
    return record


def report_line(record: dict[str, Any]) -> dict[str, Any]:
    """A record less its ``source``: the image's line of the report."""
    return {k: v for k, v in record.items() if k != "source"}
