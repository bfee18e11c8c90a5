"""Whole-image helpers shared by grid finding and crop preprocessing."""

from __future__ import annotations

import cv2
import numpy as np

# Up to this many pixels a 256-bin histogram is the quickest quantile.
_HISTOGRAM_MAX_PX = 65_536
# Grey-level step that is ink against a ground (as in crop preprocessing).
_BADGE_CONTRAST = 28.0


def to_gray(img: np.ndarray) -> np.ndarray:
    """Luminance of an RGB (or already gray) uint8 image."""
    if img.ndim == 2:
        return img
    if img.shape[2] == 4:
        img = img[:, :, :3]
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def squeeze_gray(image: np.ndarray) -> np.ndarray:
    """The one channel of a gray picture stored as three equal ones (most
    scans, many screenshots), else the image unchanged.

    Everything downstream comes out the same from either: luminance of equal
    channels is the channel itself, and a colour step is the largest step of
    any channel.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        return image
    # A sparse sample tells most colour pictures apart at once.
    sample = image[::16, ::16]
    if not (sample[..., 0] == sample[..., 1]).all() or not (sample[..., 1] == sample[..., 2]).all():
        return image
    a, b, c = cv2.split(image)
    if cv2.norm(a, b, cv2.NORM_INF) or cv2.norm(b, c, cv2.NORM_INF):
        return image
    return a


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats(mask, connectivity=8)``: the same
    labels, stats and centroids, by the Grana (BBDT) algorithm, two to three
    times faster on one thread than OpenCV's default choice."""
    n, labels, stats, centroids = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask, 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    return n, labels, stats, centroids


def quantile_u8(img: np.ndarray, q: float) -> int:
    """The ``q`` quantile of a uint8 image, exactly: the smallest value that at
    least ``q`` of the pixels do not exceed.

    For a small image a 256-bin histogram is quickest; for a whole page, eight
    thresholded counts beat it several times over.
    """
    target = q * img.size
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


def unwrap_badge(gray: np.ndarray) -> np.ndarray:
    """The inside of a badge (a filled pill, circle or box around the number,
    smaller than the cell or cut by its edges), or ``gray`` unchanged where
    there is none.

    Against the cell's background a badge is one solid blob, which the network
    reads as a "0". Inside it, filled out to its own colour, the digits are
    plain ink on a plain ground again, as in a cell filled edge to edge. A
    glyph is not taken for a badge: a round "0" fails on its aspect or on a
    counter that is a broad patch and much of the glyph, glyphs run together
    (a bold "28") on their notched outline, hand-drawn ink on its uneven tone.
    """
    h, w = gray.shape
    if h < 8 or w < 8:
        return gray
    pieces = _pieces_off(gray, quantile_u8(gray, 0.5))
    if pieces is None:
        return gray
    inside = _unwrap_in(gray, pieces, cut=False)
    if inside is not gray:
        return inside
    ground = _ground_beside_cut_badge(gray, pieces)
    if ground is None:
        return gray
    pieces = _pieces_off(gray, ground)
    return gray if pieces is None else _unwrap_in(gray, pieces, cut=True)


Pieces = tuple[int, np.ndarray, np.ndarray]
"""``(n, labels, stats)`` of a mask's connected components."""


def _pieces_off(gray: np.ndarray, level: int) -> Pieces | None:
    """The components of what clearly differs from grey ``level``, or
    ``None`` when that is too little to hold a badge (and not worth the
    search)."""
    h, w = gray.shape
    diff = cv2.absdiff(gray, np.full_like(gray, level))
    mask = (diff > max(_BADGE_CONTRAST, 0.25 * float(diff.max()))).astype(np.uint8)
    if cv2.countNonZero(mask) < _BADGE_COVER * h * w:
        return None
    n, labels, stats, _ = components(mask)
    return n, labels, stats


