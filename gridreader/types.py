"""Frozen dataclasses that carry data between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in input-image pixels, x1/y1 exclusive."""

Shape = tuple[int, int]
"""``(rows, cols)`` of a table."""

_MAX_SIDE = 10_000


def parse_shape(text: str) -> Shape:
    """``"8x15"`` -> ``(8, 15)``: rows and columns, each from 1 to 10000, two cells at least.

    Raises:
        ValueError: not of the form ``ROWSxCOLS``, or out of range.
    """
    parts = text.strip().lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"expected ROWSxCOLS, e.g. 8x15: {text!r}")
    rows, cols = int(parts[0]), int(parts[1])
    if not (1 <= rows <= _MAX_SIDE and 1 <= cols <= _MAX_SIDE) or rows * cols < 2:
        raise ValueError(
            f"expected 1 to {_MAX_SIDE} rows and columns, two cells at least: {text!r}"
        )
    return rows, cols


@dataclass(frozen=True)
class CellBox:
    """One cell of a grid: where it is and where it sits in the table."""

    row: int
    col: int
    box: Box


@dataclass(frozen=True)
class PageBend:
    """The sag of a photographed page, in a grid's rectified frame.

    The outline's sides, straight at ``box``, are parabolas on the page:
    ``top``/``bottom`` give the y offset as a function of x, ``left``/``right``
    the x offset as a function of y (``numpy.polyval`` coefficients).
    """

    box: tuple[float, float, float, float]
    top: tuple[float, float, float]
    bottom: tuple[float, float, float]
    left: tuple[float, float, float]
    right: tuple[float, float, float]


@dataclass(frozen=True)
class Grid:
    """A table found in an image.

    The grid is stored as row and column boundary lines in a *rectified* frame
    (the table deskewed and made axis-aligned), plus the homography that maps
    rectified coordinates back to the input image. For a straight screenshot the
    homography is the identity.

    Attributes:
        row_edges: ``rows + 1`` increasing y positions in the rectified frame.
        col_edges: ``cols + 1`` increasing x positions in the rectified frame.
        to_image: 3x3 homography, rectified frame -> input image.
        rectified_size: ``(width, height)`` of the rectified frame.
        style: how the table was found: ``structured`` (rules, fills), ``text``,
            or ``page`` (the cell boxes a capture recorded from the page).
        bend: a photographed page's sag, applied in the rectified frame before
            ``to_image`` (``None`` for flat pictures).
    """

    row_edges: tuple[float, ...]
    col_edges: tuple[float, ...]
    to_image: np.ndarray = field(repr=False, compare=False)
    rectified_size: tuple[int, int]
    style: str = "structured"
    bend: PageBend | None = None

    @property
    def rows(self) -> int:
        return len(self.row_edges) - 1

    @property
    def cols(self) -> int:
        return len(self.col_edges) - 1

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols


@dataclass(frozen=True)
class CellRead:
    """The classifier's reading of one cell."""

    row: int
    col: int
    box: Box
    value: int | None
    confidence: float


@dataclass(frozen=True)
class TableRead:
    """A whole table as read: shape, cells in row-major order, and the model used."""

    rows: int
    cols: int
    cells: tuple[CellRead, ...]
    model: str

    def values(self) -> list[list[int | None]]:
        """The table as a list of rows."""
        out: list[list[int | None]] = [[None] * self.cols for _ in range(self.rows)]
        for c in self.cells:
            out[c.row][c.col] = c.value
        return out
