"""Low-level evidence maps: thin ink (text and rules), long rules, and long colour steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from gridreader.imaging import components, quantile_u8


@dataclass(frozen=True)
class InkMaps:
    """What the separator search looks at, all in one (rectified) frame.

    Attributes:
        glyphs: uint8 mask of text-like ink (rules removed).
        rules_h: uint8 mask of long horizontal rules (lines, thin gaps between fills).
        rules_v: uint8 mask of long vertical rules.
        steps_h: uint8 mask of long horizontal colour steps (fills, zebra tints).
        steps_v: uint8 mask of long vertical colour steps.
        text_h: typical glyph height in px.
        glyph_centres: ``(n, 2)`` float array, the ``(x, y)`` centres of the
            glyph components of at least 4 px.
    """

    glyphs: np.ndarray
    rules_h: np.ndarray
    rules_v: np.ndarray
    steps_h: np.ndarray
    steps_v: np.ndarray
    text_h: float
    glyph_centres: np.ndarray


def thin_ink(gray: np.ndarray, kernel: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Masks of thin strokes, dark-on-light and light-on-dark alike.

    Black-hat and top-hat keep features narrower than the kernel whatever the
    polarity, so dark themes, coloured cells with white digits and white gaps
    between fills all come out the same way, while large fills vanish. Either
    polarity is kept only where it is sparse: ink is the minority, and the white
    space between dense dark digits is narrow too but it is the majority.

    Returns:
        ``(strong, faint)`` uint8 masks: strong strokes, and everything with a
        little contrast (faint rules are often light gray).
    """
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel))
    win = (2 * kernel + 1, 2 * kernel + 1)
    # "Sparse": under 42 % of the window is ink.
    most = math.ceil(0.42 * win[0] * win[1]) - 1
    strong = np.zeros(gray.shape, np.uint8)
    faint = np.zeros(gray.shape, np.uint8)
    # OpenCV's element-wise operations, not numpy's: this runs on every page
    # (and twice per skewed scan), and they are several times faster on uint8.
    for op in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT):
        mag = cv2.morphologyEx(gray, op, k)
        top = quantile_u8(mag, 0.997)
        hi = _above(mag, max(22.0, 0.35 * top))
        lo = _above(mag, max(14.0, 0.12 * top))
        strong_here = cv2.bitwise_and(hi, _at_most(_window_sum(hi, win), most))
        cv2.bitwise_or(strong, strong_here, dst=strong)
        cv2.bitwise_or(faint, cv2.bitwise_and(lo, _at_most(_window_sum(lo, win), most)), dst=faint)
        cv2.bitwise_or(faint, strong_here, dst=faint)
    return strong, faint


