"""Finding a cell crop inside its row strip, to highlight the cell's column.

The crop's ``box`` is in input-image pixels, but the strip may start anywhere in
the image (the table's left edge, a margin, the image's edge), so the crop is
found in the strip by matching pixels rather than by trusting an offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Mean squared grey difference per pixel still counted as "the same pixels":
# the crop and the strip come from the same image, so a real match is near 0.
_MAX_MSE = 60.0
# A second place this close to the best one makes the match ambiguous (blank cells).
_AMBIGUOUS_MSE = 4.0


@dataclass(frozen=True)
class StripSpot:
    """Where a crop lies in its strip, in strip pixels (x1 exclusive)."""

    x0: int
    x1: int
    width: int
    height: int


def locate_crop(crop_png: bytes, strip_png: bytes) -> StripSpot | None:
    """Find ``crop_png`` in ``strip_png``; ``None`` if absent or ambiguous."""
    crop = _decode_gray(crop_png)
    strip = _decode_gray(strip_png)
    if crop is None or strip is None:
        return None
    ch, cw = crop.shape
    sh, sw = strip.shape
    if ch > sh or cw > sw or ch * cw == 0:
        return None
    scores = cv2.matchTemplate(strip, crop, cv2.TM_SQDIFF)
    diff = np.asarray(scores, dtype=np.float32) / np.float32(ch * cw)
    _, _, (bx, by), _ = cv2.minMaxLoc(diff)
    best = float(diff[by, bx])
    if best > _MAX_MSE:
        return None
    others = diff.copy()
    lo, hi = max(0, bx - cw // 2), min(others.shape[1], bx + cw // 2 + 1)
    others[:, lo:hi] = np.inf
    if others.size and float(others.min()) <= best + _AMBIGUOUS_MSE:
        return None
    return StripSpot(x0=int(bx), x1=int(bx + cw), width=int(sw), height=int(sh))


def _decode_gray(data: bytes) -> np.ndarray | None:
    """Decode PNG bytes to float32 grey; crops may be smaller than load_image accepts."""
    if not data:
        return None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if arr is None or arr.ndim != 2:
        return None
    return arr.astype(np.float32)
