"""The one crop-preprocessing function.

Training (synthetic and hand-labelled cells), inference and the labeller all call
:func:`prepare_crop`, so what the network sees in training is exactly what it sees
in service.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

INPUT_SIZE: tuple[int, int] = (32, 48)
"""Default network input, ``(height, width)``: wide enough for two digits."""

_MIN_CONTRAST = 28.0
_PAD = 2
_SMALL = 28
_JOIN = np.ones((3, 3), np.uint8)
# Up to these many pixels a partial sort, then a 256-bin histogram, is the
# quickest quantile.
_SORT_MAX_PX = 2_500
_HISTOGRAM_MAX_PX = 65_536


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
    gray = to_gray(crop)
    h, w = gray.shape
    if h < 3 or w < 3:
        return canvas
    if h < _SMALL:
        # Tiny screen text: thresholds and components behave far better on a
        # smooth upsampled copy than on 6 px blobs.
        f = min(4.0, _SMALL / h)
        gray = cv2.resize(gray, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
        h, w = gray.shape
    # Histograms of uint8 images give the median and percentiles far faster
    # than sorting, and this runs for every cell.
    bg = quantile_u8(gray, 0.5)
    ink8 = cv2.absdiff(gray, np.full_like(gray, bg))
    ink = ink8.astype(np.float32)
    # Ruling along the edges is erased before the contrast is measured: a dark
    # rule must not set the scale and wash out light pencil or thin white text.
    _erase_edge_rules(ink, max(_MIN_CONTRAST, 0.25 * float(ink8.max())))
    contrast = float(quantile_u8(ink.astype(np.uint8), 0.995))
    if contrast < _MIN_CONTRAST:
        return canvas
    # Ink is never negative: only the top needs clipping.
    ink = np.minimum(ink * (1.0 / contrast), 1.0)
    # Hysteresis: a faint pencil stroke is kept whole as long as some of it is
    # clearly ink, instead of breaking into specks at a single threshold.
    mask = (ink > 0.3).astype(np.uint8)

    n, labels, stats = _joined_components(mask)
    if n <= 1:
        return canvas
    strong = np.zeros(n, bool)
    strong[labels[ink > 0.55]] = True
    areas = stats[1:, cv2.CC_STAT_AREA]
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    biggest = float(areas.max())
    # Glyph parts are tall, or at least a real share of the largest glyph; specks
    # of noise and JPEG ringing are neither.
    keep = (areas >= max(2.0, 0.08 * biggest)) & ((heights >= 0.22 * h) | (areas >= 0.25 * biggest))
    keep &= ~((heights <= 2) & (widths <= 2)) & strong[1:]
    keep &= ~_rule_fragments(stats[1:], h, w)
    if not keep.any():
        return canvas
    kept = np.flatnonzero(keep) + 1
    # The box reaches a pixel past the thresholded ink, so the anti-aliased
    # edge kept below is not cut off (it is a real share of a 5 px digit).
    x0 = max(0, int(stats[kept, cv2.CC_STAT_LEFT].min()) - 1)
    y0 = max(0, int(stats[kept, cv2.CC_STAT_TOP].min()) - 1)
    x1 = min(w, int((stats[kept, cv2.CC_STAT_LEFT] + stats[kept, cv2.CC_STAT_WIDTH]).max()) + 1)
    y1 = min(h, int((stats[kept, cv2.CC_STAT_TOP] + stats[kept, cv2.CC_STAT_HEIGHT]).max()) + 1)
    # Keep anti-aliased edges of the kept glyphs, drop everything else.
    lut = np.zeros(n, np.uint8)
    lut[kept] = 1
    keep_mask = cv2.dilate(lut[labels[y0:y1, x0:x1]], np.ones((3, 3), np.uint8))
    glyph = ink[y0:y1, x0:x1] * keep_mask
    gh, gw = glyph.shape
    scale = min((out_h - 2 * _PAD) / gh, (out_w - 2 * _PAD) / gw)
    nh, nw = max(1, round(gh * scale)), max(1, round(gw * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(glyph, (nw, nh), interpolation=interp)
    top, left = (out_h - nh) // 2, (out_w - nw) // 2
    # Resampling rounds a hair past 1.0 now and then; the range is part of the contract.
    canvas[top : top + nh, left : left + nw] = np.clip(small, 0.0, 1.0)
    return canvas


def _joined_components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Connected components of ``mask``, pieces a pixel apart counted as one.

    A thin pencil stroke breaks up at the ink threshold, and so do 5 px screen
    digits once upsampled; judged piece by piece (size, height), the pieces of
    a "1" were each too small and the "1" was dropped ("16" read as "6"). Pieces
    are grouped by the components of the mask grown by a pixel; the stats are
    those of the mask's own pixels, as ``connectedComponentsWithStats`` gives.

    Returns:
        ``(n, labels, stats)`` like ``cv2.connectedComponentsWithStats``.
    """
    n0, pieces, st0, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n0 <= 2:
        return n0, pieces, st0
    n, grown = cv2.connectedComponents(cv2.dilate(mask, _JOIN), connectivity=8)
    if n == n0:
        return n0, pieces, st0
    group = np.zeros(n0, np.int32)
    on = mask > 0
    group[pieces[on]] = grown[on]
    # Columns 0-3 of the stats are left, top, width, height; 4 is the area.
    corner, size = st0[1:, :2], st0[1:, 2:4]
    lo = np.full((n, 2), np.iinfo(np.int32).max, np.int32)
    hi = np.zeros((n, 2), np.int32)
    np.minimum.at(lo, group[1:], corner)
    np.maximum.at(hi, group[1:], corner + size)
    stats = np.empty((n, 5), np.int32)
    stats[0] = st0[0]
    stats[1:, :2] = lo[1:]
    stats[1:, 2:4] = hi[1:] - lo[1:]
    stats[1:, 4] = np.bincount(group[1:], weights=st0[1:, 4], minlength=n)[1:]
    return n, group[pieces], stats