def _above(img: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 uint8 mask of ``img > threshold`` for an integer image."""
    return cv2.threshold(img, math.floor(threshold), 1, cv2.THRESH_BINARY)[1]


def _at_most(img: np.ndarray, limit: int) -> np.ndarray:
    """0/1 uint8 mask of ``img <= limit`` for an integer-valued image."""
    return cv2.threshold(img, limit, 1, cv2.THRESH_BINARY_INV)[1].astype(np.uint8, copy=False)


def _window_sum(mask: np.ndarray, win: tuple[int, int]) -> np.ndarray:
    # Integer window sums are several times faster than float means.
    ddepth = cv2.CV_16U if win[0] * win[1] < 65536 else cv2.CV_32F
    return cv2.boxFilter(mask, ddepth, win, normalize=False)


def edge_map(gray: np.ndarray) -> np.ndarray:
    """Canny edges as a 0/1 mask."""
    return (cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 40, 110) > 0).astype(np.uint8)


def straight_edges(edges: np.ndarray, *runs: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Horizontal and vertical edge runs of at least ``run`` px, for each of ``runs``.

    A scanned rule is jagged and a little tilted: a pixel of wobble is allowed.
    """
    wobble_h = cv2.dilate(edges, _WOBBLE_ACROSS_ROWS)
    wobble_v = cv2.dilate(edges, _WOBBLE_ACROSS_COLS)
    return [(long_runs(wobble_h, run, True), long_runs(wobble_v, run, False)) for run in runs]


def _held_straight(edges: np.ndarray, runs: np.ndarray, run: int, text_h: float) -> np.ndarray:
    """Of ``runs`` (horizontal edge runs of at least ``run`` px, found with
    a pixel of wobble), those that are straight: longer than a glyph group
    could make, on an outline taller than a line of text, or holding a
    straight piece without the wobble.

    The round tops of two adjacent digits ("28" in a serif face, "15"),
    taken with the wobble, make a run as long as a short rule's; cut from
    the glyph outlines, they left the number 3 px short, and no number. A
    rule on a screen is straight without the wobble. The round top of a
    badge or pill is no straighter, but its outline is taller than the
    digits it rings, and cut, it leaves the digits apart from the badge.
    """
    n, labels, _, _ = components(runs)
    if n <= 1:
        return runs
    seeds = cv2.bitwise_or(
        long_runs(edges, round(_HELD_SHARE * run), True), _tall_outlines(edges, text_h)
    )
    held = np.zeros(n, np.uint8)
    held[labels[cv2.bitwise_and(seeds, runs) > 0]] = 1
    held[0] = 0
    wobbly = cv2.dilate(edges, _WOBBLE_ACROSS_ROWS)
    # np.take: several times faster than fancy indexing over a whole page.
    return cv2.bitwise_or(np.take(held, labels), long_runs(wobbly, round(_ANY_WOBBLE * run), True))


def _tall_outlines(edges: np.ndarray, text_h: float) -> np.ndarray:
    """The edges whose outline (8-connected) is taller than a line of text."""
    _, outline, stats, _ = components(edges)
    tall = (stats[:, cv2.CC_STAT_HEIGHT] > _TEXT_LINE * text_h).astype(np.uint8)
    tall[0] = 0
    return np.take(tall, outline)


# A straight piece this share of a short run holds it; runs this many times
# longer are straight whatever their wobble.
_HELD_SHARE = 0.7
_ANY_WOBBLE = 1.3
# An outline taller than this many text heights rings more than a line of text.
_TEXT_LINE = 1.3


def glyph_edges(edges: np.ndarray, straight: np.ndarray) -> np.ndarray:
    """Outlines of characters: edges, minus every straight run longer than a
    glyph's own strokes (rules, fill and tint boundaries).

    Edges do not care which colour is background, so white digits on red or
    black fills, dark themes and plain tables all give the same outlines.
    """
    return without(edges, cv2.dilate(straight, np.ones((3, 3), np.uint8)))


def estimate_text_height(mask: np.ndarray) -> float:
    """Median height of glyph-like connected components (px)."""
    n, labels, stats, _ = components(mask)
    if n <= 1:
        return 0.0
    boxes = box_outlines(labels, stats)[1:]
    w = stats[1:, cv2.CC_STAT_WIDTH]
    h = stats[1:, cv2.CC_STAT_HEIGHT]
    area = stats[1:, cv2.CC_STAT_AREA]
    # Thin upright pieces are rule fragments between crossings, not digits.
    ok = (h >= 4) & (h <= min(200, 0.4 * mask.shape[0])) & (w <= 2.5 * h) & (w >= 0.13 * h)
    ok &= (area >= 6) & ~boxes
    if ok.sum() < 3:
        ok = (h >= 3) & (h <= 200) & (w <= 3 * h)
    if not ok.any():
        return 0.0
    # The most common height: a table page is mostly digits, and a big title
    # or small print around it must not drag the estimate.
    counts = np.bincount(h[ok]).astype(float)
    smooth = np.convolve(counts, [1.0, 2.0, 1.0], mode="same")
    return float(np.argmax(smooth))


def without(mask: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``mask`` where ``other`` is zero (uint8 0/1 masks)."""
    return (mask & (other == 0)).astype(np.uint8)


def long_runs(mask: np.ndarray, length: int, horizontal: bool) -> np.ndarray:
    """Keep only runs of at least ``length`` px along one axis."""
    length = max(3, int(length))
    size = (length, 1) if horizontal else (1, length)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, size)
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, k)


def colour_steps(rgb: np.ndarray, horizontal: bool, threshold: int = 10) -> np.ndarray:
    """Mask of edges between two flat areas of different colour.

    Requiring both sides to stay flat for a few pixels keeps fill and tint
    boundaries and drops the outlines of thin strokes (text, rules). The step
    is measured across three rows (y-2 -> y+1) so that a boundary blurred by
    downscaling still counts; flatness over two more rows each side.
    """
    n = rgb.shape[0] if horizontal else rgb.shape[1]
    out = np.zeros(rgb.shape[:2], np.uint8)
    if n < 9:
        return out

    def rows(a: int, b: int) -> np.ndarray:
        return rgb[a:b] if horizontal else rgb[:, a:b]

    before, after = rows(2, n - 4), rows(5, n - 1)
    step = _channel_max(cv2.absdiff(after, before))
    # JPEG noise inside a fill is a fraction of the step at its edge.
    tol = cv2.LUT(step, _FLAT_TOLERANCE)
    flat_before = cv2.compare(_channel_max(cv2.absdiff(before, rows(0, n - 6))), tol, cv2.CMP_LE)
    flat_after = cv2.compare(_channel_max(cv2.absdiff(after, rows(6, n))), tol, cv2.CMP_LE)
    found = cv2.bitwise_and(cv2.bitwise_and(flat_before, flat_after), _above(step, threshold - 1))
    # compare() gives 0/255, the threshold 0/1: their AND is already 0/1.
    if horizontal:
        out[4 : n - 2] = found
    else:
        out[:, 4 : n - 2] = found
    return out


_BLOCK = np.ones((2, 2), np.uint8)
_WOBBLE_ACROSS_ROWS = np.ones((3, 1), np.uint8)
_WOBBLE_ACROSS_COLS = np.ones((1, 3), np.uint8)

# How far a pixel may differ from its neighbour and still count as flat, by the
# size of the step beside it.
_FLAT_TOLERANCE = np.maximum(np.arange(256) // 3, 6).astype(np.uint8)


def _channel_max(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img
    h, w, c = img.shape
    if c == 1:
        return img[:, :, 0]
    # The channels lie side by side in each row: a 1 x c dilation anchored at
    # its left end puts each pixel's maximum on its first channel. Four times
    # faster than splitting the planes.
    interleaved = np.ascontiguousarray(img).reshape(h, w * c)
    widest = cv2.dilate(interleaved, np.ones((1, c), np.uint8), anchor=(0, 0))
    return np.ascontiguousarray(widest[:, ::c])


def thin_rules(faint: np.ndarray, run: int, horizontal: bool, text_h: float) -> np.ndarray:
    """Long, thin runs: rules. Thick ink (glyph bodies) is removed first, and the
    small breaks where a rule crosses another are bridged."""
    thick_len = max(5, round(0.4 * text_h))
    across = (1, thick_len) if horizontal else (thick_len, 1)
    thick = cv2.morphologyEx(
        faint, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, across)
    )
    thin = without(faint, thick)
    bridge = (5, 1) if horizontal else (1, 5)
    thin = cv2.morphologyEx(
        thin, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, bridge)
    )
    # Tolerate a pixel of drift across the rule (scans are never quite straight).
    wobble = (1, 3) if horizontal else (3, 1)
    thin = cv2.dilate(thin, cv2.getStructuringElement(cv2.MORPH_RECT, wobble))
    return long_runs(thin, run, horizontal)


def text_height(mask: np.ndarray) -> float:
    """Typical glyph height in an edge or stroke mask, ignoring rules."""
    # Rules join a whole ruled table into one component; strip long straight
    # runs (longer than any glyph stroke could be here) before measuring glyphs.
    probe = max(15, min(mask.shape) // 8)
    lines = long_runs(mask, probe, horizontal=True) | long_runs(mask, probe, horizontal=False)
    # A rule a degree or two off the axis (perspective left after deskewing)
    # steps sideways every few dozen pixels, and its straight pieces, about a
    # cell high, would pass for glyphs. On a half-size copy, where a pixel
    # holds any ink of its 2x2 block, a one-pixel step mostly vanishes and the
    # rule is one long run again. Three times the length at full size keeps
    # the strokes of big handwriting out of it, and the runs that any-of-four
    # pooling makes in noise; a quarter of the pixels, too.
    h, w = mask.shape
    if h >= 4 and w >= 4:
        half = cv2.dilate(mask, _BLOCK, anchor=(0, 0))[: h - h % 2 : 2, : w - w % 2 : 2]
        wobbly = long_runs(half, 3 * probe // 2, horizontal=True)
        wobbly |= long_runs(half, 3 * probe // 2, horizontal=False)
        lines[: h - h % 2, : w - w % 2] |= np.repeat(np.repeat(wobbly, 2, axis=0), 2, axis=1)
    return estimate_text_height(without(mask, cv2.dilate(lines, np.ones((3, 3), np.uint8))))


def box_outlines(labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Per component: is it the outline of a box (a cell fill's edge), not a glyph?

    A box outline has nearly all its pixels on its own bounding box; so does a
    narrow "1", hence the width condition.
    """
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    shaped = (w >= 0.6 * h) & (h >= 6)
    shaped[0] = False
    if not shaped.any():
        return shaped
    # A pixel off the 2 px border band lies inside the box shrunk by 2 px each
    # side; counting a component there, box by box, beats gathering every
    # pixel of the page (several times faster on pages of small digits).
    area = stats[:, cv2.CC_STAT_AREA]
    inside = np.zeros(stats.shape[0], np.int64)
    for i in np.flatnonzero(shaped):
        x, y, bw, bh = stats[i, :4]
        inside[i] = np.count_nonzero(labels[y + 2 : y + bh - 2, x + 2 : x + bw - 2] == i)
    frac = (area - inside) / np.maximum(area, 1)
    return (frac > 0.85) & shaped


def _keep_glyphs(mask: np.ndarray, text_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Only components shaped like characters: not specks, seams, rule stubs or boxes.

    Returns:
        ``(mask, centres)``: the kept components, and the centres of those of at
        least 4 px (the region search counts them; they come free here).
    """
    n, labels, stats, centroids = components(mask)
    if n <= 1:
        return mask, np.zeros((0, 2))
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    area = stats[:, cv2.CC_STAT_AREA]
    long_side, short_side = np.maximum(w, h), np.minimum(w, h)
    seam = (long_side >= 1.5 * text_h) & (short_side <= max(2, 0.2 * text_h))
    keep = (h >= 0.3 * text_h) & (h <= 3 * text_h) & (w <= 6 * text_h) & (area >= 3) & ~seam
    # A "0" or an "8" outlines its own box too: only frames bigger than a
    # digit (cell fills, pills, badges) are boxes.
    keep &= ~(box_outlines(labels, stats) & ((h > 1.3 * text_h) | (w > 1.3 * text_h)))
    keep[0] = False
    return keep[labels].astype(np.uint8), centroids[keep & (area >= 4)]


def measure_ink(
    rgb: np.ndarray,
    gray: np.ndarray,
    text_h: float | None = None,
    edges: np.ndarray | None = None,
    photo: bool = False,
) -> InkMaps:
    """Build every evidence map the separator search needs.

    ``text_h`` and ``edges`` (:func:`edge_map` of ``gray``) may be passed when
    they were already measured on this very image. A ``photo`` (a
    photographed or rectified picture) has no straight edge without a pixel
    of wobble, so its glyph outlines lose every run that is straight with it.
    """
    if edges is None:
        edges = edge_map(gray)
    # Glyph outlines are closed and polarity-free: the best size probe.
    if text_h is None:
        text_h = text_height(edges) or 10.0
    # Big text has strokes as wide as the default kernel; widen it.
    kernel = max(15, int(0.4 * text_h) | 1)
    _, faint = thin_ink(gray, kernel)
    run = max(12, round(2.6 * text_h))
    # Edge runs longer than a glyph's strokes (cut from the glyph outlines),
    # and longer than any glyph (rule outlines, below).
    stroke = max(6, round(1.35 * text_h))
    (edge_h, edge_v), (long_h, long_v) = straight_edges(edges, stroke, run)
    if not photo:
        # Only across: an upright run longer than a text height lies on an
        # outline taller than a line of text, and is held whatever its wobble.
        edge_h = _held_straight(edges, edge_h, stroke, text_h)
    # Lines of anti-aliased text and bold titles leave long runs of faint ink and
    # colour steps too; nothing inside or hugging a glyph-sized blob is a rule.
    glyphs, centres = _keep_glyphs(glyph_edges(edges, edge_h | edge_v), text_h)
    reach = max(5, round(0.3 * text_h) | 1)
    near_glyph = cv2.dilate(glyphs, np.ones((reach, reach), np.uint8))
    # Rules lose only the glyph pixels themselves: handwritten digits cross
    # the ruling everywhere, and a wide exclusion would cut every rule apart.
    faint = without(faint, cv2.dilate(glyphs, np.ones((3, 3), np.uint8)))
    # Rule outlines are long straight edges too; in scans they survive where
    # blotchy handwriting breaks the stroke masks.
    rules_h = thin_rules(faint, run, True, text_h) | long_h
    rules_v = thin_rules(faint, run, False, text_h) | long_v
    # Fill edges only need to beat a single glyph's edge (a "1" stem is text_h long).
    step_run = max(8, round(1.4 * text_h))
    steps_h = long_runs(without(colour_steps(rgb, True), near_glyph), step_run, horizontal=True)
    steps_v = long_runs(without(colour_steps(rgb, False), near_glyph), step_run, horizontal=False)
    return InkMaps(glyphs, rules_h, rules_v, steps_h, steps_v, text_h, centres)
