"""Refusal: a found grid must hold what number tables hold.

A table's cells are either blank or hold a few compact marks (its numbers)
clear of the cell's sides, and the numbers of one table share a type size.
Whatever lattice the finder lays over noise, dithering or a photograph, its
cells give it away: they are crowded with specks, or almost all blank, or
hold patches of every size, or patches lighter and darker than their cell at
once, where a number's strokes are all ink of one kind. The evidence is the
cells' own, not statistics of the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gridreader.errors import NoTableError
from gridreader.imaging import components, unwrap_badge

# Cells looked at: enough to judge, few enough to stay cheap on big tables.
_SAMPLE = 32
# Grey levels off the cell's own background that count as ink (JPEG noise
# and paper texture stay well under it; the faintest text well over it).
_INK_STEP = 48
# A faint cell (thin grey print in a dim photo, 55-75 levels off its paper at
# the strokes' core) is cut at half its own contrast, so that its strokes are
# whole marks, not a few dark specks of uneven heights; never lower than this
# (paper grain and JPEG ringing reach 10-20).
_MIN_INK_STEP = 24
# Spread (std/mean) of the marks' heights: printed tables 0-0.1, handwriting
# up to about 0.2, dim photos of thin print up to about 0.45; the patches of
# a photograph 0.5 and more.
_MAX_HEIGHT_SPREAD = 0.5
# Mean ink purity of the glyph cells: a number's strokes all lie on one side
# of its cell's ground (0.96-1.0 on 3,370 tables, printed, handwritten, web,
# photographed), a photograph's patches on both (0.2-0.7 on most pictures).
_MIN_PURITY = 0.85
# Marks under a tenth of their cell's height are no number; and numbers
# under 3 px (median) are no print anyone could read (5 px digits at least
# on every screen and scan here).
_MIN_GLYPH_SHARE = 0.1
_MIN_GLYPH_PX = 3.0
# Crowded cells: noise and texture fill nearly all (0.8-1.0 of them on 24
# noise and photo pictures); real tables at most a fifth (rules off the
# edges, specks of a dim photo).
_MAX_MESSY = 0.5


@dataclass(frozen=True)
class CellEvidence:
    """What the sampled cells of a grid look like.

    Attributes:
        cells: cells looked at.
        blank: cells with no ink.
        glyphs: cells whose ink is a few compact marks clear of the sides.
        heights: the marks' height in each glyph cell, as a share of the cell's.
        pixels: the same heights in pixels.
        purity: in each glyph cell, how much of its ink lies on one side of
            the ground (1: all darker or all lighter; 0: as much either way).
    """

    cells: int
    blank: int
    glyphs: int
    heights: tuple[float, ...] = ()
    purity: tuple[float, ...] = ()
    pixels: tuple[float, ...] = ()

    @property
    def messy(self) -> int:
        """Cells that are neither blank nor hold glyphs."""
        return self.cells - self.blank - self.glyphs


def cell_evidence(gray: np.ndarray, ys: list[int], xs: list[int]) -> CellEvidence:
    """Classify a sample of the cells between pixel edges ``ys`` and ``xs``."""
    rows, cols = len(ys) - 1, len(xs) - 1
    n = rows * cols
    picks = np.unique(np.linspace(0, n - 1, min(n, _SAMPLE)).round().astype(int))
    blank = glyphs = 0
    heights, purity, pixels = [], [], []
    for k in picks:
        r, c = divmod(int(k), cols)
        cell = gray[ys[r] : ys[r + 1], xs[c] : xs[c + 1]]
        kind, height, pure = _cell_kind(cell)
        blank += kind == "blank"
        glyphs += kind == "glyphs"
        if kind == "glyphs":
            heights.append(height)
            purity.append(pure)
            pixels.append(height * cell.shape[0])
    return CellEvidence(len(picks), blank, glyphs, tuple(heights), tuple(purity), tuple(pixels))


def _cell_kind(cell: np.ndarray) -> tuple[str, float, float]:
    """The cell's kind (``blank``, ``glyphs`` or ``messy``), with the height of
    its glyphs as a share of the cell's and their ink's purity (0 unless
    ``glyphs``)."""
    # A badge that fills much of its cell would be one big blob touching the
    # sides; its number is inside it.
    cell = unwrap_badge(cell)
    h, w = cell.shape[:2]
    # Rules and fill edges run along the cell's sides: look inside them.
    my, mx = max(1, round(0.12 * h)), max(1, round(0.12 * w))
    inner = cell[my : h - my, mx : w - mx]
    if inner.size < 12:
        return "blank", 0.0, 0.0
    off = _flattened(inner)
    level = np.abs(off)
    # The contrast of the cell's inkiest pixels, past a few of JPEG's outliers.
    top = level.size - 1 - level.size // 200
    peak = float(np.partition(level.ravel(), top)[top])
    on = level >= min(_INK_STEP, max(_MIN_INK_STEP, 0.5 * peak))
    count = int(np.count_nonzero(on))
    share = count / on.size
    if share > 0.45:
        return "messy", 0.0, 0.0
    # Every inked pixel is off the ground one way or the other (never 0).
    pure = abs(2 * int(np.count_nonzero(off[on] > 0)) - count) / count if count else 0.0
    n, _, stats, _ = components(on.view(np.uint8))
    if share < 0.01:
        # Dust is no glyph; but a number in a roomy cell (14 px text in an
        # 86 x 300 px cell) is under 1% too, and its strokes are tall.
        kind, height = _sparse_kind(stats[1:], inner.shape, h)
        return kind, height, pure if kind == "glyphs" else 0.0
    marks = stats[1:][stats[1:, cv2.CC_STAT_AREA] >= max(2, 0.002 * inner.size)]
    specks = n - 1 - len(marks)
    ih, iw = inner.shape
    marks = marks[~_rule_pieces(marks, iw, ih)]
    if len(marks) == 0:
        return "blank" if specks <= 3 else "messy", 0.0, 0.0
    if len(marks) > 6 or specks > 6:
        return "messy", 0.0, 0.0
    x0 = int(marks[:, cv2.CC_STAT_LEFT].min())
    y0 = int(marks[:, cv2.CC_STAT_TOP].min())
    x1 = int((marks[:, cv2.CC_STAT_LEFT] + marks[:, cv2.CC_STAT_WIDTH]).max())
    y1 = int((marks[:, cv2.CC_STAT_TOP] + marks[:, cv2.CC_STAT_HEIGHT]).max())
    touched = (x0 == 0) + (y0 == 0) + (x1 == iw) + (y1 == ih)
    if touched >= 3:
        return "messy", 0.0, 0.0
    if y1 - y0 < _MIN_GLYPH_SHARE * h:
        # A speck or a broken dash, not a number (the smallest screen text
        # is a third of its cell).
        return "blank" if specks <= 3 else "messy", 0.0, 0.0
    return "glyphs", (y1 - y0) / h, pure


def _sparse_kind(stats: np.ndarray, shape: tuple[int, ...], cell_h: int) -> tuple[str, float]:
    """A cell (``cell_h`` tall, inside ``shape``) with under 1% ink: ``glyphs``
    when its ink is a few tall marks together (one number's strokes), else
    ``blank``."""
    ih, iw = shape[0], shape[1]
    tall = stats[
        (stats[:, cv2.CC_STAT_HEIGHT] >= max(5, 0.08 * ih)) & (stats[:, cv2.CC_STAT_AREA] >= 4)
    ]
    tall = tall[~_rule_pieces(tall, iw, ih)]
    if not 1 <= len(tall) <= 6:
        return "blank", 0.0
    y0 = int(tall[:, cv2.CC_STAT_TOP].min())
    y1 = int((tall[:, cv2.CC_STAT_TOP] + tall[:, cv2.CC_STAT_HEIGHT]).max())
    x0 = int(tall[:, cv2.CC_STAT_LEFT].min())
    x1 = int((tall[:, cv2.CC_STAT_LEFT] + tall[:, cv2.CC_STAT_WIDTH]).max())
    # One number: its marks share a line and lie close together.
    if y1 - y0 > 0.5 * ih or x1 - x0 > 4 * (y1 - y0):
        return "blank", 0.0
    return "glyphs", (y1 - y0) / cell_h


def _rule_pieces(marks: np.ndarray, iw: int, ih: int) -> np.ndarray:
    """Marks that are a rule running along a side of the cell (an edge placed
    a few pixels off the ruling, in a photo or a scan) or a flat dash, not
    text."""
    x, y = marks[:, cv2.CC_STAT_LEFT], marks[:, cv2.CC_STAT_TOP]
    w, h = marks[:, cv2.CC_STAT_WIDTH], marks[:, cv2.CC_STAT_HEIGHT]
    along_x = (w >= 0.6 * iw) & (h <= 0.25 * ih) & ((y == 0) | (y + h == ih))
    along_y = (h >= 0.6 * ih) & (w <= 0.25 * iw) & ((x == 0) | (x + w == iw))
    # A flat dash across the cell is a faint rule or a shadow's edge: the
    # numbers 0-36 have no such glyph (a "1" is upright, a "7" tall).
    flat = (h <= 2) & (w >= 4 * h)
    return np.asarray(along_x | along_y | flat)


def _flattened(cell: np.ndarray) -> np.ndarray:
    """The cell's grey levels off its background, a plane fitted over it: the
    soft edge of a shadow or a light gradient across a cell is no ink."""
    h, w = cell.shape
    middle = _median(cell.ravel())
    v = cell.astype(np.float64)
    # Fitted to the background only: ink pixels would tilt the plane.
    paper = (cell > middle - _INK_STEP) & (cell < middle + _INK_STEP)
    n = int(np.count_nonzero(paper))
    if n < 8:
        return v - middle
    # Least squares by its normal equations: a 3x3 system from a few sums,
    # the same plane as a general solver's, several times faster per cell.
    # Every sum is of whole numbers, exact in any order.
    x = np.arange(w, dtype=np.float64) / w
    y = np.arange(h, dtype=np.float64) / h
    weight = paper.astype(np.float64)
    cols, rows = weight.sum(axis=0), weight.sum(axis=1)
    pv = v * weight
    pv_cols = pv.sum(axis=0)
    sx, sy = cols @ x, rows @ y
    sxy = y @ weight @ x
    normal = np.array([[n, sx, sy], [sx, cols @ (x * x), sxy], [sy, sxy, rows @ (y * y)]])
    rhs = np.array([pv_cols.sum(), pv_cols @ x, pv.sum(axis=1) @ y])
    try:
        c0, cx, cy = np.linalg.solve(normal, rhs)
    except np.linalg.LinAlgError:
        # Paper in one row or column only: no plane to fit, the level will do.
        return v - middle
    res = v - (c0 + cx * x[None, :] + cy * y[:, None])
    return res - _median(res[paper])


def _median(values: np.ndarray) -> float:
    """``np.median`` of a flat array, without its checks (it runs twice per
    sampled cell)."""
    k = values.size // 2
    if values.size % 2:
        return float(np.partition(values, k)[k])
    low, high = np.partition(values, (k - 1, k))[k - 1 : k + 1]
    return (float(low) + float(high)) / 2


def check_cells(gray: np.ndarray, ys: list[int], xs: list[int]) -> None:
    """Refuse a lattice whose cells do not look like a number table's.

    Args:
        gray: the picture in the grid's rectified frame, gray.
        ys, xs: the grid's row and column edges as pixel indices into it.

    Raises:
        NoTableError: most cells are crowded with specks (noise, dithering,
            texture), fewer than two hold a glyph (or fewer than half, in a
            table of one row or column), or the marks in the cells
            are of no common size (numbers of one table share a type size;
            the patches a photograph leaves in its cells do not), or are
            lighter and darker than their cells at once, or too small to
            be print.
    """
    ev = cell_evidence(gray, ys, xs)
    if ev.messy > _MAX_MESSY * ev.cells:
        raise NoTableError(
            f"no table found (texture: {ev.messy} of {ev.cells} cells crowded with specks)"
        )
    # A single line has no lattice to vouch for it: it must be mostly
    # numbers (a strip of texture holds a glyph-like patch here and there).
    single = len(ys) == 2 or len(xs) == 2
    if ev.glyphs < 2 or (single and 2 * ev.glyphs < ev.cells):
        raise NoTableError(f"no table found ({ev.glyphs} of {ev.cells} cells hold a glyph)")
    size = float(np.median(ev.pixels))
    if size < _MIN_GLYPH_PX:
        raise NoTableError(f"no table found (marks in the cells {size:.1f} px tall, too small)")
    heights = np.asarray(ev.heights)
    spread = float(heights.std() / heights.mean())
    if spread > _MAX_HEIGHT_SPREAD:
        raise NoTableError(
            f"no table found (marks in the cells vary in height by {spread:.0%}, not one type size)"
        )
    purity = float(np.mean(ev.purity))
    if purity < _MIN_PURITY:
        raise NoTableError(
            f"no table found (marks in the cells are lighter and darker than their ground at "
            f"once, purity {purity:.2f}, not print)"
        )
