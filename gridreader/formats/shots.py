"""Capture's screenshots in its output folder, and their sidecars.

Page K of target NAME captured at a UTC second is ``NAME-YYYYmmddTHHMMSSZ-pK.png``
(no ``-pK`` for an unpaged target) with a ``.json`` sidecar of the same stem
saying what was captured. The PNG is written first, then the sidecar, each
atomically: a killed capture leaves at most a PNG without a sidecar, which is
not a complete shot. Capture writes them; nightly finds and removes them, and
batch finds an image's sidecar (:mod:`gridreader.sidecar` reads its geometry),
through these functions. It lives in the core because both use it.
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


def write_shot_files(out: Path, stem: str, png: bytes, sidecar: dict[str, Any]) -> Path:
    """Write ``stem.png``, then its sidecar ``stem.json``; return the PNG's path."""
    png_path = out / f"{stem}.png"
    write_atomic(png_path, png)
    write_atomic(sidecar_path(png_path), json.dumps(sidecar, indent=2) + "\n")
    return png_path


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
