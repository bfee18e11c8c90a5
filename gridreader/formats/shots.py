"""Capture's screenshots in its output folder, and their sidecars.

Page K of target NAME captured at a UTC second is ``NAME-YYYYmmddTHHMMSSZ-pK.png``
(no ``-pK`` for an unpaged target) with a ``.json`` sidecar of the same stem
saying what was captured (:class:`ShotSidecar`). The PNG is written first, then
the sidecar, each atomically: a killed capture leaves at most a PNG without a
sidecar, which is not a complete shot. Capture writes them
(:func:`write_shot_files`); nightly finds and removes them, and batch reads an
image's sidecar (:func:`read_shot_layout`; :mod:`gridreader.sidecar` turns it
into a grid), through these functions. It lives in the core because both use it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gridreader.errors import one_line
from gridreader.imageio import remove_file, write_atomic

_STEM_RE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)-(?P<stamp>\d{8}T\d{6}Z)(?:-p(?P<page>\d+))?$")


@dataclass(frozen=True)
class Shot:
    """What a screenshot's name says: the target, the capture's stamp, the page."""

    name: str
    stamp: str
    page: int | None


def build_stem(name: str, stamp: datetime, page: int | None) -> str:
    """``NAME-YYYYmmddTHHMMSSZ`` (UTC), with ``-pK`` for page K of a paged target."""
    stem = f"{name}-{stamp.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return stem if page is None else f"{stem}-p{page}"


def parse_stem(stem: str) -> Shot | None:
    """The shot a file stem names, or ``None`` if it names none."""
    m = _STEM_RE.match(stem)
    if m is None:
        return None
    page = m.group("page")
    return Shot(m.group("name"), m.group("stamp"), int(page) if page else None)


def sidecar_path(image: Path) -> Path:
    """Where the capture sidecar of ``image`` sits: ``STEM.json`` beside it."""
    return image.with_suffix(".json")


@dataclass(frozen=True)
class PageCells:
    """The page's table cells in the screenshot's pixels (header rows left out).

    Attributes:
        boxes: ``rows`` rows of ``cols`` boxes ``(x0, y0, x1, y1)``, x1/y1 exclusive.
    """

    rows: int
    cols: int
    header_rows: int
    boxes: tuple[tuple[tuple[float, float, float, float], ...], ...]


@dataclass(frozen=True)
class ShotSidecar:
    """What a screenshot's sidecar records, field by field.

    Attributes:
        target: the capture target's name.
        url: the page captured.
        selector: the CSS selector of the captured element (None: the page).
        page: the page number of a paged target, else None.
        time: when the sidecar was made (ISO 8601, UTC).
        scale: the device pixel ratio.
        viewport: the viewport's ``(width, height)`` in CSS px.
        browser: the browser's name and version.
        sha256: of the PNG's bytes.
        box: where the element is in the page, ``(x0, y0, x1, y1)`` in CSS px.
        image_size: the PNG's ``(width, height)`` in pixels.
        fonts: whether the page's web fonts had loaded.
        shape: the target's shape hint ``(rows, cols)``, or None.
        cells: the table's cells in image pixels, or None when not recorded.
    """

    target: str
    url: str
    selector: str | None
    page: int | None
    time: str
    scale: float
    viewport: tuple[int, int]
    browser: str
    sha256: str
    box: tuple[int, int, int, int]
    image_size: tuple[int, int]
    fonts: str
    shape: tuple[int, int] | None
    cells: PageCells | None


def shot_sidecar_json(sidecar: ShotSidecar) -> str:
    """The text of a sidecar file: the fields as an indented JSON object."""
    cells = sidecar.cells
    fields = {
        "target": sidecar.target,
        "url": sidecar.url,
        "selector": sidecar.selector,
        "page": sidecar.page,
        "time": sidecar.time,
        "scale": sidecar.scale,
        "viewport": list(sidecar.viewport),
        "browser": sidecar.browser,
        "sha256": sidecar.sha256,
        "box": list(sidecar.box),
        "image_size": list(sidecar.image_size),
        "fonts": sidecar.fonts,
        "shape": list(sidecar.shape) if sidecar.shape else None,
        "cells": None
        if cells is None
        else {
            "rows": cells.rows,
            "cols": cells.cols,
            "header_rows": cells.header_rows,
            "boxes": [[list(box) for box in row] for row in cells.boxes],
        },
    }
    return json.dumps(fields, indent=2) + "\n"


def write_shot_files(out: Path, stem: str, png: bytes, sidecar: ShotSidecar) -> Path:
    """Write ``stem.png``, then its sidecar ``stem.json``; return the PNG's path."""
    png_path = out / f"{stem}.png"
    write_atomic(png_path, png)
    write_atomic(sidecar_path(png_path), shot_sidecar_json(sidecar))
    return png_path