def _border_pixels(a: np.ndarray) -> np.ndarray:
    """The pixels along ``a``'s four sides, each once."""
    if a.shape[0] < 3 or a.shape[1] < 3:
        return a.ravel()
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def _ground_beside_cut_badge(gray: np.ndarray, pieces: Pieces) -> int | None:
    """The cell's ground when a badge over most of the cell (cut by its
    edges, as when the grid hugs left-aligned or full-width badges) set the
    median, or ``None``; ``pieces`` are what differs from the median.

    That ground is what differs along the crop's border: a real share of the
    crop, broad and flat; and the badge makes a real share of the border.
    Ruling along the sides is thin and rings the paper inside it; a
    photograph's ground is not flat.
    """
    h, w = gray.shape
    _, labels, stats = pieces
    # (Most cells, a number on its ground, stop here.)
    if int(stats[1:, cv2.CC_STAT_AREA].sum()) < _GROUND_SHARE * h * w:
        return None
    edge = np.unique(_border_pixels(labels))
    around = np.isin(labels, edge[edge > 0]).astype(np.uint8)
    if cv2.countNonZero(around) < _GROUND_SHARE * h * w:
        return None
    # Two pixels in: a table's own hairline border may run along the crop.
    rim = _border_pixels(labels[_RIM:-_RIM, _RIM:-_RIM])
    if np.count_nonzero(rim == 0) < _CUT_BORDER * rim.size:
        return None
    if cv2.distanceTransform(around, cv2.DIST_L2, 3).max() < max(_BROAD_PX, _BROAD * min(h, w)):
        return None
    ground_px = gray[around > 0].astype(np.int16)
    ground = int(np.median(ground_px))
    if np.count_nonzero(np.abs(ground_px - ground) <= _FLAT) < _BADGE_FLAT * ground_px.size:
        return None
    return ground


def _unwrap_in(gray: np.ndarray, pieces: Pieces, cut: bool) -> np.ndarray:
    """:func:`unwrap_badge`, ``pieces`` being what differs from the cell's
    ground; a ``cut`` badge must reach the crop's edge."""
    h, w = gray.shape
    n, labels, stats = pieces
    if n <= 1:
        return gray
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = (int(v) for v in stats[k])
    # Pills and circles are at least as wide as they are tall; a "0" is not.
    # A boxed single digit (a keyboard-key or label style) may be narrower,
    # but then it fills its bounding box nearly square-cornered, which no
    # glyph's outline (an oval "0", a handwritten "8") does.
    if bw >= w - 1 and bh >= h - 1:
        return gray
    if bh < 8 or bw < _NARROW * bh:
        return gray
    if cut and x > 0 and y > 0 and x + bw < w and y + bh < h:
        return gray
    blob = (labels[y : y + bh, x : x + bw] == k).astype(np.uint8)
    filled = _fill_holes(blob)
    filled_area = cv2.countNonZero(filled)
    if bw < _ROUND * bh and filled_area < _BOXED * bw * bh:
        return gray
    # A badge is a convex shape (pill, circle, box); glyphs run together
    # (a bold "28" at screen size) are notched between and inside the digits.
    if area < _BADGE_SOLID * filled_area or filled_area < _CONVEX_OUTLINE * _convex_px(filled):
        return gray
    inside = gray[y : y + bh, x : x + bw].copy()
    colour = int(np.median(inside[blob > 0]))
    # The badge's anti-aliased rim is neither ground nor digit.
    rim = max(1, round(0.06 * bh))
    core = cv2.erode(filled, np.ones((2 * rim + 1, 2 * rim + 1), np.uint8))
    # Small digits are mostly anti-aliased edge and close few clean holes in
    # the blob; what marks a badge is ink of its own inside it: thin strokes
    # on a broad, flat ground (hand-drawn ink is seldom flat). A pill clearly
    # wider than tall is no glyph's outline and may hold bold digits that
    # fill much of it.
    text = (cv2.absdiff(inside, np.full_like(inside, colour)) > _BADGE_CONTRAST) & (core > 0)
    wide = bw >= _WIDE * bh
    core_px, text_px = cv2.countNonZero(core), np.count_nonzero(text)
    most = _BADGE_TEXT_WIDE if wide else _BADGE_TEXT
    if text_px > most * core_px or _is_counter(text, bh, wide):
        return gray
    # A single thin digit in a big pill is a sliver of its area (a "1" under
    # 2%), but still a mark of a digit's height; specks of a rim or of JPEG
    # noise on a solid blob are neither.
    if text_px < _BADGE_TEXT_MIN * core_px and not _has_tall_mark(text, bh):
        return gray
    ground = inside[(core > 0) & ~text].astype(np.int16)
    # On a rendered page, flat within a share of the digits' contrast: JPEG
    # speckles a small, saturated badge by a fifth of it or more. Paper is
    # never that flat around its ink, and hand-drawn ink (a heavy "0" or
    # "8") is held to the strict test.
    flat = float(_FLAT)
    if _rendered_ground(gray, labels == 0):
        flat = max(flat, _FLAT_SHARE * abs(int(np.median(inside[text])) - colour))
    if np.count_nonzero(np.abs(ground - colour) <= flat) < _BADGE_FLAT * ground.size:
        return gray
    inside[core == 0] = colour
    return inside


