"""Row and column edges of a located table, along one axis at a time."""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from gridreader.grid.ink import InkMaps
from gridreader.grid.locate import Region
from gridreader.grid.separators import (
    drop_slivers,
    regularise,
    split_gaps,
    structural_cuts,
    text_bands,
    trim_outer,
)


def find_edges(maps: InkMaps, region: Region, axis: int) -> list[float]:
    """Boundaries of rows (``axis=0``) or columns (``axis=1``) inside ``region``."""
    x0, y0, x1, y1 = region
    th = maps.text_h
    # A rule in a scan drifts across its length (rotation left over after
    # straightening, perspective); count it as covering its row if it stays
    # within about a degree of it.
    length = (x1 - x0) if axis == 0 else (y1 - y0)
    reach = max(5, int(0.016 * length) | 1)
    drift = np.ones((reach, 1) if axis == 0 else (1, reach), np.uint8)
    if axis == 0:
        rules, steps = maps.rules_h[y0:y1, x0:x1], maps.steps_h[y0:y1, x0:x1]
        glyphs = maps.glyphs[y0:y1, x0:x1].sum(axis=1)
        rule_cover = cv2.dilate(rules, drift).mean(axis=1)
        step_cover = cv2.dilate(steps, drift).mean(axis=1)
        offset = y0
    else:
        rules, steps = maps.rules_v[y0:y1, x0:x1], maps.steps_v[y0:y1, x0:x1]
        glyphs = maps.glyphs[y0:y1, x0:x1].sum(axis=0)
        rule_cover = cv2.dilate(rules, drift).mean(axis=0)
        step_cover = cv2.dilate(steps, drift).mean(axis=0)
        offset = x0
    raw = text_bands(glyphs, min_gap=1)
    bands = text_bands(glyphs, min_gap=split_gaps(raw, th)) if axis == 1 else raw
    merge = max(2.0, 0.35 * th)
    rule_cuts = structural_cuts(rule_cover, merge)
    # Colour steps are noisier evidence (JPEG blocks, fills' anti-aliasing).
    step_cuts = structural_cuts(step_cover, merge, threshold=0.4)
    cuts = _merge_cuts(rule_cuts, step_cuts, merge)
    if len(cuts) >= 2:
        # Structure gives the cells; text splits what structure leaves whole
        # (zebra rows have no column rules, only tint ends at the sides). Text
        # outside the outermost cuts is added later, only if it lines up
        # with the table (see extend_outer).
        edges = sorted(cuts + _unruled_gaps(bands, cuts, th, 0.5 if axis == 0 else 0.25))
    elif bands:
        edges = _edges_from_bands(bands)
    else:
        return []
    edges = regularise(edges)
    edges = drop_slivers(edges, max(3.0, 0.5 * th))
    edges = trim_outer(edges)
    limit = maps.glyphs.shape[axis]
    return [min(float(limit), max(0.0, e + offset)) for e in edges]


def _unruled_gaps(
    bands: list[tuple[int, int]], cuts: list[float], th: float, min_band: float
) -> list[float]:
    """Mid-points of the whitespace between text bands that no cut passes through,
    for bands that lie inside the structured span."""
    out = []
    # Only whole lines of text count: bits of glyphs must not split a cell.
    bands = [b for b in bands if b[1] - b[0] >= min_band * th]
    for a, b in itertools.pairwise(bands):
        if b[0] - a[1] < 0.15 * th:
            continue
        if a[0] < cuts[0] or b[1] > cuts[-1]:
            continue
        if not any(a[1] <= c <= b[0] for c in cuts):
            out.append((a[1] + b[0]) / 2.0)
    return out


def _merge_cuts(a: list[float], b: list[float], merge: float) -> list[float]:
    out: list[float] = []
    for c in sorted(a + b):
        if out and c - out[-1] <= merge:
            out[-1] = (out[-1] + c) / 2
        else:
            out.append(c)
    return out


def _edges_from_bands(bands: list[tuple[int, int]]) -> list[float]:
    # Cells reach halfway into the whitespace around their text, the outer
    # ones as far out as the inner gaps are wide.
    mids = [(a[1] + b[0]) / 2.0 for a, b in itertools.pairwise(bands)]
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(bands)]
    half = float(np.median(gaps)) / 2.0 if gaps else 0.25 * (bands[0][1] - bands[0][0])
    return [bands[0][0] - half, *mids, bands[-1][1] + half]
