"""The table's outer rows and columns: grown while text lines up, trimmed
where the table's own ruling stops."""

from __future__ import annotations

import itertools

import numpy as np

from gridreader.grid.ink import InkMaps
from gridreader.grid.separators import text_bands

_MAX_EXTEND = 100
# Rows and columns this much narrower than the median, with no glyph, are
# slivers; one that makes a pitch, to this share, with a neighbour is a cut
# through that cell.
_SLIVER = 0.4
_ONE_PITCH = 0.1


def grow_outer(
    maps: InkMaps, rows: list[float], cols: list[float]
) -> tuple[list[float], list[float]]:
    """Add outer rows (then columns) one at a time for as long as they line up.

    The structure may stop short of the text: small rounded fills, rows
    without ruling.
    """
    for _ in range(_MAX_EXTEND):
        grown_cols = extend_outer(maps, rows, cols, axis=1)
        grown_rows = extend_outer(maps, rows, grown_cols, axis=0)
        if (grown_rows, grown_cols) == (rows, cols):
            break
        rows, cols = grown_rows, grown_cols
    return rows, cols


def extend_outer(maps: InkMaps, rows: list[float], cols: list[float], axis: int) -> list[float]:
    """Add a row (``axis=0``) or column just outside the outermost edges when it
    holds text that lines up with the table.

    Zebra tables often leave the first row untinted and unruled, and many ruled
    tables draw inner rules only.
    """
    along, across = (rows, cols) if axis == 0 else (cols, rows)
    if len(along) < 2 or len(across) < 2:
        return along
    g = maps.glyphs if axis == 0 else maps.glyphs.T
    d = np.diff(along)
    pitch = float(np.median(d[d >= 0.6 * d.max()]))
    th = maps.text_h
    a0, a1 = int(across[0]), int(across[-1])
    out = list(along)
    for direction in (-1, 1):
        edge = out[0] if direction < 0 else out[-1]
        lo = int(max(0, edge - pitch)) if direction < 0 else int(edge) + 1
        hi = int(edge) if direction < 0 else int(min(g.shape[0], edge + pitch))
        if hi - lo < 3:
            continue
        win = g[lo:hi, a0:a1]
        bands = text_bands(win.sum(axis=1), min_gap=1)
        if not bands:
            continue
        extent = bands[-1][1] - bands[0][0]
        if extent < 0.3 * th or extent > max(1.4 * th, 0.9 * pitch):
            continue
        # Text that runs into the far end of the window continues beyond it.
        far_end = bands[0][0] == 0 if direction < 0 else bands[-1][1] == hi - lo
        if far_end:
            continue
        # A table closed by structure on this side (its column rules or fills
        # stop here) has no row beyond it.
        if closed_beyond(maps, across, (out[0], out[-1]), (lo, hi), axis):
            continue
        # Its words must sit inside the cells: prose (a title, a footer) runs
        # across the table's column edges, a row of numbers does not.
        tokens = text_bands(win.sum(axis=0), min_gap=max(2.0, 0.35 * th))
        inner = [c - a0 for c in across[1:-1]]
        straddling = sum(
            1 for s0, s1 in tokens if any(s0 + 0.25 * th < c < s1 - 0.25 * th for c in inner)
        )
        if straddling:
            continue
        # The new line is placed around its own text, as the body's text sits
        # in its cells: rows a fraction of a pixel taller than the measured
        # pitch would otherwise drift off their text, row after row.
        centre = lo + (bands[0][0] + bands[-1][1]) / 2.0 - _text_offset(g, along, a0, a1)
        step = min(1.15 * pitch, max(0.85 * pitch, abs(centre - edge) + pitch / 2.0))
        if direction < 0:
            out.insert(0, max(0.0, edge - step))
        else:
            out.append(min(float(g.shape[0]), edge + step))
    return out


def _text_offset(g: np.ndarray, along: list[float], a0: int, a1: int) -> float:
    """Median offset of the text's middle from its line's middle, over the
    lines between ``along``'s edges that hold text (0 when none do)."""
    offsets = []
    for lo, hi in itertools.pairwise(along):
        bands = text_bands(g[int(lo) : int(hi), a0:a1].sum(axis=1), min_gap=1)
        if bands:
            mid = int(lo) + (bands[0][0] + bands[-1][1]) / 2.0
            offsets.append(mid - (lo + hi) / 2.0)
    return float(np.median(offsets)) if offsets else 0.0