def rendered_page(gray: np.ndarray) -> bool:
    """Whether a whole picture is a rendered page (a screenshot, JPEG or not):
    its pixels lie within 2 levels of a few flat fills, the page's ground and
    its panels' (:data:`_PAGE_FILLS` of them cover :data:`_PAGE_SHARE` of
    it; 0.91-1.0 on nine in ten web screenshots, at most 0.87 on scans and
    photographs, whose paper has grain and shading). No outline on a
    rendered page needs perspective or sag undone."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.int64)
    window = 2 * _RENDERED_FLAT + 1
    near = np.convolve(hist, np.ones(window, np.int64), mode="same")
    covered = 0
    for _ in range(_PAGE_FILLS):
        peak = int(near.argmax())
        covered += int(near[peak])
        # A fill's levels are counted once.
        near[max(0, peak - 2 * _RENDERED_FLAT) : peak + 2 * _RENDERED_FLAT + 1] = 0
    return covered >= _PAGE_SHARE * gray.size


def _rendered_ground(gray: np.ndarray, ground: np.ndarray) -> bool:
    """Whether the crop's ground (mask ``ground``) is a rendered page's: 75%
    of it within 2 levels of its median (83-95% in JPEG screenshots), where
    photographed paper is grainy (45-62%)."""
    values = gray[ground]
    if values.size == 0:
        return False
    dev = cv2.absdiff(values, np.full_like(values, int(np.median(values))))
    return int(np.count_nonzero(dev <= _RENDERED_FLAT)) >= _RENDERED_SHARE * values.size


def _is_counter(text: np.ndarray, height: int, wide: bool) -> bool:
    """Whether the ink inside a blob ``height`` tall is a glyph's counter (the
    hole of a round "0", a broad patch) rather than digits, which are strokes
    a small fraction of the badge's height thick at any size or weight (bold
    ones in a ``wide`` pill a little thicker)."""
    inside = cv2.distanceTransform(text.astype(np.uint8), cv2.DIST_L2, 3)
    return float(inside.max()) > (_STROKE_WIDE if wide else _STROKE) * height


def _has_tall_mark(text: np.ndarray, height: int) -> bool:
    """Whether ``text`` holds a mark of a digit's height in a badge ``height`` tall."""
    n, _, stats, _ = components(text.astype(np.uint8))
    return n > 1 and int(stats[1:, cv2.CC_STAT_HEIGHT].max()) >= _TALL_MARK * height


def _convex_px(mask: np.ndarray) -> int:
    """Pixels in the convex hull of ``mask``'s pixels."""
    ys, xs = np.nonzero(mask)
    hull = cv2.convexHull(np.column_stack([xs, ys]).astype(np.int32))
    return cv2.countNonZero(cv2.fillConvexPoly(np.zeros(mask.shape, np.uint8), hull, 1))


_STROKE = 0.15
_ROUND = 0.95
_NARROW = 0.6
_BOXED = 0.88
_BADGE_TEXT = 0.26
_BADGE_TEXT_MIN = 0.03
_TALL_MARK = 0.2
_GROUND_SHARE = 0.25
_CUT_BORDER = 0.15
_RIM = 2
_BROAD = 0.1
_BROAD_PX = 4.0
_WIDE = 1.25
_STROKE_WIDE = 0.2
_BADGE_TEXT_WIDE = 0.4
_FLAT = 10
_FLAT_SHARE = 0.2
_RENDERED_FLAT = 2
_RENDERED_SHARE = 0.75
# A rendered page's ground and its panels: a few flat fills.
_PAGE_FILLS = 4
_PAGE_SHARE = 0.9
_BADGE_FLAT = 0.75
_CONVEX_OUTLINE = 0.93
_BADGE_COVER = 0.03
_BADGE_SOLID = 0.72


def _fill_holes(blob: np.ndarray) -> np.ndarray:
    """``blob`` (0/1 uint8) with every enclosed hole filled."""
    pad = cv2.copyMakeBorder(blob, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    cv2.floodFill(pad, None, (0, 0), 2)
    return (pad[1:-1, 1:-1] != 2).astype(np.uint8)
