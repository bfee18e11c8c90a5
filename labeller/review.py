"""Indexing the review folders that ``gridreader batch`` writes.

Every sidecar is validated, its crop is hashed, and crops are refused unless
they are plain files that really sit inside the review folder they were found
in. The web app then serves files only by looking them up here, never by
joining a path the browser sent.

:func:`load_review_dirs` indexes the folders once. :class:`LiveReviewIndex`
(what ``gridreader label`` serves) also notices crops that a running ``batch``
adds later: a folder whose modification time changed is rescanned, reading
only the sidecars that are new or changed. ``batch`` writes every file to a
temp name (``.NAME.XXXX.tmp``) and renames it, crop before sidecar, so a
sidecar that is visible names a crop that is complete.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gridreader.errors import DataError, LabelError
from gridreader.formats.review import ReviewCell, parse_sidecar, sidecar_stem
from labeller.store import CropRecord

MAX_CROP_BYTES = 20 * 1024 * 1024
MAX_STRIP_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class ReviewItem:
    """One uncertain cell: what its sidecar says (``cell``) and its files.

    Attributes:
        cell: where the cell is and what the model said, as the sidecar has it.
        sha256: the crop's sha256 (the item's key).
        name: the crop's file name.
        crop_path: the crop file, inside ``review_dir``.
        strip_path: the row strip, or ``None`` if the cell has none.
        review_dir: the (resolved) review folder the item was found in.
    """

    cell: ReviewCell
    sha256: str
    name: str
    crop_path: Path
    strip_path: Path | None
    review_dir: Path

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
        cell = self.cell
        return CropRecord(
            sha256=self.sha256,
            png=self.read_crop() if png is None else png,
            path=str(self.crop_path),
            image=cell.image,
            row=cell.row,
            col=cell.col,
            model=cell.model,
            guess=cell.guess,
            confidence=cell.confidence,
            classes=cell.classes,
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

    @functools.cached_property
    def order(self) -> dict[str, int]:
        """sha256 -> position in the queue."""
        return {it.sha256: i for i, it in enumerate(self.items)}

    @functools.cached_property
    def class_sets(self) -> dict[tuple[str, ...], int]:
        """Each distinct class list -> a small number, in order of first use."""
        return number_class_sets(self.items, {})

    @property
    def generation(self) -> int:
        """How many times the item list has changed (never, for a one-off index)."""
        return 0


def number_class_sets(
    items: Sequence[ReviewItem], known: Mapping[tuple[str, ...], int]
) -> dict[tuple[str, ...], int]:
    """``known`` plus a new number for each class list of ``items`` it lacks.

    Numbers already given never change, so a page that cached them stays right.
    """
    out = dict(known)
    for it in items:
        out.setdefault(it.cell.classes, len(out))
    return out


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
    folders = check_review_dirs(dirs)
    index, _, sidecars_seen = scan_review_dirs(folders, {})
    if sidecars_seen == 0:
        names = ", ".join(str(f) for f in folders)
        raise DataError(f"{names}: no review sidecars (STEM.rRRRcCCC.json) found")
    return index


def check_review_dirs(dirs: Sequence[str | Path]) -> list[Path]:
    """The folders, resolved.

    Raises:
        DataError: a folder does not exist.
    """
    folders: list[Path] = []
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise DataError(f"{folder}: review folder does not exist")
        folders.append(folder.resolve())
    return folders


_Stamp = tuple[int, int, int]
"""A sidecar's (inode, size, mtime in ns): a file replaced by rename gets a new one."""
_Cache = dict[Path, tuple[_Stamp, ReviewItem]]


def scan_review_dirs(folders: Sequence[Path], cache: _Cache) -> tuple[ReviewIndex, _Cache, int]:
    """Index ``folders``; a sidecar whose stamp is in ``cache`` is not read again.

    Returns:
        The index, the cache for the next scan and the number of sidecars seen.
    """
    found: list[tuple[float, int, str, ReviewItem]] = []
    problems: list[str] = []
    seen: dict[str, ReviewItem] = {}
    fresh: _Cache = {}
    duplicates = 0
    sidecars_seen = 0
    for order, folder in enumerate(folders):
        try:
            names = sorted(os.listdir(folder))
        except OSError as e:
            problems.append(f"{folder}: cannot list the review folder ({e.strerror or e})")
            continue
        for name in names:
            # Temp files of a write in progress start with a dot; skip them.
            if name.startswith(".") or sidecar_stem(name) is None:
                continue
            sidecar = folder / name
            sidecars_seen += 1
            try:
                st = sidecar.stat()
                stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
                cached = cache.get(sidecar)
                item = (
                    cached[1] if cached and cached[0] == stamp else _read_sidecar(sidecar, folder)
                )
            except FileNotFoundError:
                sidecars_seen -= 1  # removed since it was listed
                continue
            except (DataError, OSError) as e:
                problems.append(str(e) if isinstance(e, DataError) else f"{sidecar}: {e}")
                continue
            fresh[sidecar] = (stamp, item)
            if item.sha256 in seen:
                duplicates += 1
                continue
            seen[item.sha256] = item
            found.append((item.cell.confidence, order, item.name, item))
    found.sort(key=lambda t: (t[0], t[1], t[2]))
    items = tuple(t[3] for t in found)
    name_count: dict[str, int] = {}
    for it in items:
        name_count[it.name] = name_count.get(it.name, 0) + 1
    by_name = {it.name: it.sha256 for it in items if name_count[it.name] == 1}
    index = ReviewIndex(
        items=items,
        by_sha={it.sha256: it for it in items},
        by_name=by_name,
        problems=tuple(problems),
        duplicates=duplicates,
    )
    return index, fresh, sidecars_seen


