"""The one crop-preprocessing function.

Training (synthetic and hand-labelled cells), inference and the labeller all call
:func:`prepare_crop`, so what the network sees in training is exactly what it sees
in service.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from gridreader.imaging import components, to_gray, unwrap_badge

INPUT_SIZE: tuple[int, int] = (32, 48)
"""Default network input, ``(height, width)``: wide enough for two digits."""

_MIN_CONTRAST = 28.0
_PAD = 2
_SMALL = 28
# Pixels of the strongest ink that set a roomy crop's contrast; a thin "1"
# of 12 px type has only about 15, a small light number fewer still, and
# they are asked for their strongest few.
_STRONGEST_PX = 24
_FEWEST_PX = 8
# A ground 90% of whose pixels lie this close to its median is a rendered
# screen's: no grain there to mistake for ink.
_FLAT_GROUND = 2
# A number's mark is at least this tall (px, or share of the crop's height):
# a speck of dust or a dot is no number.
_MIN_MARK_PX = 5
_MIN_MARK_SHARE = 0.1
_JOIN = np.ones((3, 3), np.uint8)


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
    return _prepare_grays([to_gray(crop)], size)[0]


def _prepare_grays(grays: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """:func:`prepare_crop` of many gray crops, ``(N, H, W)`` float32.

    Crops of about one size (most of a table's cells) are prepared together,
    as one zero-padded stack: every step is still each crop's own (its own
    median, contrast, components), but a few array operations serve the whole
    stack instead of a few dozen per crop.
    """
    out = np.zeros((len(grays), *size), np.float32)
    groups: dict[tuple[int, int], list[int]] = {}
    ready: dict[int, np.ndarray] = {}
    for i, gray in enumerate(grays):
        h, w = gray.shape
        if h < 3 or w < 3:
            continue
        # Tiny screen text: thresholds and components behave far better on a
        # smooth upsampled copy than on 6 px blobs. A badge is judged on that
        # copy too (a counter is convex there, not a staircase), and its inside
        # can be small again.
        gray = _upsample_small(gray)
        unwrapped = unwrap_badge(gray)
        if unwrapped is not gray:
            gray = _upsample_small(unwrapped)
        h, w = gray.shape
        ready[i] = gray
        # Sizes within 8 px share a stack: little padding, few stacks.
        groups.setdefault((h // 8, w // 8), []).append(i)
    for members in groups.values():
        out[members] = _prepare_stack([ready[i] for i in members], size)
    return out


def _prepare_stack(crops: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """:func:`prepare_crop` of gray crops of about one size, ``(N, *size)``."""
    out_h, out_w = size
    n_crops = len(crops)
    hs = np.array([c.shape[0] for c in crops], np.int64)
    ws = np.array([c.shape[1] for c in crops], np.int64)
    h, w = int(hs.max()), int(ws.max())
    out = np.zeros((n_crops, out_h, out_w), np.float32)
    bg = _quantiles_of(crops, 0.5).astype(np.uint8)[:, None, None]
    # Padded with each crop's own background: no ink there.
    gray = np.empty((n_crops, h, w), np.uint8)
    gray[...] = bg
    for i, c in enumerate(crops):
        gray[i, : c.shape[0], : c.shape[1]] = c
    ink8 = np.maximum(gray, bg) - np.minimum(gray, bg)
    # Ruling along the edges is erased before the contrast is measured: a dark
    # rule must not set the scale and wash out light pencil or thin white text.
    rule_ink = np.maximum(_MIN_CONTRAST, 0.25 * ink8.reshape(n_crops, -1).max(axis=1))
    _erase_edge_rules(ink8, ink8 > rule_ink[:, None, None], hs, ws)
    # The contrast is that of the strongest ink, the top half percent of the
    # pixels. One number in a roomy cell is less than that: where the half
    # percent holds no ink, its strongest few pixels are asked instead.
    views = [ink8[i, : c.shape[0], : c.shape[1]] for i, c in enumerate(crops)]
    contrast = _quantiles_of(views, 0.995)
    sparse = np.flatnonzero((contrast < _MIN_CONTRAST) & (hs * ws > _FEWEST_PX))
    if sparse.size:
        contrast[sparse] = _sparse_contrast([views[i] for i in sparse.tolist()])
    live = np.flatnonzero(contrast >= _MIN_CONTRAST)
    if live.size == 0:
        return out
    hs, ws = hs[live], ws[live]
    # float32 steps, as for a single float32 crop scaled by a Python float.
    scale = (1.0 / contrast[live]).astype(np.float32)
    # Ink is never negative: only the top needs clipping.
    ink = np.minimum(ink8[live].astype(np.float32) * scale[:, None, None], 1.0)
    n_live = live.size
    # Hysteresis: a faint pencil stroke is kept whole as long as some of it is
    # clearly ink, instead of breaking into specks at a single threshold. The
    # crops are labelled together, stacked with three blank rows between them:
    # even grown by a pixel (see _joined_components) they never touch.
    pitch = h + 3
    mosaic = np.zeros((n_live, pitch, w), np.uint8)
    mosaic[:, :h] = ink > 0.3
    n, labels, stats = _joined_components(mosaic.reshape(n_live * pitch, w))
    if n <= 1:
        return out
    labels = labels.reshape(n_live, pitch, w)[:, :h]
    strong = np.zeros(n, bool)
    strong[labels[ink > 0.55]] = True
    comp = stats[1:].copy()
    owner = comp[:, cv2.CC_STAT_TOP] // pitch
    comp[:, cv2.CC_STAT_TOP] -= owner * pitch
    areas = comp[:, cv2.CC_STAT_AREA]
    heights = comp[:, cv2.CC_STAT_HEIGHT]
    widths = comp[:, cv2.CC_STAT_WIDTH]
    rules = _rule_fragments(comp, hs[owner], ws[owner])
    # The largest glyph sets the bar for the others; a rule is no glyph (a
    # faint rule the edge erasure left, along a roomy cell, outweighs the
    # small number in it).
    biggest = np.zeros(n_live, np.float64)
    np.maximum.at(biggest, owner[~rules], areas[~rules])
    big = biggest[owner]
    # Glyph parts are tall, or at least a real share of the largest glyph; specks
    # of noise and JPEG ringing are neither.
    tall = heights >= 0.22 * hs[owner]
    keep = (areas >= np.maximum(2.0, 0.08 * big)) & (tall | (areas >= 0.25 * big))
    keep &= ~((heights <= 2) & (widths <= 2)) & strong[1:] & ~rules
    keep &= ~_stray_dashes(comp, hs[owner], big)
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        return out
    # The box reaches a pixel past the thresholded ink, so the anti-aliased
    # edge kept below is not cut off (it is a real share of a 5 px digit).
    who, left, top = owner[kept], comp[kept, cv2.CC_STAT_LEFT], comp[kept, cv2.CC_STAT_TOP]
    x0, y0 = np.full(n_live, w, np.int64), np.full(n_live, h, np.int64)
    x1, y1 = np.zeros(n_live, np.int64), np.zeros(n_live, np.int64)
    np.minimum.at(x0, who, left)
    np.minimum.at(y0, who, top)
    np.maximum.at(x1, who, left + widths[kept])
    np.maximum.at(y1, who, top + heights[kept])
    # Keep anti-aliased edges of the kept glyphs, drop everything else.
    lut = np.zeros(n, np.uint8)
    lut[kept + 1] = 1
    kept_px = lut[labels]
    for j in np.unique(who).tolist():
        bx0, by0 = max(0, int(x0[j]) - 1), max(0, int(y0[j]) - 1)
        bx1, by1 = min(int(ws[j]), int(x1[j]) + 1), min(int(hs[j]), int(y1[j]) + 1)
        keep_mask = cv2.dilate(kept_px[j, by0:by1, bx0:bx1], _JOIN)
        glyph = ink[j, by0:by1, bx0:bx1] * keep_mask
        gh, gw = glyph.shape
        f = min((out_h - 2 * _PAD) / gh, (out_w - 2 * _PAD) / gw)
        nh, nw = max(1, round(gh * f)), max(1, round(gw * f))
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
        small = cv2.resize(glyph, (nw, nh), interpolation=interp)
        oy, ox = (out_h - nh) // 2, (out_w - nw) // 2
        # Resampling rounds a hair past 1.0 now and then; the range is part of
        # the contract.
        out[live[j], oy : oy + nh, ox : ox + nw] = np.clip(small, 0.0, 1.0)
    return out


def _sparse_contrast(views: list[np.ndarray]) -> np.ndarray:
    """The contrast of crops whose ink is under half a percent of their
    pixels (one number in a roomy cell), from their strongest pixels; 0
    where those are no number.

    The strongest two dozen must stand out clearly from paper grain (twice
    the least contrast). A thin "1" or a small light number has fewer: then
    its strongest eight will do, if they stand out as clearly or, on a flat
    ground (a rendered screen, where nothing but ink differs from it), are
    ink at all, and make a mark as tall as a digit, not a speck.
    """
    sizes = np.array([v.size for v in views], np.float64)
    many = _quantiles_of(views, np.clip(1.0 - _STRONGEST_PX / sizes, 0.0, 1.0))
    out = np.where((sizes > _STRONGEST_PX / 0.005) & (many >= 2 * _MIN_CONTRAST), many, 0)
    rest = np.flatnonzero(out == 0)
    if rest.size == 0:
        return out
    few = _quantiles_of([views[j] for j in rest.tolist()], 1.0 - _FEWEST_PX / sizes[rest])
    ground = _quantiles_of([views[j] for j in rest.tolist()], 0.9)
    ink = (few >= 2 * _MIN_CONTRAST) | ((ground <= _FLAT_GROUND) & (few >= _MIN_CONTRAST))
    for i in np.flatnonzero(ink).tolist():
        view = views[int(rest[i])]
        # Pieces a pixel apart are one mark (thin JPEG strokes break up).
        strong = cv2.dilate((view >= 0.5 * few[i]).astype(np.uint8), _JOIN)
        n, _, stats, _ = components(strong)
        tallest = int(stats[1:, cv2.CC_STAT_HEIGHT].max()) - 2 if n > 1 else 0
        if tallest >= max(_MIN_MARK_PX, _MIN_MARK_SHARE * view.shape[0]):
            out[rest[i]] = few[i]
    return out


def _upsample_small(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    if h >= _SMALL:
        return gray
    f = min(4.0, _SMALL / h)
    return cv2.resize(gray, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)


def _quantiles_of(images: list[np.ndarray], q: float | np.ndarray) -> np.ndarray:
    """:func:`gridreader.imaging.quantile_u8` of each of some small uint8 images (views will
    do), from OpenCV's histograms; ``q`` is one quantile, or one per image."""
    counts = np.stack([cv2.calcHist([im], [0], None, [256], [0, 256]).ravel() for im in images])
    sizes = np.array([im.size for im in images], np.float64)
    target = np.asarray(q, np.float64) * sizes
    return np.argmax(np.cumsum(counts, axis=1, dtype=np.float64) >= target[:, None], axis=1)


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
    n0, pieces, st0, _ = components(mask)
    if n0 <= 2:
        return n0, pieces, st0
    n, grown = cv2.connectedComponentsWithAlgorithm(
        cv2.dilate(mask, _JOIN), 8, cv2.CV_32S, cv2.CCL_GRANA
    )
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


