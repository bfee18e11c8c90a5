"""Class lists: which integers a model reads, plus the *empty* class."""

from __future__ import annotations

import re

from gridreader.errors import DataError

EMPTY = "empty"


def parse_classes(spec: str) -> tuple[str, ...]:
    """Parse ``"0-36"`` or ``"0-9,12,20-29"`` into class names, *empty* last.

    Raises:
        DataError: the spec is malformed or empty.
    """
    values: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise DataError(f"--classes: cannot parse {part!r} (use e.g. 0-36 or 0-9,12)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo or hi > 9999:
            raise DataError(f"--classes: bad range {part!r}")
        values.update(range(lo, hi + 1))
    if not values:
        raise DataError("--classes: no classes given")
    return (*[str(v) for v in sorted(values)], EMPTY)


def label_to_index(label: str | int | None, classes: tuple[str, ...]) -> int:
    """Index of a label; ``None``, ``""``, ``"e"``, ``"-"`` and ``"empty"`` mean empty.

    Raises:
        DataError: the label is not one of ``classes``.
    """
    text = "" if label is None else str(label).strip().lower()
    if text in ("", "-", "e", EMPTY):
        text = EMPTY
    else:
        try:
            text = str(int(text))
        except ValueError:
            raise DataError(f"label {label!r} is not an integer or 'empty'") from None
    try:
        return classes.index(text)
    except ValueError:
        raise DataError(f"label {label!r} is not among the model's classes") from None


def class_value(name: str) -> int | None:
    """The CSV value of a class name: an int, or ``None`` for empty."""
    return None if name == EMPTY else int(name)