def quantile_u8(img: np.ndarray, q: float) -> int:
    """The ``q`` quantile of a uint8 image, exactly: the smallest value that at
    least ``q`` of the pixels do not exceed.

    For a small crop a partial sort is quickest, for a bigger one a 256-bin
    histogram; for a whole page, eight thresholded counts beat both several
    times over.
    """
    target = q * img.size
    if target <= 0:
        return 0
    if img.size <= _SORT_MAX_PX:
        # The value of rank ceil(target) in sorted order (1-based).
        k = math.ceil(target) - 1
        return int(np.partition(img.ravel(), k)[k])
    if img.size <= _HISTOGRAM_MAX_PX:
        counts = np.bincount(img.ravel(), minlength=256)
        return int(np.searchsorted(np.cumsum(counts), target))
    lo, hi = 0, 255
    while lo < hi:
        mid = (lo + hi) // 2
        above = cv2.threshold(img, mid, 1, cv2.THRESH_BINARY)[1]
        if img.size - cv2.countNonZero(above) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _rule_fragments(stats: np.ndarray, h: int, w: int) -> np.ndarray:
    """Components that are bits of ruling: thin, and either running from one
    side of the crop to the opposite one (a digit never spans the whole cell),
    or lying along an edge and entering from a corner side, as a rule does when
    the cut is a little off the rule's angle (a skewed scan)."""
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    cw, ch = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    left, right = x <= 1, x + cw >= w - 1
    top, bottom = y <= 1, y + ch >= h - 1
    flat, narrow = ch <= max(3, 0.15 * h), cw <= max(3, 0.15 * w)
    horizontal = flat & ((left & right) | ((top | bottom) & (left | right) & (cw >= 0.4 * w)))
    vertical = narrow & ((top & bottom) | ((left | right) & (top | bottom) & (ch >= 0.5 * h)))
    return horizontal | vertical


def _erase_edge_rules(ink: np.ndarray, threshold: float) -> None:
    """Blank ruling that runs along the crop's edges.

    A rule crosses the whole crop and is thin; a digit near the edge is
    neither, so only thin runs of rows (or columns) inked along nearly their
    whole length, within the outer bands, are erased. ``threshold`` is low (a
    quarter of the strongest ink) so faint and JPEG-blurred rules count too.
    """
    h, w = ink.shape
    mask = cv2.threshold(ink, threshold, 1.0, cv2.THRESH_BINARY)[1]
    # A rule drifting by a pixel across the crop still fills its rows when
    # each row may borrow from its neighbours.
    row_ink = cv2.reduce(cv2.dilate(mask, _ACROSS_ROWS), 1, cv2.REDUCE_SUM)
    col_ink = cv2.reduce(cv2.dilate(mask, _ACROSS_COLS), 0, cv2.REDUCE_SUM)
    for a, b in _edge_rules((row_ink[:, 0] / w >= _FULL).tolist(), h):
        ink[a:b, :] = 0.0
    for a, b in _edge_rules((col_ink[0] / h >= _FULL).tolist(), w):
        ink[:, a:b] = 0.0


_ACROSS_ROWS = np.ones((3, 1), np.uint8)
_ACROSS_COLS = np.ones((1, 3), np.uint8)
_FULL = 0.85


def _edge_rules(full: list[bool], n: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of the rule-like runs of full rows (or columns) in
    the outer quarters. Plain Python: the profiles are a few dozen long."""
    band = max(1, round(n * 0.25))
    thick = max(3, round(n * 0.15))
    out = []
    for lo, hi in ((0, band), (n - band, n)):
        i = lo
        while i < hi:
            if not full[i]:
                i += 1
                continue
            j = i
            while j + 1 < hi and full[j + 1]:
                j += 1
            # A thick run is a glyph, not a rule. The fill was measured on the
            # mask grown by a row each way (drift), so a run is two rows longer
            # than the ink that made it.
            if j - i - 1 <= thick:
                out.append((max(0, i - 1), min(n, j + 2)))
            i = j + 1
    return out


def quantise(prepared: np.ndarray) -> np.ndarray:
    """Prepared crops as uint8 ``0..255``: how they travel between processes and
    are kept in memory (a quarter of the float32 bytes)."""
    return np.rint(prepared * 255.0).astype(np.uint8)


def dequantise(prepared: np.ndarray) -> np.ndarray:
    """The network's float32 ``[0, 1]`` input from :func:`quantise`'s uint8,
    or float crops unchanged.

    :func:`prepare_batch` already rounds its floats to these steps, so a
    round trip changes nothing.
    """
    if prepared.dtype == np.uint8:
        return prepared.astype(np.float32) / np.float32(255.0)
    return prepared.astype(np.float32, copy=False)


def prepare_batch(crops: Sequence[np.ndarray], size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """:func:`prepare_crop` over many crops, stacked as ``(N, H, W, 1)`` float32.

    The values are rounded to steps of 1/255 (:func:`quantise`): crops travel
    and are stored as uint8, so every path into the network (synthetic and
    labelled training cells, serving) sees exactly the same values.
    """
    out = np.zeros((len(crops), size[0], size[1], 1), np.float32)
    for i, c in enumerate(crops):
        out[i, :, :, 0] = prepare_crop(c, size)
    return dequantise(quantise(out))