@dataclass(frozen=True)
class ShotLayout:
    """What a sidecar says about its picture: the fields batch uses.

    A sidecar need not hold every field of :class:`ShotSidecar`; these are read
    as recorded and checked only when asked for.

    Attributes:
        image_size: the ``[width, height]`` it was made for, as recorded.
        shape: the target's shape hint, when recorded as two integers.
        cells: the ``cells`` field as recorded (None: not recorded).
    """

    image_size: Any
    shape: tuple[int, int] | None
    cells: Any

    def made_for(self, size: tuple[int, int]) -> bool:
        """Whether the sidecar was made for an image of ``size`` ``(width, height)``."""
        return bool(self.image_size == [size[0], size[1]])

    def made_for_text(self) -> str:
        """The recorded image size for messages, e.g. ``401x300``."""
        made = self.image_size
        return f"{made[0]}x{made[1]}" if _is_int_pair(made) else repr(made)

    def cell_boxes(self) -> tuple[np.ndarray | None, str]:
        """The recorded cell boxes as a ``rows x cols x 4`` float array, or
        ``(None, why not)``."""
        if self.cells is None:
            return None, "no cells"
        try:
            boxes = np.asarray(self.cells["boxes"], float)
        except (KeyError, TypeError, ValueError):
            return None, "no boxes"
        if boxes.ndim != 3 or boxes.shape[2] != 4 or boxes.shape[0] * boxes.shape[1] < 2:
            return None, "not rows of [x0, y0, x1, y1] boxes"
        if not np.isfinite(boxes).all():
            return None, "not numbers"
        return boxes, ""


def read_shot_layout(image: Path) -> tuple[ShotLayout | None, str]:
    """What the sidecar beside ``image`` says about it.

    Returns:
        ``(layout, "")``; ``(None, "")`` when there is no sidecar, or the JSON
        there is another program's (not an object with ``image_size``);
        ``(None, why)`` when the sidecar cannot be read or is not JSON.
    """
    path = sidecar_path(image)
    if not path.is_file():
        return None, ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, one_line(e, None)
    # Another program's JSON that happens to share the stem: not ours to judge.
    if not isinstance(data, dict) or "image_size" not in data:
        return None, ""
    shape = data.get("shape")
    pair = (shape[0], shape[1]) if isinstance(shape, list) and _is_int_pair(shape) else None
    return ShotLayout(data["image_size"], pair, data.get("cells")), ""


def _is_int_pair(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def complete_shots(folder: Path) -> Iterator[Shot]:
    """The shots in ``folder`` whose PNG has its sidecar beside it."""
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return
    names = {p.name for p in entries}
    for p in entries:
        shot = parse_stem(p.stem)
        if p.suffix == ".png" and shot is not None and sidecar_path(p).name in names:
            yield shot


def remove_target_shots(folder: Path, name: str) -> list[str]:
    """Remove every screenshot and sidecar of target ``name``; return their stems.

    Raises:
        OutputError: a file cannot be removed.
    """
    stems = []
    with contextlib.suppress(FileNotFoundError):
        for p in folder.iterdir():
            shot = parse_stem(p.stem)
            if shot is not None and shot.name == name and p.suffix in (".png", ".json"):
                stems.append(p.stem)
                remove_file(p)
    return stems