class LiveReviewIndex:
    """Review folders indexed at start and re-indexed when they change.

    Reads (``items``, ``by_sha``, ...) go to one :class:`ReviewIndex` snapshot.
    :meth:`refresh` costs one ``stat`` per folder and runs at most every
    ``interval_s``; a folder whose modification time moved is rescanned.
    :meth:`pin` makes the calling thread read one snapshot until it pins
    again, so a web request never sees two versions of the queue.
    """

    def __init__(self, dirs: Sequence[str | Path], *, interval_s: float = 1.0) -> None:
        """Index ``dirs`` now; an empty folder is fine (crops may come later).

        Raises:
            DataError: a folder does not exist.
        """
        self._folders = check_review_dirs(dirs)
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._local = threading.local()
        self._stamps: list[int | None] = []
        self._checked = 0.0
        self._generation = 0
        self._cache: _Cache = {}
        self._snap = self._scan({})

    # -- the current snapshot ------------------------------------------------

    def _current(self) -> _LiveSnapshot:
        snap: _LiveSnapshot | None = getattr(self._local, "snap", None)
        return snap if snap is not None else self._snap

    @property
    def items(self) -> tuple[ReviewItem, ...]:
        return self._current().index.items

    @property
    def by_sha(self) -> dict[str, ReviewItem]:
        return self._current().index.by_sha

    @property
    def by_name(self) -> dict[str, str]:
        return self._current().index.by_name

    @property
    def problems(self) -> tuple[str, ...]:
        return self._current().index.problems

    @property
    def duplicates(self) -> int:
        return self._current().index.duplicates

    @property
    def order(self) -> dict[str, int]:
        return self._current().index.order

    @property
    def class_sets(self) -> dict[tuple[str, ...], int]:
        return self._current().class_sets

    @property
    def generation(self) -> int:
        """Bumped each time a rescan changes the list of items."""
        return self._current().generation

    # -- keeping it fresh ----------------------------------------------------

    def pin(self) -> None:
        """Refresh if due, then read the latest snapshot in this thread until the next pin."""
        self.refresh()
        self._local.snap = self._snap

    def refresh(self, *, force: bool = False) -> bool:
        """Rescan the folders if one changed (checked at most every ``interval_s``).

        Returns:
            Whether the list of items changed.
        """
        now = time.monotonic()
        if not force and now - self._checked < self._interval_s:
            return False
        with self._lock:
            if not force and now - self._checked < self._interval_s:
                return False
            self._checked = time.monotonic()
            trusted = None not in self._stamps
            if not force and trusted and self._folder_stamps() == self._stamps:
                return False
            before = self._snap
            snap = self._scan(before.class_sets)
            if snap.index.items == before.index.items:
                self._snap = _LiveSnapshot(snap.index, before.class_sets, before.generation)
                return False
            self._generation += 1
            self._snap = _LiveSnapshot(snap.index, snap.class_sets, self._generation)
            return True

    def _folder_stamps(self) -> list[int | None]:
        # A folder changed within the last second may change again within the
        # clock's granularity without its mtime moving: such a stamp is not
        # trusted (None never equals a later reading), so the next check rescans.
        stamps: list[int | None] = []
        wall = time.time_ns()
        for folder in self._folders:
            try:
                mtime = folder.stat().st_mtime_ns
            except OSError:
                stamps.append(None)
                continue
            stamps.append(mtime if wall - mtime > 1_000_000_000 else None)
        return stamps

    def _scan(self, known: Mapping[tuple[str, ...], int]) -> _LiveSnapshot:
        # Stamps first: a change during the scan moves the mtime past them.
        self._stamps = self._folder_stamps()
        index, self._cache, _ = scan_review_dirs(self._folders, self._cache)
        return _LiveSnapshot(index, number_class_sets(index.items, known), self._generation)


@dataclass(frozen=True)
class _LiveSnapshot:
    index: ReviewIndex
    class_sets: dict[tuple[str, ...], int]
    generation: int


AnyReviewIndex = ReviewIndex | LiveReviewIndex
"""What the web app serves: a one-off index or one that follows the folders."""


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
    return ReviewItem(
        cell=meta.cell,
        sha256=meta.sha256,
        name=meta.crop,
        crop_path=crop_path,
        strip_path=strip_path,
        review_dir=folder,
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
