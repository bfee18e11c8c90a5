"""What a capture sidecar (``STEM.json`` beside ``STEM.png``) tells the grid search.

``gridreader capture`` records, beside each screenshot, the target's shape hint
(``shape``) and every cell's box as laid out by the browser (``cells``);
:mod:`gridreader.formats.shots` reads the file, this module judges it. A
sidecar made for this very image (same ``image_size``) gives the grid outright;
one made for another size is ignored with a warning, and an image without a
sidecar is searched as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gridreader.formats.shots import read_shot_layout, sidecar_path
from gridreader.types import Grid, Shape, parse_shape

# Cells of one row share their top and bottom, cells of one column their left
# and right; layout rounding moves them by a fraction of a pixel at most.
_ALIGN_PX = 1.5


@dataclass(frozen=True)
class PageHints:
    """What the sidecar of one image says.

    Attributes:
        grid: the table's grid from the page's own cell boxes, or None.
        shape: the shape hint to search with when ``grid`` is None.
        warnings: one-line messages naming the sidecar (it was ignored).
    """

    grid: Grid | None
    shape: Shape | None
    warnings: tuple[str, ...] = ()


def read_page_hints(image: Path, size: tuple[int, int], shape: Shape | None) -> PageHints:
    """The grid (or shape hint) the sidecar of ``image`` gives.

    Args:
        image: the image file.
        size: its ``(width, height)`` in pixels.
        shape: the caller's shape hint; it wins over the sidecar's, and the
            page's cells are used only when they have this shape.
    """
    path = sidecar_path(image)
    layout, unreadable = read_shot_layout(image)
    if unreadable:
        return PageHints(None, shape, (f"{path}: unreadable sidecar ignored ({unreadable})",))
    if layout is None:
        return PageHints(None, shape)
    w, h = size
    if not layout.made_for(size):
        return PageHints(
            None,
            shape,
            (
                f"{path}: made for a {layout.made_for_text()} image, {image.name} is {w}x{h}"
                "; sidecar ignored",
            ),
        )
    if shape is None and layout.shape is not None:
        try:
            shape = parse_shape(f"{layout.shape[0]}x{layout.shape[1]}")
        except ValueError:
            shape = None
    if layout.cells is None:
        return PageHints(None, shape)
    boxes, problem = layout.cell_boxes()
    grid, problem = _grid_from_boxes(boxes, size) if boxes is not None else (None, problem)
    if grid is None:
        return PageHints(None, shape, (f"{path}: cell boxes ignored ({problem})",))
    if shape is not None and grid.shape != shape:
        return PageHints(
            None,
            shape,
            (
                f"{path}: the page's table is {grid.rows}x{grid.cols}, not {shape[0]}x{shape[1]}"
                "; cell boxes ignored",
            ),
        )
    return PageHints(grid, shape)


def _grid_from_boxes(boxes: np.ndarray, size: tuple[int, int]) -> tuple[Grid | None, str]:
    """The grid whose edges are the page's cell boxes (``rows x cols x 4``), or
    ``(None, why not)``.

    Cells that touch share an edge; where the table leaves space between its
    cells (``border-spacing``), the edge runs through the middle of it.
    """
    w, h = size
    x0, y0, x1, y1 = (boxes[..., i] for i in range(4))
    if x0.min() < -_ALIGN_PX or y0.min() < -_ALIGN_PX or x1.max() > w + _ALIGN_PX:
        return None, "boxes outside the image"
    if y1.max() > h + _ALIGN_PX or (x1 <= x0).any() or (y1 <= y0).any():
        return None, "boxes outside the image or empty"
    if np.ptp(y0, axis=1).max() > _ALIGN_PX or np.ptp(y1, axis=1).max() > _ALIGN_PX:
        return None, "the cells of a row are not level"
    if np.ptp(x0, axis=0).max() > _ALIGN_PX or np.ptp(x1, axis=0).max() > _ALIGN_PX:
        return None, "the cells of a column are not aligned"
    rows = _edges(np.median(y0, axis=1), np.median(y1, axis=1), h)
    cols = _edges(np.median(x0, axis=0), np.median(x1, axis=0), w)
    if rows is None or cols is None:
        return None, "cells overlap"
    grid = Grid(
        row_edges=rows,
        col_edges=cols,
        to_image=np.eye(3),
        rectified_size=(w, h),
        style="page",
    )
    return grid, ""


def _edges(starts: np.ndarray, ends: np.ndarray, limit: int) -> tuple[float, ...] | None:
    if (starts[1:] < ends[:-1] - _ALIGN_PX).any():
        return None
    inner = (ends[:-1] + starts[1:]) / 2
    edges = np.clip(np.concatenate([[starts[0]], inner, [ends[-1]]]), 0.0, float(limit))
    if (np.diff(edges) <= 0).any():
        return None
    return tuple(float(v) for v in edges)
