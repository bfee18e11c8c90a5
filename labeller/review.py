"""Indexing the review folders that ``gridreader batch`` writes.

The index is built once, when the labeller starts: every sidecar is validated,
its crop is hashed, and crops are refused unless they are plain files that really
sit inside the review folder they were found in. The web app then serves files
only by looking them up here, never by joining a path the browser sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gridreader.errors import DataError, LabelError
from gridreader.formats.review import SIDECAR_PATTERN, parse_sidecar, sidecar_stem
from labeller.store import CropRecord

MAX_CROP_BYTES = 20 * 1024 * 1024
MAX_STRIP_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class ReviewItem:
    """One uncertain cell: its crop, its row strip and what the model said."""

    sha256: str
    name: str
    crop_path: Path
    strip_path: Path | None
    review_dir: Path
    image: str
    row: int
    col: int
    box: tuple[int, int, int, int]
    guess: str
    confidence: float
    model: str
    classes: tuple[str, ...]

    def read_crop(self) -> bytes:
        """The crop's PNG bytes, checked against the hash it was indexed under.

        Raises:
            LabelError: the file is gone, escapes its folder, or has changed.
        """
        data = read_inside(self.crop_path, self.review_dir, MAX_CROP_BYTES)
        if data is None:
            raise LabelError(f"{self.crop_path}: crop file is missing or unreadable")
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise LabelError(f"{self.crop_path}: crop changed on disk since the labeller started")
        return data

    def read_strip(self) -> bytes | None:
        """The row strip's PNG bytes, or ``None`` if there is none (any more)."""
        if self.strip_path is None:
            return None
        return read_inside(self.strip_path, self.review_dir, MAX_STRIP_BYTES)

    def to_record(self, png: bytes | None = None) -> CropRecord:
        """The crop as the label store keeps it (bytes included): ``png``, or
        else the crop file's bytes.

        Raises:
            LabelError: the crop file cannot be read back unchanged.
        """
        return CropRecord(
            sha256=self.sha256,
            png=self.read_crop() if png is None else png,
            path=str(self.crop_path),
            image=self.image,
            row=self.row,
            col=self.col,
            model=self.model,
            guess=self.guess,
            confidence=self.confidence,
            classes=self.classes,
        )


@dataclass(frozen=True)
class ReviewIndex:
    """All review items, deduplicated by crop hash, least confident first.

    Attributes:
        items: the items in queue order.
        by_sha: the same items keyed by crop sha256.
        by_name: crop file name -> sha256, for names that are unique.
        problems: one line per sidecar that was refused, naming the file.
        duplicates: how many sidecars pointed at a crop already indexed.
    """

    items: tuple[ReviewItem, ...]
    by_sha: dict[str, ReviewItem]
    by_name: dict[str, str]
    problems: tuple[str, ...]
    duplicates: int


def read_inside(path: Path, folder: Path, limit: int) -> bytes | None:
    """Read ``path`` only if it resolves to a plain file inside ``folder``.

    The check is repeated at every read, so a crop swapped for a symlink after
    indexing is still refused.
    """
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(folder) or not real.is_file():
            return None
        if real.stat().st_size > limit:
            return None
        return real.read_bytes()
    except OSError:
        return None


def load_review_dirs(dirs: Sequence[str | Path]) -> ReviewIndex:
    """Index the sidecars of one or more review folders.

    Args:
        dirs: review folders as written by ``gridreader batch`` (``OUT/review``).

    Returns:
        The index. Bad sidecars are listed in ``problems`` rather than raised, so
        one damaged file does not stop a labelling session.

    Raises:
        DataError: a folder does not exist, or no folder holds any review crop.
    """
    found: list[tuple[float, int, str, ReviewItem]] = []
    problems: list[str] = []
    seen: dict[str, ReviewItem] = {}
    duplicates = 0
    folders: list[Path] = []
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise DataError(f"{folder}: review folder does not exist")
        folders.append(folder.resolve())
    sidecars_seen = 0
    for order, folder in enumerate(folders):
        for sidecar in sorted(folder.glob("*.json")):
            if sidecar_stem(sidecar.name) is None:
                continue
            sidecars_seen += 1
            try:
                item = _read_sidecar(sidecar, folder)
            except DataError as e:
                problems.append(str(e))
                continue
            if item.sha256 in seen:
                duplicates += 1
                continue
            seen[item.sha256] = item
            found.append((item.confidence, order, item.name, item))
    if sidecars_seen == 0:
        names = ", ".join(str(f) for f in folders)
        raise DataError(f"{names}: no review sidecars ({SIDECAR_PATTERN}) found")
    found.sort(key=lambda t: (t[0], t[1], t[2]))
    items = tuple(t[3] for t in found)
    name_count: dict[str, int] = {}
    for it in items:
        name_count[it.name] = name_count.get(it.name, 0) + 1
    by_name = {it.name: it.sha256 for it in items if name_count[it.name] == 1}
    return ReviewIndex(
        items=items,
        by_sha={it.sha256: it for it in items},
        by_name=by_name,
        problems=tuple(problems),
        duplicates=duplicates,
    )


def _read_sidecar(sidecar: Path, folder: Path) -> ReviewItem:
    """Parse and check one sidecar and the files it names; raise DataError naming it."""
    meta = parse_sidecar(sidecar)
    crop_path = _member(folder, meta.crop, sidecar, "crop")
    data = read_inside(crop_path, folder, MAX_CROP_BYTES)
    if data is None:
        raise DataError(f"{sidecar}: crop {meta.crop!r} is missing, too large or outside {folder}")
    if hashlib.sha256(data).hexdigest() != meta.sha256:
        raise DataError(f"{sidecar}: crop {meta.crop!r} does not match the sidecar's sha256")
    strip_path = None
    if meta.row_strip is not None:
        candidate = _member(folder, meta.row_strip, sidecar, "row_strip")
        if read_inside(candidate, folder, MAX_STRIP_BYTES) is not None:
            strip_path = candidate
    cell = meta.cell
    return ReviewItem(
        sha256=meta.sha256,
        name=meta.crop,
        crop_path=crop_path,
        strip_path=strip_path,
        review_dir=folder,
        image=cell.image,
        row=cell.row,
        col=cell.col,
        box=cell.box,
        guess=cell.guess,
        confidence=cell.confidence,
        model=cell.model,
        classes=cell.classes,
    )


def _member(folder: Path, name: str, sidecar: Path, key: str) -> Path:
    """``folder / name`` for a bare ``.png`` file name; anything path-like is refused."""
    if (
        not name.lower().endswith(".png")
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or Path(name).name != name
    ):
        raise DataError(f"{sidecar}: {key} {name!r} is not a plain .png file name")
    return folder / name
