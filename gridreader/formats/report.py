"""``OUT/report.jsonl``: one JSON line per image, in input order.

Each line is the image's record (:func:`image_record`): its path, ``status``
(``ok`` or ``error``) and error, the table's shape, the model, and every cell
with its box, value and confidence. Batch writes it (:func:`write_report`);
eval reads the boxes back (:func:`read_report`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gridreader.errors import OutputError
from gridreader.imageio import write_atomic
from gridreader.types import TableRead

REPORT_NAME = "report.jsonl"


def image_record(
    path: Path, status: str, error: str | None, table: TableRead | None, model: str
) -> dict[str, Any]:
    """One image's line of the report."""
    return {
        "image": str(path),
        "status": status,
        "error": error,
        "rows": table.rows if table else None,
        "cols": table.cols if table else None,
        "model": model,
        "cells": [
            {
                "row": c.row,
                "col": c.col,
                "box": list(c.box),
                "value": c.value,
                "confidence": round(c.confidence, 4),
            }
            for c in table.cells
        ]
        if table
        else [],
    }


def write_report(out_dir: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``out_dir/report.jsonl`` with ``records``, one line each."""
    write_atomic(out_dir / REPORT_NAME, "".join(json.dumps(r) + "\n" for r in records))


def read_report(out_dir: Path, *, missing_ok: bool = False) -> list[dict[str, Any]]:
    """The records of ``out_dir/report.jsonl`` (blank lines skipped).

    Args:
        missing_ok: no report reads as no records.

    Raises:
        OutputError: the report cannot be read (or is missing), or a line is
            not a JSON object.
    """
    path = out_dir / REPORT_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        if missing_ok:
            return []
        raise OutputError(f"{path}: cannot read ({e.strerror or e})") from e
    except OSError as e:
        raise OutputError(f"{path}: cannot read ({e.strerror or e})") from e
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise OutputError(f"{path}: line {n}: not JSON ({e})") from e
        if not isinstance(rec, dict):
            raise OutputError(f"{path}: line {n}: not a JSON object")
        records.append(rec)
    return records
