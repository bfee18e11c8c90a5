"""Finding the table's region in a (rectified) page."""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from gridreader.grid.ink import InkMaps, long_runs
from gridreader.grid.separators import runs, text_bands
from gridreader.imaging import components

Region = tuple[int, int, int, int]

# A gap this many text heights wide with no horizontal rule across it parts
# two grids set side by side.
_SIDE_GAP = 1.5
# ... and where fewer than this share of the most rule pixels in a column
# cross it.
_GAP_RULES = 0.3


def locate_structure(maps: InkMaps) -> Region | None:
    """Bounding box of the ruled / filled structure that holds the most text."""
    # Only elements longer than any glyph stroke: big bold titles make short
    # rules and steps of their own, which must not pull the region upwards.
    span = max(12, round(4 * maps.text_h))
    across = long_runs(maps.rules_h | maps.steps_h, span, horizontal=True)
    down = long_runs(maps.rules_v | maps.steps_v, span, horizontal=False)
    structure = across | down
    if int(structure.sum()) == 0:
        return None
    # Zebra stripes and fills are separate pieces a row apart; join them.
    reach = max(5, round(3.0 * maps.text_h))
    grown = cv2.dilate(structure, cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach)))
    n, labels, stats, _ = components(grown)
    best: tuple[float, Region] | None = None
    glyph_pts = maps.glyph_centres
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        if w < 3 * maps.text_h or h < 1.5 * maps.text_h:
            continue
        ys, xs = np.nonzero(
            (labels[y : y + h, x : x + w] == i) & (structure[y : y + h, x : x + w] > 0)
        )
        if xs.size == 0:
            continue
        whole = (int(x + xs.min()), int(y + ys.min()), int(x + xs.max() + 1), int(y + ys.max() + 1))
        for box in _split_side_by_side(across, down, whole, maps.text_h):
            inside = _count_inside(glyph_pts, box)
            score = inside + 1e-6 * (box[2] - box[0]) * (box[3] - box[1])
            if inside >= 2 and (best is None or score > best[0]):
                best = (score, box)
    return best[1] if best else None


def _split_side_by_side(
    across: np.ndarray, down: np.ndarray, box: Region, text_h: float
) -> list[Region]:
    """``box`` cut where hardly any horizontal rule or fill crosses a gap at
    least :data:`_SIDE_GAP` text heights wide, when every piece has vertical rules
    of its own: two ruled grids side by side (a second puzzle in a
    photograph) are joined by the search's reach, and their rows line up.
    A table whose rules stop at its column gaps (underlines per column) has
    no vertical rules, and stays whole. Pieces cut by the picture's edge are
    dropped while a whole one stays."""
    x0, y0, x1, y1 = box
    # The outermost rules may run on (a page's edge, a shadow joining both
    # grids' borders): a gap is where few rules cross.
    count = (across[y0:y1, x0:x1] > 0).sum(axis=0)
    crossed = count > _GAP_RULES * count.max()
    pieces = [(x0 + s, x0 + e) for s, e in runs(crossed)]
    cuts = [
        (a[1], b[0]) for a, b in itertools.pairwise(pieces) if b[0] - a[1] >= _SIDE_GAP * text_h
    ]
    if not cuts:
        return [box]
    edges = [x0] + [v for gap in cuts for v in gap] + [x1]
    out = [(edges[i], y0, edges[i + 1], y1) for i in range(0, len(edges), 2)]
    if not all(down[y0:y1, a:b].any(axis=0).sum() >= 2 for a, _, b, _ in out):
        return [box]
    # A grid cut by the picture's edge is the one beside the photographed one.
    whole = [r for r in out if r[0] > 1 and r[2] < across.shape[1] - 1]
    return whole or out


def _count_inside(pts: np.ndarray, box: Region) -> int:
    if pts.size == 0:
        return 0
    x0, y0, x1, y1 = box
    return int(((pts[:, 0] >= x0) & (pts[:, 0] < x1) & (pts[:, 1] >= y0) & (pts[:, 1] < y1)).sum())


def _line_tokens(glyphs: np.ndarray, band: tuple[int, int], text_h: float) -> list[tuple[int, int]]:
    prof = glyphs[band[0] : band[1]].sum(axis=0)
    return text_bands(prof, min_gap=max(2.0, 0.45 * text_h))


def _gap_crossing(glyphs: np.ndarray, band: tuple[int, int], gaps: list[tuple[int, int]]) -> float:
    """Share of the table's column gaps that a text line fills (words do, cells don't)."""
    if not gaps:
        return 0.0
    prof = glyphs[band[0] : band[1]].sum(axis=0) > 0
    crossed = sum(1 for s, e in gaps if prof[s:e].mean() >= 0.6)
    return crossed / len(gaps)


def _column_gaps(
    glyphs: np.ndarray, rows: list[tuple[int, int]], text_h: float
) -> list[tuple[int, int]]:
    ink = np.zeros(glyphs.shape[1], bool)
    for s, e in rows:
        ink |= glyphs[s:e].sum(axis=0) > 0
    xs = np.flatnonzero(ink)
    if xs.size == 0:
        return []
    inner = ~ink[xs[0] : xs[-1] + 1]
    return [
        (int(s + xs[0]), int(e + xs[0])) for s, e in runs(inner) if e - s >= max(2.0, 0.2 * text_h)
    ]


def locate_text_block(maps: InkMaps) -> Region | None:
    """Region of the largest block of text lines that share one column layout.

    Grows from the line with the most separate tokens, one line at a time, while
    the next line has the same text height, a consistent pitch, and keeps out of
    the column gaps seen so far (prose runs across them; table rows don't).
    """
    g = maps.glyphs
    bands = [b for b in text_bands(g.sum(axis=1), min_gap=1) if b[1] - b[0] >= 3]
    if not bands:
        return None
    heights = np.array([e - s for s, e in bands], float)
    tokens = [_line_tokens(g, b, maps.text_h) for b in bands]
    best: tuple[int, int] | None = None
    for seed in [int(i) for i in np.argsort([-len(t) for t in tokens])[:5]]:
        if len(tokens[seed]) < 2:
            continue
        lo = hi = seed
        pitch: float | None = None
        grown = True
        while grown:
            grown = False
            for j, ref in ((lo - 1, lo), (hi + 1, hi)):
                if not 0 <= j < len(bands):
                    continue
                if abs(heights[j] - heights[seed]) > 0.35 * heights[seed] + 1:
                    continue
                step = abs(bands[j][0] - bands[ref][0])
                if pitch is None:
                    if step > 4.5 * heights[seed]:
                        continue
                else:
                    k = max(1, round(step / pitch))
                    if k > 2 or abs(step / pitch - k) > 0.3:
                        continue
                gaps = _column_gaps(g, bands[lo : hi + 1], maps.text_h)
                if _gap_crossing(g, bands[j], gaps) > 0.34:
                    continue
                if len(tokens[j]) < 2 and pitch is None:
                    continue
                if pitch is None:
                    pitch = float(step)
                lo, hi = min(lo, j), max(hi, j)
                grown = True
        if best is None or hi - lo > best[1] - best[0]:
            best = (lo, hi)
    if best is None:
        return None
    lo, hi = best
    y0, y1 = bands[lo][0], bands[hi][1]
    xs = np.flatnonzero(g[y0:y1].sum(axis=0) > 0)
    return int(xs[0]), int(y0), int(xs[-1] + 1), int(y1)
