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


def read_report(out_dir: Path) -> list[dict[str, Any]]:
    """The records of ``out_dir/report.jsonl`` (none if there is no report).

    Raises:
        OutputError: the report cannot be read or a line is not JSON.
    """
    path = out_dir / REPORT_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as e:
        raise OutputError(f"{path}: cannot read ({e.strerror or e})") from e
    try:
        return [json.loads(line) for line in text.splitlines()]
    except json.JSONDecodeError as e:
        raise OutputError(f"{path}: not a valid report ({e.msg})") from e
