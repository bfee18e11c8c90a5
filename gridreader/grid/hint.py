"""Shape hints: the best grid of a shape the user knows.

When the unhinted grid has another shape, the table it located is cut again
with the known counts. Along each axis whose count is off, the edges are chosen
by dynamic programming over the pixel positions: a cut through a number costs
much, a rule or colour step there earns a little, intervals far from a regular
pitch cost, and numbers left outside the first and last edge cost. The result
must then explain the picture (no edge through a number, no cell holding two
numbers side by side or two lines, no number of the located table left out);
otherwise the hint is refused with :class:`~gridreader.errors.NoTableError`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from gridreader.errors import NoTableError
from gridreader.grid.ink import InkMaps, edge_map, measure_ink, text_height
from gridreader.grid.separators import text_bands
from gridreader.imaging import components, to_gray
from gridreader.types import Grid, Shape

__all__ = ["fit_shape"]

# Costs, in units of "one number": cutting through one, or leaving one out of
# the table, against a cell a whole pitch too long or short.
_CUT = 4.0
_OUT = 3.0
_REG = 1.0
_RULE = 0.5
_NEAR = 0.5
_TIE = 0.01


@dataclass(frozen=True)
class _Tokens:
    """Numbers and words: glyph groups, as boxes in work pixels.

    Attributes:
        boxes: ``(n, 4)`` int array of ``(x0, y0, x1, y1)``, x1/y1 exclusive.
        content: which of them belong to table lines (not prose that runs
            across the column edges).
    """

    boxes: np.ndarray
    content: np.ndarray


def fit_shape(image: np.ndarray, found: Grid, shape: Shape) -> Grid:
    """The grid of ``shape`` that best explains the table ``found`` located.

    Args:
        image: the (squeezed) input image.
        found: the unhinted grid; its frame and region are kept.
        shape: ``(rows, cols)`` wanted.

    Raises:
        NoTableError: no grid of that shape explains the picture.
    """
    if found.shape == shape:
        return found
    rect = _rectified(image, found)
    gray = to_gray(rect)
    th_full = text_height(edge_map(gray)) or 10.0
    f = _work_scale(th_full, rect.shape[:2])
    work = _resize(rect, f)
    # A turned or rectified picture keeps the search's lenient cut (see measure_ink).
    maps = measure_ink(work, to_gray(work), photo=not np.allclose(found.to_image, np.eye(3)))
    th = maps.text_h
    rows = [v * f for v in found.row_edges]
    cols = [v * f for v in found.col_edges]
    tokens = _find_tokens(maps, rows, cols)
    want_rows, want_cols = shape
    found_rows, found_cols = rows, cols
    problem = ""
    if len(cols) - 1 != want_cols:
        cols = _fit_axis(maps, tokens, cols, (rows[0], rows[-1]), want_cols, axis=1)
        cover = _rule_cover(maps, (rows[0], rows[-1]), 1, maps.glyphs.shape[1])
        ink = _ink_along(tokens.boxes, 1)
        problem = _against_structure(cover, found_cols, cols, "column", ink)
    if len(rows) - 1 != want_rows and not problem:
        rows = _fit_axis(maps, tokens, rows, (cols[0], cols[-1]), want_rows, axis=0)
        cover = _rule_cover(maps, (cols[0], cols[-1]), 0, maps.glyphs.shape[0])
        ink = _ink_along(tokens.boxes, 0)
        problem = _against_structure(cover, found_rows, rows, "row", ink)
    problem = problem or _explain(tokens, rows, cols, found, f, th)
    if problem:
        raise NoTableError(
            f"no {want_rows}x{want_cols} grid fits the table ({problem}; "
            f"without the hint: {found.rows}x{found.cols})"
        )
    return Grid(
        row_edges=tuple(v / f for v in rows),
        col_edges=tuple(v / f for v in cols),
        to_image=found.to_image,
        rectified_size=found.rectified_size,
        style=found.style,
        bend=found.bend,
    )


def _rectified(image: np.ndarray, grid: Grid) -> np.ndarray:
    from gridreader.grid.cells import rectify_image

    return rectify_image(image, grid)


def _work_scale(text_h: float, shape: tuple[int, ...]) -> float:
    # The finder's own analysis scale: text 12-20 px, pages under a bound.
    from gridreader.grid.find import _zoom_for

    return _zoom_for(text_h, shape)


def _resize(img: np.ndarray, f: float) -> np.ndarray:
    from gridreader.grid.find import _resize as resize

    return resize(img, f)


def _find_tokens(maps: InkMaps, rows: list[float], cols: list[float]) -> _Tokens:
    """Glyph groups, and which of them lie on lines of the table.

    A line of text is prose (a title, a card header, a caption) when one of
    its words runs across an inner column edge of the located table; a row of
    numbers keeps each number inside its cell.
    """
    th = maps.text_h
    # Digits of one number are closer than a third of the text height; the
    # gap between two cells is wider.
    join = max(2, round(0.3 * th))
    closed = cv2.morphologyEx(
        maps.glyphs, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (join, 1))
    )
    n, _, stats, _ = components(closed)
    if n <= 1:
        return _Tokens(np.zeros((0, 4), int), np.zeros(0, bool))
    x, y, w, h = (stats[1:, i] for i in range(4))
    boxes = np.stack([x, y, x + w, y + h], axis=1).astype(int)
    margin = 0.25 * th
    inner = np.asarray(cols[1:-1], float)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    in_span = (cx >= cols[0]) & (cx <= cols[-1])
    straddles = np.zeros(len(boxes), bool)
    if inner.size:
        lo = boxes[:, 0:1] + margin
        hi = boxes[:, 2:3] - margin
        straddles = np.asarray(((inner[None, :] > lo) & (inner[None, :] < hi)).any(axis=1))
    # Lines: bands of the glyph profile over the table's width.
    x0, x1 = max(0, int(cols[0])), int(np.ceil(cols[-1]))
    bands = text_bands(maps.glyphs[:, x0:x1].sum(axis=1), min_gap=1)
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    content = np.ones(len(boxes), bool)
    for b0, b1 in bands:
        on = in_span & (cy >= b0) & (cy < b1)
        if (on & straddles).any():
            content[on] = False
    return _Tokens(boxes, content)


def _fit_axis(
    maps: InkMaps,
    tokens: _Tokens,
    along: list[float],
    span: tuple[float, float],
    n: int,
    axis: int,
) -> list[float]:
    """``n + 1`` edges along ``axis`` (0: rows, 1: columns) that best fit the
    evidence between ``span`` on the other axis."""
    length = maps.glyphs.shape[axis]
    th = maps.text_h
    lo_i, hi_i = (0, 2) if axis == 1 else (1, 3)
    across_lo, across_hi = (1, 3) if axis == 1 else (0, 2)
    b = tokens.boxes
    centre_across = (b[:, across_lo] + b[:, across_hi]) / 2
    inside = (centre_across >= span[0]) & (centre_across <= span[1])
    # Columns may cut prose lines (they lie outside the table's rows);
    # rows may not.
    cutters = inside & tokens.content if axis == 1 else inside
    cut = np.zeros(length + 1)
    occupied = np.zeros(length + 1, np.uint8)
    for s, e in b[cutters][:, [lo_i, hi_i]]:
        m = min(0.2 * th, 0.25 * (e - s))
        a0, a1 = int(np.floor(s + m)) + 1, int(np.ceil(e - m))
        if a1 > a0:
            cut[a0:a1] += 1.0
        occupied[max(0, int(s)) : int(e) + 1] = 1
    # Edges keep clear of the text: between cells they run mid-gap, so a lattice
    # shifted until its edges graze the numbers is not as good as the right one.
    clearance = cv2.distanceTransform((1 - occupied)[None, :], cv2.DIST_L1, cv2.DIST_MASK_3).ravel()
    near = np.clip(1.0 - clearance / (0.5 * th), 0.0, 1.0) if occupied.any() else 0.0 * cut
    content = b[inside & tokens.content]
    centres = (content[:, lo_i] + content[:, hi_i]) / 2
    counts = np.bincount(
        np.clip(np.floor(centres).astype(int), 0, length), minlength=length + 1
    ).astype(float)
    before = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    after = counts.sum() - np.cumsum(counts)
    rule = _rule_cover(maps, span, axis, length)
    base = _CUT * cut + _NEAR * near - _RULE * rule
    found_pitch = float(np.median(np.diff(along))) if len(along) >= 2 else th * 2
    pitches = {found_pitch, (along[-1] - along[0]) / n}
    if centres.size:
        pitches.add(float(centres.max() - centres.min()) / max(1, n - 1))
    best: tuple[float, list[int]] | None = None
    for p in sorted(pitches):
        if p < 0.8 * th or p <= 1:
            continue
        start_cost = base + _OUT * before + _TIE * np.abs(np.arange(length + 1) - along[0]) / p
        got = _best_edges(start_cost, base, _OUT * after, n, p, th)
        if got is not None and (best is None or got[0] < best[0]):
            best = got
    if best is None:
        raise NoTableError(f"no {n} {'rows' if axis == 0 else 'columns'} fit the table")
    return [float(v) for v in best[1]]


def _rule_cover(maps: InkMaps, span: tuple[float, float], axis: int, length: int) -> np.ndarray:
    """Per position along ``axis``: the share of the span a rule or step covers there."""
    a0, a1 = max(0, int(span[0])), max(int(span[0]) + 1, int(np.ceil(span[1])))
    if axis == 0:
        cover = (maps.rules_h | maps.steps_h)[:, a0:a1].mean(axis=1)
    else:
        cover = (maps.rules_v | maps.steps_v)[a0:a1, :].mean(axis=0)
    # A rule k px thick sits across positions k..k+1 (the edge between pixels).
    near = np.maximum(np.concatenate([[0.0], cover]), np.concatenate([cover, [0.0]]))
    return np.asarray(np.minimum(1.0, near / 0.6) * (near >= 0.3), float)[: length + 1]


def _best_edges(
    start: np.ndarray, step: np.ndarray, end: np.ndarray, n: int, p: float, th: float
) -> tuple[float, list[int]] | None:
    """Positions ``x_0 < ... < x_n`` minimising ``start[x_0] + sum step[x_k] +
    end[x_n]`` plus the irregularity of each interval against pitch ``p``."""
    size = start.size
    lo = max(1, round(max(0.5 * p, 0.8 * th)))
    hi = max(lo, round(2.0 * p))
    ds = np.arange(lo, min(hi, size - 1) + 1)
    if ds.size == 0:
        return None
    regs = _REG * ((ds - p) / p) ** 2
    dp = start.copy()
    back = np.zeros((n, size), np.int32)
    for k in range(n):
        best = np.full(size, np.inf)
        arg = np.zeros(size, np.int32)
        for d, r in zip(ds.tolist(), regs.tolist(), strict=True):
            cand = dp[: size - d] + r
            better = cand < best[d:]
            best[d:][better] = cand[better]
            arg[d:][better] = d
        dp = best + step
        back[k] = arg
    total = dp + end
    x = int(np.argmin(total))
    if not np.isfinite(total[x]):
        return None
    edges = [x]
    for k in range(n - 1, -1, -1):
        x -= int(back[k, x])
        edges.append(x)
    return float(total[edges[0]]), edges[::-1]


def _ink_along(boxes: np.ndarray, axis: int) -> np.ndarray:
    """Token centres along ``axis`` (0: y, 1: x)."""
    lo, hi = (1, 3) if axis == 0 else (0, 2)
    return np.asarray((boxes[:, lo] + boxes[:, hi]) / 2, float)


def _against_structure(
    cover: np.ndarray, found: list[float], edges: list[float], name: str, ink: np.ndarray
) -> str:
    """Why new ``edges`` go against the table's own ruling ('' when they don't).

    A table whose inner edges along this axis are all rules or colour steps
    has no cell edge without one, no rule through a cell, and no ruled cell
    holding text (``ink``: token centres along the axis) left out; added cells
    keep the table's pitch; and no cell lies beyond a ruled border.
    """

    # Scanned rules drift a few pixels off the fitted edge.
    reach = max(2, round(0.06 * float(np.median(np.diff(found)))))

    def ruled(x: float, least: float = 0.0) -> bool:
        i = round(x)
        return bool(cover[max(0, i - reach) : i + reach + 1].max(initial=0.0) > least)

    def closed(x: float) -> bool:
        # A rule of the table's, not the picture's own edge (scans, paper).
        return 3 <= x <= cover.size - 4 and ruled(x, 0.99)

    all_ruled = len(found) >= 4 and all(ruled(x) for x in found[1:-1])
    if all_ruled and not all(ruled(x) for x in edges[1:-1]):
        return f"a {name} edge would lie where the table has no rule"
    pitch = float(np.median(np.diff(found)))
    new = np.asarray(edges, float)
    slack = max(3.0, 0.15 * pitch)
    if all_ruled and any(np.abs(new - x).min() > slack for x in found[1:-1]):
        return f"a rule would run through a {name}"
    dropped = ((ink >= found[0]) & (ink < new[0])) | ((ink > new[-1]) & (ink <= found[-1]))
    if all_ruled and dropped.any():
        return f"a ruled {name} holding text would be left out"
    # More cells in the same span would make them all narrower; an empty row or
    # column the finder missed keeps the pitch of the others.
    if len(edges) > len(found):
        sizes = np.diff(edges)
        mids = (np.asarray(edges[1:]) + np.asarray(edges[:-1])) / 2
        added = sizes[(mids < found[0]) | (mids > found[-1])]
        if abs(float(np.median(sizes)) / pitch - 1) > 0.03 or (
            added.size and np.abs(added / pitch - 1).max() > 0.15
        ):
            return f"the {name}s would not keep the table's pitch"
    # Past a ruled edge the table goes on only where the ruling does (a cell
    # the unhinted grid dropped is closed by a rule of its own, as long as the
    # table's: over 60 % of the span).
    beyond = (edges[0] < found[0] - 0.3 * pitch and ruled(found[0]) and not closed(edges[0])) or (
        edges[-1] > found[-1] + 0.3 * pitch and ruled(found[-1]) and not closed(edges[-1])
    )
    if beyond:
        return f"a {name} would lie beyond the table's border"
    return ""


def _explain(
    tokens: _Tokens, rows: list[float], cols: list[float], found: Grid, f: float, th: float
) -> str:
    """Why the lattice does not explain the picture ('' when it does)."""
    b = tokens.boxes
    if b.shape[0] == 0:
        return "no text in the table"
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    in_found = (
        (cx >= found.col_edges[0] * f)
        & (cx <= found.col_edges[-1] * f)
        & (cy >= found.row_edges[0] * f)
        & (cy <= found.row_edges[-1] * f)
    )
    in_new = (cx >= cols[0]) & (cx <= cols[-1]) & (cy >= rows[0]) & (cy <= rows[-1])
    table = in_new & tokens.content
    left_out = int((in_found & tokens.content & ~in_new).sum())
    if left_out:
        return f"{left_out} number(s) of the table would be left out"
    m = 0.2 * th
    for name, edges, lo_i, hi_i in (("column", cols, 0, 2), ("row", rows, 1, 3)):
        e = np.asarray(edges, float)
        s, t = b[table, lo_i : lo_i + 1] + m, b[table, hi_i : hi_i + 1] - m
        if ((e[None, :] > s) & (e[None, :] < t)).any():
            return f"a {name} edge would cut through text"
    # Tokens are whole numbers (digits joined); one column of them, whatever
    # its alignment, leaves no gap in the union of their extents.
    min_gap = {"column": 0.3 * th, "row": 0.3 * th}
    for name, edges, lo_i, hi_i in (("column", cols, 0, 2), ("row", rows, 1, 3)):
        centre = (b[:, lo_i] + b[:, hi_i]) / 2
        for a, z in itertools.pairwise(edges):
            spans = sorted(b[table & (centre >= a) & (centre < z)][:, [lo_i, hi_i]].tolist())
            reach = None
            for s0, s1 in spans:
                if reach is not None and s0 - reach >= min_gap[name]:
                    return f"a {name} would hold two {'columns' if name == 'column' else 'lines'}"
                reach = s1 if reach is None else max(reach, s1)
    for name, edges, n_found, lo_i, hi_i in (
        ("column", cols, found.cols, 0, 2),
        ("row", rows, found.rows, 1, 3),
    ):
        if len(edges) - 1 > n_found and not _mostly_adjacent(b[table], edges, lo_i, hi_i):
            return f"every other {name} would be empty"
    cell = min(float(np.min(np.diff(rows))), float(np.min(np.diff(cols))))
    if cell < 0.8 * th:
        return "cells would be smaller than the text"
    return ""


def _mostly_adjacent(boxes: np.ndarray, edges: list[float], lo_i: int, hi_i: int) -> bool:
    """Whether most intervals holding text have a neighbour holding text too.

    Cutting a table into more rows (or columns) than it has leaves every other
    one empty; a table with a few empty rows does not.
    """
    centre = (boxes[:, lo_i] + boxes[:, hi_i]) / 2
    full = np.histogram(centre, bins=np.asarray(edges, float))[0] > 0
    if full.sum() < 2:
        return True
    pad = np.concatenate([[False], full, [False]])
    neighbour = pad[:-2] | pad[2:]
    return bool((full & neighbour).sum() >= 0.5 * full.sum())
