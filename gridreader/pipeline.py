"""From image files to read tables: the stages glued together.

``analyse_image`` does everything up to the network (load, find the grid, cut
and prepare the cells) and is what worker processes run; ``classify`` runs the
network over crops batched across many images.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gridreader.errors import GridReaderError, NoTableError
from gridreader.grid import cell_boxes, cell_cuts, cut_cell, find_grid, rectify_image
from gridreader.imageio import load_image
from gridreader.imaging import squeeze_gray
from gridreader.model import Classifier
from gridreader.preprocess import prepare_batch_u8
from gridreader.sidecar import PageHints, read_page_hints
from gridreader.types import Box, CellRead, Grid, Shape, TableRead


@dataclass(frozen=True)
class Analysed:
    """One image, ready for the classifier.

    Attributes:
        path: the image file.
        grid: the table found.
        boxes: each cell's box in image pixels, row-major.
        inputs: prepared crops ``(cells, h, w, 1)``, quantised to uint8.
        table: the rectified image over the table's cells (RGB, or one channel
            for a gray picture): the crops are
            cut from it on demand (for the review queue), so an image travels
            between processes once, not once per crop and again per row.
        row_cuts: row edges as pixel indices into ``table``.
        col_cuts: column edges as pixel indices into ``table``.
        warnings: one-line messages about the image's sidecar (ignored).
        shape_given: the grid's shape came from the user (``--shape``) or
            from the page itself (sidecar cell boxes), so no reading may
            change it.
    """

    path: Path
    grid: Grid
    boxes: tuple[Box, ...]
    inputs: np.ndarray = field(repr=False)
    table: np.ndarray = field(repr=False)
    row_cuts: tuple[int, ...] = field(repr=False)
    col_cuts: tuple[int, ...] = field(repr=False)
    warnings: tuple[str, ...] = ()
    shape_given: bool = False

    def crop(self, k: int) -> np.ndarray:
        """Cell ``k`` (row-major) exactly as it was cut for the classifier."""
        r, c = divmod(k, self.grid.cols)
        return cut_cell(self.table, self.row_cuts, self.col_cuts, r, c)

    def row_strip(self, r: int) -> np.ndarray:
        """Row ``r`` of the table, for context."""
        ys = self.row_cuts
        return self.table[ys[r] : max(ys[r] + 1, ys[r + 1])]


@dataclass(frozen=True)
class Failed:
    """An image that could not be analysed, with a one-line reason.

    Attributes:
        warnings: one-line messages about the image's sidecar (ignored).
    """

    path: Path
    error: str
    warnings: tuple[str, ...] = ()


def analyse_image(
    path: Path, input_size: tuple[int, int], shape: Shape | None = None, sidecar: bool = False
) -> Analysed:
    """Load an image, find its table (of ``shape``, if given) and prepare every cell.

    With ``sidecar``, a capture sidecar beside the image that was made for it
    gives the grid (the page's own cell boxes) or the shape hint; see
    :mod:`gridreader.sidecar`.

    Raises:
        ImageLoadError: unreadable image.
        NoTableError: no table in it (or none of ``shape``).
    """
    image = _load(path)
    return _analyse_loaded(path, image, _hints(path, image, shape, sidecar), input_size)


def _load(path: Path) -> np.ndarray:
    # A gray picture is carried as one channel from here on: a third of the
    # pixels to turn, cut and send, and the same network inputs.
    return squeeze_gray(load_image(path))


def _hints(path: Path, image: np.ndarray, shape: Shape | None, sidecar: bool) -> PageHints:
    size = (image.shape[1], image.shape[0])
    return read_page_hints(path, size, shape) if sidecar else PageHints(None, shape)


def _analyse_loaded(
    path: Path, image: np.ndarray, hints: PageHints, input_size: tuple[int, int]
) -> Analysed:
    try:
        grid = hints.grid or find_grid(image, shape=hints.shape)
    except NoTableError as e:
        raise NoTableError(f"{path}: {e}") from e
    rect = rectify_image(image, grid)
    ys, xs = cell_cuts(rect.shape, grid)
    crops = [cut_cell(rect, ys, xs, r, c) for r in range(grid.rows) for c in range(grid.cols)]
    boxes = tuple(b.box for b in cell_boxes(grid))
    # The table's pixels, a pixel past the last edges (a cell is at least one
    # pixel each way), copied so the rest of the page can be freed.
    y0, x0 = ys[0], xs[0]
    table = np.ascontiguousarray(rect[y0 : ys[-1] + 1, x0 : xs[-1] + 1])
    return Analysed(
        path,
        grid,
        boxes,
        prepare_batch_u8(crops, input_size),
        table,
        tuple(y - y0 for y in ys),
        tuple(x - x0 for x in xs),
        hints.warnings,
        shape_given=hints.grid is not None or hints.shape is not None,
    )


def analyse_safely(
    path: Path, input_size: tuple[int, int], shape: Shape | None = None, sidecar: bool = False
) -> Analysed | Failed:
    """:func:`analyse_image`, with the project's errors turned into a :class:`Failed`."""
    warnings: tuple[str, ...] = ()
    try:
        image = _load(path)
        hints = _hints(path, image, shape, sidecar)
        warnings = hints.warnings
        return _analyse_loaded(path, image, hints, input_size)
    except GridReaderError as e:
        msg = str(e)
        return Failed(path, msg if str(path) in msg else f"{path}: {msg}", warnings)
    except MemoryError:
        return Failed(path, f"{path}: out of memory while reading the image", warnings)


_AHEAD_PER_WORKER = 8


def default_workers() -> int:
    """One analysing process per core this process may run on, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


@dataclass(frozen=True)
class WorkerPool:
    """Processes that analyse images, started ahead of the work."""

    executor: ProcessPoolExecutor = field(repr=False)
    workers: int


@contextlib.contextmanager
def start_workers(workers: int) -> Iterator[WorkerPool | None]:
    """Start ``workers`` analysing processes now (``None`` for one: it runs inline).

    Each process imports numpy and OpenCV as it starts, a few tenths of a
    second; a caller that starts them before loading the model overlaps the
    two. The processes are stopped on leaving the block.
    """
    if workers <= 1:
        yield None
        return
    with _worker_pool(workers) as pool:
        yield pool


@contextlib.contextmanager
def _worker_pool(workers: int) -> Iterator[WorkerPool]:
    import multiprocessing

    # forkserver: a forked copy of a process that already runs OpenCV's (or
    # TensorFlow's) thread pools can deadlock; fresh workers cannot.
    ctx = multiprocessing.get_context("forkserver")
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_quiet_worker)
    try:
        # The executor spawns a process per task it cannot hand to an idle
        # one: as many no-op tasks as workers start them all now.
        for _ in range(workers):
            executor.submit(int)
        yield WorkerPool(executor, workers)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def iter_analysed(
    paths: Iterable[Path],
    input_size: tuple[int, int],
    workers: int = 1,
    pool: WorkerPool | None = None,
    shape: Shape | None = None,
    sidecar: bool = False,
) -> Iterator[Analysed | Failed]:
    """Analyse images in order: in ``pool``'s processes if given, else in
    ``workers`` processes started here (inline for one). ``shape`` is the
    tables' known shape, if any; ``sidecar``: use capture sidecars.

    Results come back in input order; at most a few images per worker are in
    flight, so memory does not grow with the number of images.
    """
    paths = list(paths)
    if pool is not None and len(paths) > 1:
        yield from _iter_in_pool(paths, input_size, pool, shape, sidecar)
    elif workers <= 1 or len(paths) <= 1:
        for p in paths:
            yield analyse_safely(p, input_size, shape, sidecar)
    else:
        with _worker_pool(workers) as own:
            yield from _iter_in_pool(paths, input_size, own, shape, sidecar)


def _iter_in_pool(
    paths: list[Path],
    input_size: tuple[int, int],
    pool: WorkerPool,
    shape: Shape | None,
    sidecar: bool,
) -> Iterator[Analysed | Failed]:
    # Workers keep going while the main process runs the network and writes:
    # with only a couple of images queued per worker they would sit idle
    # meanwhile. An analysed image is a few MB at most, so the queue stays small.
    ahead = _AHEAD_PER_WORKER * pool.workers
    submit = pool.executor.submit
    futures: deque[Future[Analysed | Failed]] = deque(
        submit(analyse_safely, p, input_size, shape, sidecar) for p in paths[:ahead]
    )
    nxt = len(futures)
    try:
        while futures:
            result = futures.popleft().result()
            if nxt < len(paths):
                futures.append(submit(analyse_safely, paths[nxt], input_size, shape, sidecar))
                nxt += 1
            yield result
    finally:
        # Stopped early (an error downstream): drop the images not started yet,
        # so a shared pool is free for the next caller.
        for f in futures:
            f.cancel()


def _quiet_worker() -> None:
    # Workers only run OpenCV and numpy; keep them to one thread each so N
    # workers use N cores, not N x cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)
    _keep_freed_memory()
    _exit_with_parent()


# glibc's mallopt parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _keep_freed_memory() -> None:
    # Every image allocates and frees page-sized arrays. glibc serves blocks
    # over 128 KB by mmap and returns them to the kernel on free, so each
    # image's arrays are page-faulted in afresh (78,000 faults for the dev
    # bench). Kept on the heap instead, they are reused: a handful of faults.
    # Only up to 4 MB, though: a big page's maps (a 2400 px analysis frame)
    # kept on the heap as well fragmented it, for 30-40 MB more per worker.
    # Not glibc (or no libc found): nothing to do.
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 4 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 32 << 20)
    except (OSError, AttributeError):
        pass


def _exit_with_parent() -> None:
    # A worker whose parent was killed (kill -9, the OOM killer) would wait on
    # its queue for ever; the parent's sentinel turns ready when it dies.
    import multiprocessing
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return
    _kill_with_parent()

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


_PR_SET_PDEATHSIG = 1


def _kill_with_parent() -> None:
    # The watcher thread above needs the GIL, which a long numpy call may hold;
    # the kernel's parent-death signal (Linux) needs nothing. The parent here is
    # the fork server, which exits as soon as the main process is gone.
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def classify(items: list[Analysed], classifier: Classifier) -> list[tuple[Analysed, TableRead]]:
    """Read the cells of several analysed images in one network batch.

    Stray end rows (see :func:`stray_rows`: a header of words inside the
    table's rules, a footer's padding) are dropped from the reading and from
    the returned ``Analysed`` alike, unless the shape was given.
    """
    if not items:
        return []
    inputs = np.concatenate([a.inputs for a in items])
    idx, conf = classifier.predict(inputs)
    out = []
    start = 0
    for a in items:
        n = len(a.boxes)
        cols = a.grid.cols
        blank = idx[start : start + n].reshape(-1, cols) == len(classifier.classes) - 1
        top, bottom = (
            (0, 0)
            if a.shape_given
            else stray_rows(conf[start : start + n].reshape(-1, cols), blank)
        )
        a_idx = idx[start + top * cols : start + n - bottom * cols]
        a_conf = conf[start + top * cols : start + n - bottom * cols]
        a = drop_rows(a, top, bottom)
        cells = tuple(
            CellRead(
                row=k // cols,
                col=k % cols,
                box=a.boxes[k],
                value=classifier.value(int(a_idx[k])),
                # Rounded once here, so the review decision, the report and the
                # review sidecars all see the same number.
                confidence=round(float(a_conf[k]), 4),
            )
            for k in range(len(a.boxes))
        )
        out.append((a, TableRead(a.grid.rows, cols, cells, classifier.name)))
        start += n
    return out


# A row is text when most of its cells, its median one included, are read
# less surely than nearly all (95%) of the table's other cells, and its
# median or its mean confidence is under 0.85. The mean as well: a header of
# column letters has a few cells read very unsurely (A, H, K at 0.45-0.7)
# that a median of its middling ones (B as 8, D as 0) hides. The median as
# well: one number in a card's title, read surely, lifts the title's mean
# over the body's floor.
_BODY_QUANTILE = 0.05
_TEXT_ROW_CONFIDENCE = 0.85
_TEXT_ROW_SHARE = 0.6
# A table at most this share blank is dense.
_DENSE_BLANK = 0.25


def stray_rows(conf: np.ndarray, blank: np.ndarray) -> tuple[int, int]:
    """How many rows at the top and at the bottom of a read table are not
    table: text the network reads only unsurely where it reads the other rows
    surely (words, column letters, a caption's lines), or a lone blank row at
    an end (a card's padding, a footer line's band) in a dense table (at most
    a quarter of its other cells blank) with no other blank row.

    Relative, so a table of hard cells (faint handwriting) keeps its first
    row: that row is then no less sure than the rest; and a sheet with blank
    rows left at its end keeps them all. Cells read as empty are left out of
    the comparison: a line of text leaves the cells beyond it blank, and
    surely so.

    Args:
        conf: each cell's confidence, ``(rows, cols)``.
        blank: whether each cell was read as empty, ``(rows, cols)``.

    Returns:
        ``(top, bottom)``: up to three rows at each end.
    """
    rows = conf.shape[0]
    top = bottom = 0
    while top < _MAX_STRAY and rows - top - bottom >= 3:
        if not _is_stray(conf[top : rows - bottom], blank[top : rows - bottom], 0):
            break
        top += 1
    while bottom < _MAX_STRAY and rows - top - bottom >= 3:
        if not _is_stray(conf[top : rows - bottom], blank[top : rows - bottom], -1):
            break
        bottom += 1
    return top, bottom


_MAX_STRAY = 3


def _is_stray(conf: np.ndarray, blank: np.ndarray, r: int) -> bool:
    """Whether row ``r`` of a read table is no table row (see :func:`stray_rows`)."""
    r = r % conf.shape[0]
    body_blank = np.delete(blank, r, axis=0)
    if blank[r].all():
        # A puzzle grid may well have a row without givens; a dense table
        # has no whole blank row by chance.
        return not body_blank.all(axis=1).any() and body_blank.mean() <= _DENSE_BLANK
    row = conf[r][~blank[r]]
    if row.size < 2:
        return False
    body = np.delete(conf, r, axis=0)
    read = body[~body_blank]
    floor = float(np.quantile(read if read.size else body, _BODY_QUANTILE))
    typical = float(np.median(row))
    return bool(
        typical < floor
        and min(typical, float(np.mean(row))) < _TEXT_ROW_CONFIDENCE
        and np.count_nonzero(row < floor) >= _TEXT_ROW_SHARE * row.size
    )


def drop_rows(a: Analysed, top: int, bottom: int) -> Analysed:
    """``a`` without its first ``top`` and last ``bottom`` rows."""
    if not top and not bottom:
        return a
    g = a.grid
    cols = g.cols
    keep = slice(top, g.rows - bottom)
    grid = replace(g, row_edges=g.row_edges[top : g.rows + 1 - bottom])
    return replace(
        a,
        grid=grid,
        boxes=a.boxes[keep.start * cols : keep.stop * cols],
        inputs=a.inputs[keep.start * cols : keep.stop * cols],
        row_cuts=a.row_cuts[top : g.rows + 1 - bottom],
    )


def read_image(path: Path, classifier: Classifier, shape: Shape | None = None) -> TableRead:
    """Read one table (of ``shape``, if given) from one image file.

    Raises:
        GridReaderError: the image is unreadable or holds no table (of ``shape``).
    """
    return classify([analyse_image(path, classifier.input_size, shape)], classifier)[0][1]


def table_csv(table: TableRead) -> str:
    """The table as CSV text: no header, one line per row, empty cells empty."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for row in table.values():
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()
