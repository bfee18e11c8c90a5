"""The one crop-preprocessing function.

Training (synthetic and hand-labelled cells), inference and the labeller all call
:func:`prepare_crop`, so what the network sees in training is exactly what it sees
in service.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

INPUT_SIZE: tuple[int, int] = (32, 48)
"""Default network input, ``(height, width)``: wide enough for two digits."""

_MIN_CONTRAST = 28.0
_PAD = 2


def to_gray(img: np.ndarray) -> np.ndarray:
    """Luminance of an RGB (or already gray) uint8 image."""
    if img.ndim == 2:
        return img
    if img.shape[2] == 4:
        img = img[:, :, :3]
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def prepare_crop(crop: np.ndarray, size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """Normalise one cell crop into the network's input.

    Polarity, colour, cell size and text position are all removed: the result is
    ink-as-bright on black, the ink's bounding box scaled to fill the canvas with
    its aspect kept. Ruling fragments along the crop's edges are erased first,
    so neighbouring lines do not count as ink. A crop with no real ink comes out
    all zero.

    Args:
        crop: ``HxW`` gray or ``HxWx3`` RGB uint8 cell image.
        size: ``(height, width)`` of the output.

    Returns:
        float32 array of shape ``size`` with values in ``[0, 1]``.
    """
    out_h, out_w = size
    canvas = np.zeros((out_h, out_w), np.float32)
    gray = to_gray(crop).astype(np.float32)
    h, w = gray.shape
    if h < 3 or w < 3:
        return canvas
    bg = float(np.median(gray))
    ink = np.abs(gray - bg)
    # Ruling along the edges is erased before the contrast is measured: a dark
    # rule must not set the scale and wash out light pencil or thin white text.
    _erase_edge_rules(ink, max(_MIN_CONTRAST, 0.25 * float(ink.max())))
    contrast = float(np.percentile(ink, 99.5))
    if contrast < _MIN_CONTRAST:
        return canvas
    ink = np.clip(ink / contrast, 0.0, 1.0)
    mask = (ink > 0.5).astype(np.uint8)

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return canvas
    areas = stats[1:, cv2.CC_STAT_AREA]
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    biggest = float(areas.max())
    # Glyph parts are tall, or at least a real share of the largest glyph; specks
    # of noise and JPEG ringing are neither.
    keep = (areas >= max(2.0, 0.08 * biggest)) & ((heights >= 0.22 * h) | (areas >= 0.25 * biggest))
    keep &= ~((heights <= 2) & (widths <= 2))
    if not keep.any():
        return canvas
    kept = np.flatnonzero(keep) + 1
    x0 = int(stats[kept, cv2.CC_STAT_LEFT].min())
    y0 = int(stats[kept, cv2.CC_STAT_TOP].min())
    x1 = int((stats[kept, cv2.CC_STAT_LEFT] + stats[kept, cv2.CC_STAT_WIDTH]).max())
    y1 = int((stats[kept, cv2.CC_STAT_TOP] + stats[kept, cv2.CC_STAT_HEIGHT]).max())
    # Keep anti-aliased edges of the kept glyphs, drop everything else.
    keep_mask = cv2.dilate(
        np.isin(labels[y0:y1, x0:x1], kept).astype(np.uint8), np.ones((3, 3), np.uint8)
    )
    glyph = ink[y0:y1, x0:x1] * keep_mask
    gh, gw = glyph.shape
    scale = min((out_h - 2 * _PAD) / gh, (out_w - 2 * _PAD) / gw)
    nh, nw = max(1, round(gh * scale)), max(1, round(gw * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(glyph, (nw, nh), interpolation=interp)
    top, left = (out_h - nh) // 2, (out_w - nw) // 2
    canvas[top : top + nh, left : left + nw] = small
    return canvas


def _erase_edge_rules(ink: np.ndarray, threshold: float) -> None:
    """Blank rows/columns near the crop's edges that are mostly ink (ruling).

    ``threshold`` is low (a quarter of the strongest ink) so that faint and
    JPEG-blurred rules are caught as well as crisp ones.
    """
    h, w = ink.shape
    band_h, band_w = max(1, round(h * 0.22)), max(1, round(w * 0.22))
    mask = (ink > threshold).astype(np.uint8)
    # A rule that drifts by a pixel across the crop still fills its rows when
    # each row may borrow from its neighbours.
    row_fill = cv2.dilate(mask, np.ones((3, 1), np.uint8)).mean(axis=1)
    col_fill = cv2.dilate(mask, np.ones((1, 3), np.uint8)).mean(axis=0)
    for rows in (slice(0, band_h), slice(h - band_h, h)):
        ink[_with_neighbours(np.flatnonzero(row_fill[rows] >= 0.55) + (rows.start or 0), h), :] = (
            0.0
        )
    for cols in (slice(0, band_w), slice(w - band_w, w)):
        ink[:, _with_neighbours(np.flatnonzero(col_fill[cols] >= 0.55) + (cols.start or 0), w)] = (
            0.0
        )


def _with_neighbours(hit: np.ndarray, n: int) -> np.ndarray:
    return np.unique(np.clip(np.concatenate([hit - 1, hit, hit + 1]), 0, n - 1))


def prepare_batch(crops: Sequence[np.ndarray], size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """:func:`prepare_crop` over many crops, stacked as ``(N, H, W, 1)`` float32."""
    out = np.zeros((len(crops), size[0], size[1], 1), np.float32)
    for i, c in enumerate(crops):
        out[i, :, :, 0] = prepare_crop(c, size)
    return out
