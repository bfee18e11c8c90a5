"""``OUT/STEM.csv``: the table read from image STEM, one CSV row per table row.

The contents come from :func:`gridreader.pipeline.table_csv`; batch writes the
file, eval scores it and nightly removes it with the rest of a target's outputs.
"""

from __future__ import annotations

from pathlib import Path


def table_path(out_dir: Path, stem: str) -> Path:
    """Where the table read from image ``stem`` goes."""
    return out_dir / f"{stem}.csv"