def _rule_fragments(stats: np.ndarray, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Components that are bits of ruling: thin, and either running from one
    side of the crop to the opposite one (a digit never spans the whole cell),
    or lying along an edge and entering from a corner side, as a rule does when
    the cut is a little off the rule's angle (a skewed scan). ``h`` and ``w``
    are each component's crop size."""
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    cw, ch = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    left, right = x <= 1, x + cw >= w - 1
    top, bottom = y <= 1, y + ch >= h - 1
    flat, narrow = ch <= np.maximum(3, 0.15 * h), cw <= np.maximum(3, 0.15 * w)
    horizontal = flat & ((left & right) | ((top | bottom) & (left | right) & (cw >= 0.4 * w)))
    vertical = narrow & ((top & bottom) | ((left | right) & (top | bottom) & (ch >= 0.5 * h)))
    return horizontal | vertical


def _stray_dashes(stats: np.ndarray, h: np.ndarray, big: np.ndarray) -> np.ndarray:
    """Components that are a short flat dash near the top or bottom of the
    crop, apart from the glyphs: the curled end of a rounded or hand-drawn
    border (a theme's sketchy cell outline), never part of a digit (a "7" or
    a "5" keeps its bar joined to its stroke). ``h`` is each component's crop
    height, ``big`` the area of its crop's largest component."""
    y, ch = stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_HEIGHT]
    cw, area = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_AREA]
    flat = (ch <= np.maximum(3, 0.1 * h)) & (cw >= 3 * ch)
    outer = (y + ch <= 0.2 * h) | (y >= 0.8 * h)
    return np.asarray(flat & outer & (area < 0.5 * big))


