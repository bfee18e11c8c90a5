"""Row and column boundaries along one axis of a table region."""

from __future__ import annotations

import itertools

import numpy as np

_STRUCT_COVER = 0.3


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` runs of True in a 1-D boolean array."""
    f = np.concatenate([[False], flags.astype(bool), [False]])
    d = np.diff(f.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def structural_cuts(
    cover: np.ndarray, merge: float, threshold: float = _STRUCT_COVER
) -> list[float]:
    """Centres of rule/step groups whose coverage of the region is high enough."""
    cuts: list[list[int]] = []
    for s, e in runs(cover >= threshold):
        if cuts and s - cuts[-1][1] <= merge:
            cuts[-1][1] = e
        else:
            cuts.append([s, e])
    return [(s + e - 1) / 2.0 for s, e in cuts]


def text_bands(profile: np.ndarray, min_gap: float) -> list[tuple[int, int]]:
    """Runs of text ink, with gaps narrower than ``min_gap`` bridged."""
    bands: list[list[int]] = []
    for s, e in runs(profile > 0):
        if bands and s - bands[-1][1] < min_gap:
            bands[-1][1] = e
        else:
            bands.append([s, e])
    return [(s, e) for s, e in bands]


def split_gaps(bands: list[tuple[int, int]], text_h: float) -> float:
    """Smallest gap that separates two cells, learned from the gaps themselves.

    Gaps inside a number (between its digits) are narrow and gaps between cells
    wide; when both kinds occur, the widest jump in the sorted gap widths splits
    them.
    """
    gaps = np.array([b[0] - a[1] for a, b in itertools.pairwise(bands)], float)
    floor = max(2.0, 0.12 * text_h)
    if gaps.size == 0:
        return floor
    g = np.sort(gaps)
    if g.size >= 2:
        ratios = (g[1:] + 1.0) / (g[:-1] + 1.0)
        i = int(np.argmax(ratios))
        if ratios[i] >= 1.5 and g[i + 1] >= floor and g[i] <= 0.35 * text_h:
            return float(max(floor, g[i] + 0.5))
    return max(floor, 0.25 * text_h)


def regularise(edges: list[float], text_pitch: float | None = None) -> list[float]:
    """Split intervals that are a whole multiple of the common pitch.

    A missing separator (two adjacent same-colour fills, an empty row in a
    borderless table) leaves an interval k times the usual one; tables with
    uniform rows or columns are the norm, so such an interval is divided.
    """
    if len(edges) < 3:
        return edges
    d = np.diff(edges)
    pitch = float(np.median(d))
    if text_pitch:
        pitch = min(pitch, text_pitch) if abs(pitch - text_pitch) / text_pitch < 0.6 else pitch
    if pitch <= 0:
        return edges
    out = [edges[0]]
    last = len(edges) - 2
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        k = round((b - a) / pitch)
        # Outer intervals are never split: beyond the table lie margins, paper
        # edges and titles, which only happen to be a multiple of the pitch.
        if 0 < i < last and k >= 2 and abs((b - a) / pitch - k) < 0.2 * k:
            out.extend(a + (b - a) * i / k for i in range(1, k))
        out.append(b)
    return _join_halves(out, pitch)


def _join_halves(edges: list[float], pitch: float) -> list[float]:
    """Remove a stray cut that splits one pitch-sized cell into two short ones."""
    out = list(edges)
    i = 1
    while i < len(out) - 1:
        left, right = out[i] - out[i - 1], out[i + 1] - out[i]
        if left < 0.8 * pitch and right < 0.8 * pitch and abs(left + right - pitch) < 0.2 * pitch:
            del out[i]
        else:
            i += 1
    return out


def drop_slivers(edges: list[float], min_size: float) -> list[float]:
    """Merge intervals too small to hold a cell into their neighbours."""
    out = list(edges)
    changed = True
    while changed and len(out) > 2:
        changed = False
        d = np.diff(out)
        i = int(np.argmin(d))
        if d[i] < min_size:
            # Remove the inner edge of the sliver, keeping the outer table edges.
            if i == 0:
                del out[1]
            elif i == len(d) - 1:
                del out[-2]
            else:
                out[i] = (out[i] + out[i + 1]) / 2
                del out[i + 1]
            changed = True
    return out


def trim_outer(edges: list[float], tolerance: float = 0.35) -> list[float]:
    """Drop outer intervals whose size is far from the table's pitch.

    Paper edges, page borders and a title band above a ruled sheet give cuts
    outside the table; the cells of a number grid share one pitch. With few
    intervals only slivers (under 0.6 of the rest) are dropped.
    """
    out = list(edges)
    while len(out) >= 3:
        first, last = out[1] - out[0], out[-1] - out[-2]
        if len(out) >= 5:
            pitch = float(np.median(np.diff(out[1:-1])))
            bad_first = abs(first / pitch - 1) > tolerance
            bad_last = abs(last / pitch - 1) > tolerance
        else:
            bad_first = first < 0.6 * last
            bad_last = last < 0.6 * first
        if bad_first:
            del out[0]
        elif bad_last:
            del out[-1]
        else:
            break
    return out
