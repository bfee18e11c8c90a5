"""From a found grid to cell boxes and cell crops."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from gridreader.grid.rectify import frame_to_image, warp_bent, warp_to_rectified
from gridreader.types import CellBox, Grid


def cell_boxes(grid: Grid) -> list[CellBox]:
    """Every cell's box in input-image pixels, row-major: the bounding box of
    its four corners mapped back into the image."""
    xs, ys = np.asarray(grid.col_edges, np.float64), np.asarray(grid.row_edges, np.float64)
    x0, y0 = np.meshgrid(xs[:-1], ys[:-1])
    x1, y1 = np.meshgrid(xs[1:], ys[1:])
    if grid.bend is None:
        corners = np.stack([x0, y0, x1, y0, x1, y1, x0, y1], axis=-1).reshape(1, -1, 2)
        img = cv2.perspectiveTransform(corners, grid.to_image).reshape(-1, 4, 2)
    else:
        # On a sagging page the sides curve: follow them, not just the corners.
        t = np.linspace(0.0, 1.0, 5)[:, None, None]
        pts = np.concatenate(
            [
                np.stack([x0 + (x1 - x0) * t, y0 + 0 * t], -1),
                np.stack([x0 + (x1 - x0) * t, y1 + 0 * t], -1),
                np.stack([x0 + 0 * t, y0 + (y1 - y0) * t], -1),
                np.stack([x1 + 0 * t, y0 + (y1 - y0) * t], -1),
            ]
        )
        img = frame_to_image(grid, pts.reshape(-1, 2)).reshape(20, -1, 2).transpose(1, 0, 2)
    lo = np.floor(img.min(axis=1)).astype(int)
    hi = np.ceil(img.max(axis=1)).astype(int)
    return [
        CellBox(k // grid.cols, k % grid.cols, (int(a), int(b), int(c), int(d)))
        for k, (a, b, c, d) in enumerate(np.hstack([lo, hi]).tolist())
    ]


def rectify_image(image: np.ndarray, grid: Grid) -> np.ndarray:
    """The input image resampled into the grid's full-resolution rectified frame."""
    if grid.bend is not None:
        return warp_bent(image, grid)
    if np.allclose(grid.to_image, np.eye(3), atol=1e-9):
        return image
    return warp_to_rectified(image, np.linalg.inv(grid.to_image), grid.rectified_size)


def cut_cells(rectified: np.ndarray, grid: Grid) -> list[np.ndarray]:
    """Crops of every cell from the rectified image, row-major."""
    ys, xs = cell_cuts(rectified.shape[:2], grid)
    return [cut_cell(rectified, ys, xs, r, c) for r in range(grid.rows) for c in range(grid.cols)]


def cell_cuts(shape: tuple[int, ...], grid: Grid) -> tuple[list[int], list[int]]:
    """The grid's row and column edges as pixel indices into a rectified image
    of ``shape``."""
    h, w = shape[:2]
    ys = [min(h, max(0, round(v))) for v in grid.row_edges]
    xs = [min(w, max(0, round(v))) for v in grid.col_edges]
    return ys, xs


def cut_cell(image: np.ndarray, ys: Sequence[int], xs: Sequence[int], r: int, c: int) -> np.ndarray:
    """Cell ``(r, c)`` of ``image`` between the pixel edges ``ys`` and ``xs``
    (a pixel at least each way)."""
    return image[ys[r] : max(ys[r] + 1, ys[r + 1]), xs[c] : max(xs[c] + 1, xs[c + 1])]