def _erase_edge_rules(ink: np.ndarray, mask: np.ndarray, hs: np.ndarray, ws: np.ndarray) -> None:
    """Blank ruling that runs along the crops' edges, in place.

    A rule crosses the whole crop and is thin; a digit near the edge is
    neither, so only thin runs of rows (or columns) inked along nearly their
    whole length, within the outer bands, are erased.

    Args:
        ink: a zero-padded stack ``(N, h, w)`` of ink maps.
        mask: where each crop's ink is over its rule threshold (low, a quarter
            of its strongest ink, so faint and JPEG-blurred rules count too).
        hs: each crop's own height; ``ws`` its width.
    """
    # A rule drifting by a pixel across the crop still fills its rows when
    # each row may borrow from its neighbours.
    grown = mask.copy()
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    full_rows = np.count_nonzero(grown, axis=2) / ws[:, None] >= _FULL
    grown = mask.copy()
    grown[:, :, 1:] |= mask[:, :, :-1]
    grown[:, :, :-1] |= mask[:, :, 1:]
    full_cols = np.count_nonzero(grown, axis=1) / hs[:, None] >= _FULL
    for i in np.flatnonzero(full_rows.any(axis=1) | full_cols.any(axis=1)).tolist():
        h, w = int(hs[i]), int(ws[i])
        for a, b in _edge_rules(full_rows[i, :h].tolist(), h):
            ink[i, a:b, :] = 0
        for a, b in _edge_rules(full_cols[i, :w].tolist(), w):
            ink[i, :, a:b] = 0


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
    return dequantise(prepare_batch_u8(crops, size))


def prepare_batch_u8(crops: Sequence[np.ndarray], size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """:func:`prepare_batch` as uint8 (:func:`quantise`): how prepared crops
    travel between processes."""
    return quantise(_prepare_grays([to_gray(c) for c in crops], size)[..., None])
