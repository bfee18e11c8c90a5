"""Pictures for people: cells drawn over the input image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from gridreader.types import CellBox


def draw_cells(image: np.ndarray, cells: Sequence[CellBox]) -> np.ndarray:
    """A copy of ``image`` with every cell outlined, alternating two colours so
    that neighbouring cells stay distinguishable."""
    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 800))
    for c in cells:
        x0, y0, x1, y1 = c.box
        colour = (230, 30, 200) if (c.row + c.col) % 2 else (20, 170, 250)
        cv2.rectangle(out, (x0 + 1, y0 + 1), (x1 - 2, y1 - 2), colour, thick)
    return out