def trim_open_sides(
    maps: InkMaps, rows: list[float], cols: list[float]
) -> tuple[list[float], list[float]]:
    """Drop outer rows/columns that the table's own ruling does not reach.

    When the column rules run through the body of a table but not through its
    outermost "row", that row is a margin, a title or the paper beyond the
    border, however pitch-like its height.
    """
    rows, cols = list(rows), list(cols)
    changed = True
    while changed:
        changed = False
        for axis in (0, 1):
            along, across = (rows, cols) if axis == 0 else (cols, rows)
            if len(along) < 4:
                continue
            for end in (0, -1):
                lo, hi = (along[0], along[1]) if end == 0 else (along[-2], along[-1])
                body = (along[1], along[-2])
                if closed_beyond(maps, across, body, (int(lo), int(hi)), axis):
                    del along[end]
                    changed = True
                    break
    return rows, cols


def closed_beyond(
    maps: InkMaps,
    across: list[float],
    body: tuple[float, float],
    window: tuple[int, int],
    axis: int,
) -> bool:
    """Whether the perpendicular structure (column rules or fill edges, for a
    row) runs through the table body but stops before ``window``."""
    perp = (maps.rules_v | maps.steps_v) if axis == 0 else (maps.rules_h | maps.steps_h).T
    inner = [round(c) for c in across[1:-1]]
    if not inner:
        return False

    # Scanned rules drift a few pixels off the fitted edge.
    slack = max(3, round(0.15 * maps.text_h))

    def structured(y0: int, y1: int) -> float:
        band = perp[max(0, y0) : max(0, y1)]
        if band.shape[0] == 0:
            return 0.0
        hits = [band[:, max(0, c - slack) : c + slack + 1].any(axis=1).mean() >= 0.4 for c in inner]
        return float(np.mean(hits))

    return structured(int(body[0]), int(body[1])) >= 0.5 and structured(*window) < 0.25


def merge_slivers(
    maps: InkMaps, rows: list[float], cols: list[float], share: float
) -> tuple[list[float], list[float]]:
    """Remove rows and columns under :data:`_SLIVER` of the median width that
    hold no glyph.

    A sliver that makes one pitch with a neighbour is a stray cut through
    that cell: the edge between them goes. Else, when under ``share`` of the
    pitch, it is a thick rule cut at both edges, or a line doubled where a
    photographed page sags: its edges become one at its middle (an outer
    sliver goes). A web table's empty row, only its padding tall (0.3 of a
    pitch or more), makes one and a half pitches or so with a neighbour.
    """
    pts = maps.glyph_centres
    rows, cols = list(rows), list(cols)
    for axis in (0, 1):
        along, across = (rows, cols) if axis == 0 else (cols, rows)
        while len(along) >= 4:
            change = _sliver_change(pts, along, across, axis, share)
            if change is None:
                break
            start, stop, new = change
            along[start:stop] = new
    return rows, cols


def _sliver_change(
    pts: np.ndarray, along: list[float], across: list[float], axis: int, share: float
) -> tuple[int, int, list[float]] | None:
    """The first sliver's mending as ``(start, stop, edges)`` to put in
    ``along[start:stop]``, or ``None``."""
    widths = np.diff(along)
    pitch = float(np.median(widths))
    last = len(widths) - 1
    for i, w in enumerate(widths.tolist()):
        if w >= _SLIVER * pitch:
            continue
        a, b = along[i], along[i + 1]
        if pts.size:
            on, off = (pts[:, 1], pts[:, 0]) if axis == 0 else (pts[:, 0], pts[:, 1])
            if np.any((on > a) & (on < b) & (off > across[0]) & (off < across[-1])):
                continue
        joined = [
            (abs(w + widths[j] - pitch), edge)
            for j, edge in ((i - 1, i), (i + 1, i + 1))
            if 0 <= j <= last
        ]
        miss, edge = min(joined)
        if miss <= _ONE_PITCH * pitch:
            return edge, edge + 1, []
        if w < share * pitch:
            if i == 0:
                return 0, 1, []
            if i == last:
                return len(along) - 1, len(along), []
            return i, i + 2, [(a + b) / 2.0]
    return None
