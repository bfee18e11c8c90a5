"""The nightly main job: a folder of images in, one CSV per image out.

Outputs in ``OUT``: ``STEM.csv`` per image, ``report.jsonl`` (one record per
image), and ``review/`` with the cells whose confidence is low, for the
labeller. Per-image records are also kept in ``OUT/.gridreader/`` so that a
re-run (or a run after a crash) can skip finished images and still write a
complete report. The formats' owners are in :mod:`gridreader.formats`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridreader.errors import OutputError, UsageError
from gridreader.formats.records import (
    RECORDS_DIR,
    read_record,
    record_path,
    report_line,
    write_record,
)
from gridreader.formats.report import REPORT_NAME, image_record, write_report
from gridreader.formats.review import (
    REVIEW_DIR,
    ReviewCell,
    image_files,
    is_sidecar_file,
    review_cell_files,
    write_review_files,
)
from gridreader.formats.shots import sidecar_path
from gridreader.formats.tables import table_path
from gridreader.imageio import (
    encode_png,
    is_image_path,
    remove_file,
    remove_temp_files,
    write_atomic,
)
from gridreader.model import Classifier
from gridreader.pipeline import (
    Analysed,
    Failed,
    WorkerPool,
    classify,
    iter_analysed,
    table_csv,
)
from gridreader.report_html import (
    draw_thumbnail,
    needs_review,
    thumbnail_path,
    write_report_page,
)
from gridreader.types import Shape, TableRead

REPORT = REPORT_NAME
REVIEW = REVIEW_DIR
STATE = RECORDS_DIR


@dataclass(frozen=True)
class ImageRead:
    """One image's outcome, ready to be written: where a batch's work is split
    between the readers (local processes, or a cluster) and the writing here.

    Attributes:
        path: the image, as listed from the input folder.
        table: what was read, or None when the image failed.
        error: the one-line reason it failed, or None.
        review: the review queue's files for it, ``(name, bytes)``.
        warnings: one-line messages about its sidecar (ignored).
        thumbnail: the report page's picture of the table (PNG), drawn while
            the pixels are at hand.
    """

    path: Path
    table: TableRead | None
    error: str | None = None
    review: tuple[tuple[str, bytes], ...] = ()
    warnings: tuple[str, ...] = ()
    thumbnail: bytes | None = None


ImageReader = Callable[[list[Path], Mapping[Path, str]], Generator[ImageRead, None, None]]
"""Reads images (given with their output stems) and yields them in any order."""


@dataclass(frozen=True)
class BatchSummary:
    """What one batch run did."""

    images: int
    ok: int
    failed: int
    skipped: int
    cells: int
    review: int
    seconds: float
    errors: tuple[str, ...]
    confidences: tuple[float, ...] = ()

    @property
    def exit_code(self) -> int:
        return 0 if self.failed == 0 else 1


def list_images(input_dir: Path) -> list[Path]:
    """Image files directly in ``input_dir``, sorted by name.

    Raises:
        UsageError: the folder does not exist.
    """
    if not input_dir.is_dir():
        raise UsageError(f"{input_dir}: input folder not found")
    return sorted(
        (p for p in input_dir.iterdir() if p.is_file() and is_image_path(p)), key=lambda p: p.name
    )


def output_stems(images: list[Path]) -> dict[Path, str]:
    """A distinct output stem per image (``a.png`` and ``a.jpg`` both exist: ``a`` and ``a.jpg``)."""
    seen: set[str] = set()
    out = {}
    for p in images:
        stem = p.stem if p.stem not in seen else p.name
        seen.add(stem)
        out[p] = stem
    return out


def _source_stamp(
    image: Path, classifier: Classifier, shape: Shape | None = None
) -> dict[str, Any]:
    """What an output was made from: the image's size and mtime, the model,
    the shape hint, and the capture sidecar beside the image."""
    st = image.stat()
    model = classifier.served_file.stat()
    stamp: dict[str, Any] = {
        "image_size": st.st_size,
        "image_mtime_ns": st.st_mtime_ns,
        "model": classifier.name,
        "model_mtime_ns": model.st_mtime_ns,
    }
    if shape is not None:
        stamp["shape"] = list(shape)
    with contextlib.suppress(OSError):
        stamp["sidecar_mtime_ns"] = sidecar_path(image).stat().st_mtime_ns
    return stamp


def _is_fresh(
    out_dir: Path, stem: str, image: Path, classifier: Classifier, shape: Shape | None = None
) -> bool:
    """Outputs exist, are newer than image and model, and were made from exactly
    this image and model (a replaced file copied with an older mtime is redone)."""
    csv_path, record = table_path(out_dir, stem), record_path(out_dir, stem)
    try:
        done = min(csv_path.stat().st_mtime_ns, record.stat().st_mtime_ns)
        stamp = _source_stamp(image, classifier, shape)
        saved = (read_record(out_dir, stem) or {}).get("source")
    except (OSError, OutputError):
        return False
    return saved == stamp and done > stamp["image_mtime_ns"] and done > stamp["model_mtime_ns"]


def run_batch(
    input_dir: Path,
    out_dir: Path,
    classifier: Classifier,
    *,
    force: bool = False,
    review_below: float = 0.9,
    shape: Shape | None = None,
    workers: int = 1,
    pool: WorkerPool | None = None,
    batch_cells: int = 512,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    reader: ImageReader | None = None,
) -> BatchSummary:
    """Read every image in ``input_dir`` into ``out_dir``.

    Images are streamed: a few are analysed ahead (in ``pool``, or else in
    ``workers`` processes started here), their cells are batched together for
    the network (``batch_cells`` at a time: enough to keep it efficient, few
    enough that the last images do not wait long), and each image's outputs
    are written as soon as it is read. Memory does not grow with the number
    of images. With ``shape``, every table is found with that shape or its
    image fails. A capture sidecar (``STEM.json``) made for an image gives its
    grid, or its shape hint when there is no ``shape``; ``warn`` gets a line
    for each sidecar ignored. A ``reader`` (a cluster's, see
    :mod:`gridreader.cluster`) replaces the local processes and network; the
    writing stays here.

    Raises:
        UsageError: missing input folder.
        OutputError: the output folder cannot be written.
    """
    from tqdm import tqdm

    t0 = time.time()
    images = list_images(input_dir)
    stems = output_stems(images)
    try:
        (out_dir / STATE).mkdir(parents=True, exist_ok=True)
        (out_dir / REVIEW).mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create output folder ({e.strerror or e})") from e
    # Nothing else writes into OUT while a batch runs there.
    for folder in (out_dir, out_dir / REVIEW, out_dir / STATE):
        remove_temp_files(folder, what="cannot remove a temp file left by a killed run")
    todo = [p for p in images if force or not _is_fresh(out_dir, stems[p], p, classifier, shape)]
    skipped = len(images) - len(todo)
    counts = {"ok": 0, "failed": 0, "cells": 0, "review": 0}
    errors: list[str] = []
    confidences: list[float] = []
    if reader is None:
        reader = _local_reader(classifier, review_below, shape, workers, pool, batch_cells)
    reads = reader(todo, stems)
    try:
        # disable=None: a bar on a terminal, silence in logs and tests.
        bar = tqdm(total=len(todo), unit="img", disable=None if progress is None else not progress)
        for read in reads:
            stem = stems[read.path]
            for w in read.warnings:
                if warn:
                    warn(w)
            if read.table is None:
                error = read.error or f"{read.path}: failed"
                record = image_record(read.path, "error", error, None, classifier.name)
                counts["failed"] += 1
                errors.append(error)
                if log:
                    log(error)
                _remove_outputs(out_dir, stem)
            else:
                table = read.table
                write_review_files(out_dir / REVIEW, stem, read.review)
                write_atomic(table_path(out_dir, stem), table_csv(table))
                if read.thumbnail is not None:
                    write_atomic(thumbnail_path(out_dir, stem), read.thumbnail)
                record = image_record(read.path, "ok", None, table, classifier.name)
                counts["ok"] += 1
                counts["cells"] += len(table.cells)
                counts["review"] += sum(is_sidecar_file(name) for name, _ in read.review)
                confidences.extend(c.confidence for c in table.cells)
            # The state record also says what the outputs were made from.
            try:
                source: dict[str, Any] | None = _source_stamp(read.path, classifier, shape)
            except OSError:
                source = None
            write_record(out_dir, stem, record, source)
            bar.update(1)
        bar.close()
    except BaseException:
        # Stopped early (disk full, Ctrl-C): the report still lists exactly the
        # images finished so far, rebuilt from their records. The reader stops
        # first, so that no work is left running for nothing.
        with contextlib.suppress(Exception):
            reads.close()
        with contextlib.suppress(OutputError):
            _rewrite_report(out_dir, images, stems)
        raise
    _rewrite_report(out_dir, images, stems)
    write_report_page(out_dir, review_below, stems)
    return BatchSummary(
        images=len(images),
        ok=counts["ok"],
        failed=counts["failed"],
        skipped=skipped,
        cells=counts["cells"],
        review=counts["review"],
        seconds=time.time() - t0,
        errors=tuple(errors),
        confidences=tuple(confidences),
    )


def _local_reader(
    classifier: Classifier,
    review_below: float,
    shape: Shape | None,
    workers: int,
    pool: WorkerPool | None,
    batch_cells: int,
) -> ImageReader:
    """Images analysed in this machine's processes and read by this process's network."""

    def read(todo: list[Path], stems: Mapping[Path, str]) -> Generator[ImageRead, None, None]:
        analysed = iter_analysed(todo, classifier.input_size, workers, pool, shape, sidecar=True)
        for item, table in _stream(analysed, classifier, batch_cells):
            yield image_read(item, table, stems[item.path], review_below, classifier)

    return read


def image_read(
    item: Analysed | Failed,
    table: TableRead | None,
    stem: str,
    review_below: float,
    classifier: Classifier,
) -> ImageRead:
    """An analysed image and its reading (None for a failed one) as an :class:`ImageRead`."""
    if isinstance(item, Failed):
        return ImageRead(item.path, None, item.error, warnings=item.warnings)
    if table is None:  # not reached: ``_stream`` reads every analysed image
        return ImageRead(item.path, None, f"{item.path}: not read", warnings=item.warnings)
    review = review_files(stem, item, table, review_below, classifier)
    thumbnail = draw_thumbnail(item.table, item.row_cuts, item.col_cuts)
    return ImageRead(item.path, table, None, review, item.warnings, thumbnail)


def _stream(
    items: Iterator[Analysed | Failed], classifier: Classifier, batch_cells: int
) -> Iterator[tuple[Analysed | Failed, TableRead | None]]:
    """Pair each item with its reading, running the network on batches of
    cells gathered across consecutive images, in input order."""
    pending: list[Analysed | Failed] = []
    cells = 0
    for item in items:
        pending.append(item)
        if isinstance(item, Analysed):
            cells += len(item.boxes)
        if cells >= batch_cells:
            yield from _flush(pending, classifier)
            pending, cells = [], 0
    yield from _flush(pending, classifier)


def _flush(
    pending: list[Analysed | Failed], classifier: Classifier
) -> Iterator[tuple[Analysed | Failed, TableRead | None]]:
    read = iter(classify([p for p in pending if isinstance(p, Analysed)], classifier))
    for p in pending:
        yield next(read) if isinstance(p, Analysed) else (p, None)


def _remove_outputs(out_dir: Path, stem: str) -> None:
    # A failed image must not leave a stale table from an earlier run behind.
    for p in [table_path(out_dir, stem), *image_files(out_dir / REVIEW, stem)]:
        remove_file(p, "cannot remove stale output")


def review_files(
    stem: str,
    item: Analysed,
    table: TableRead,
    below: float,
    classifier: Classifier,
) -> tuple[tuple[str, bytes], ...]:
    """The review queue's files for one image: a crop, its sidecar and its row
    strip per uncertain cell, as ``(name, bytes)``."""
    # The same rule marks the cells on report.html.
    low = [c for c in table.cells if needs_review(c.confidence, below)]
    files: list[tuple[str, bytes]] = []
    strips_done: set[int] = set()
    for c in low:
        k = c.row * table.cols + c.col
        # The stored crop is exactly what the classifier saw; the row strip
        # gives the labeller its context.
        strip = None if c.row in strips_done else encode_png(item.row_strip(c.row))
        strips_done.add(c.row)
        cell = ReviewCell(
            image=str(item.path.resolve()),
            row=c.row,
            col=c.col,
            box=item.boxes[k],
            guess=classifier.classes[_class_index(classifier, c.value)],
            confidence=c.confidence,
            model=classifier.name,
            classes=classifier.classes,
        )
        files.extend(review_cell_files(stem, cell, encode_png(item.crop(k)), strip))
    return tuple(files)


def _class_index(classifier: Classifier, value: int | None) -> int:
    return len(classifier.classes) - 1 if value is None else classifier.classes.index(str(value))


def _rewrite_report(out_dir: Path, images: list[Path], stems: dict[Path, str]) -> None:
    """One line per current image, from the per-image records: complete even
    after a crash, and identical to a run that was never interrupted."""
    records = (read_record(out_dir, stems[p]) for p in images)
    write_report(out_dir, (report_line(r) for r in records if r is not None))
