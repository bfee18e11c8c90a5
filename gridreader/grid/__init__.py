"""Grid finding: from a picture to rows x cols of cell boxes.

The stages are small pure functions:
``estimate_skew`` -> ``measure_ink`` -> ``locate_structure`` / ``locate_text_block``
-> ``find_edges`` (per axis) -> :class:`~gridreader.types.Grid`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from gridreader.errors import NoTableError
from gridreader.grid.ink import InkMaps, edge_map, measure_ink, text_height
from gridreader.grid.locate import Region, locate_structure, locate_text_block
from gridreader.grid.rectify import (
    cell_pitch,
    estimate_skew,
    find_outline,
    frame_to_image,
    needs_homography,
    outline_transform,
    rotation_homography,
    turn_would_do,
    warp_bent,
    warp_to_rectified,
)
from gridreader.grid.separators import (
    drop_slivers,
    regularise,
    split_gaps,
    structural_cuts,
    text_bands,
    trim_outer,
)
from gridreader.preprocess import squeeze_gray, to_gray
from gridreader.types import CellBox, Grid, Shape

__all__ = ["cell_boxes", "cell_cuts", "cut_cell", "cut_cells", "find_grid", "rectify_image"]

_MAX_WORK_SIDE = 2400
_PROBE_SIDE = 1000
_MAX_EXTEND = 100
_MIN_CELL_PX = 7.0
# Pages smaller than this (work pixels) are searched whole: a window would not pay.
_WINDOW_MIN_PX = 500_000
_WINDOW_MAX_SHARE = 0.6


def find_grid(image: np.ndarray, *, shape: Shape | None = None) -> Grid:
    """Find the table in an RGB image.

    Args:
        image: the picture.
        shape: ``(rows, cols)`` the table is known to have: the best grid of
            that shape is returned, never another (see :mod:`gridreader.grid.hint`).

    Raises:
        NoTableError: nothing table-like was found, or nothing of ``shape``.
    """
    if shape is not None:
        from gridreader.grid.hint import fit_shape

        return fit_shape(squeeze_gray(image), find_grid(image), shape)
    # A gray picture in three equal channels: one is a third of the pixels to
    # resize, turn and compare, and every map comes out the same.
    image = squeeze_gray(image)
    h, w = image.shape[:2]
    # Analyse at a scale where text is a comfortable size: tiny screen text is
    # upsampled (edges of 5 px digits are mush), big text downsampled (speed,
    # and fewer stray details). The text height is probed on a small copy.
    probe = min(1.0, _PROBE_SIDE / max(h, w))
    small = _resize(image, probe)
    small_gray = to_gray(small)
    small_edges = edge_map(small_gray)
    text_h = text_height(small_edges) / probe
    factor = _zoom_for(text_h, (h, w))
    # The angle does not depend on scale: measure it once, on the probe (shrunk
    # further for big handwriting, whose strokes would pass for rules).
    angle = estimate_skew(_resize(small_gray, factor / probe) if factor < probe else small_gray)
    # A ruled grid whose outline is no upright rectangle is photographed:
    # perspective and page sag are undone from its outline before the search.
    photo = _find_in_photo(image, small_gray, probe)
    if photo is not None:
        return photo
    if angle == 0.0:
        window = _probe_window(small, small_gray, small_edges, text_h * probe, (h, w), factor)
        if window is not None:
            grid = _find_in_window(image, window, factor)
            if grid is not None:
                return grid
    # The probe's measures carry over when the page is analysed as it is.
    same = probe == 1.0 and factor == 1.0 and angle == 0.0
    return _find_in_page(image, factor, angle, (text_h, small_edges) if same else None)


def _find_in_photo(image: np.ndarray, small_gray: np.ndarray, probe: float) -> Grid | None:
    """The grid of a photographed page, searched in the frame its outline makes
    upright.

    ``None`` when there is no outline, when it is upright or merely turned
    (the rotation search handles that), or when nothing is found in that
    frame. A grid that does not fill the outline it was found in is left to
    the rotation search too, where a turn can straighten the picture.
    """
    outline = find_outline(small_gray, probe)
    if outline is None:
        return None
    rect_t = outline_transform(outline)
    bend = rect_t.bend
    if not needs_homography(outline, bend):
        return None
    frame = Grid((0.0, 1.0), (0.0, 1.0), np.linalg.inv(rect_t.to_rect), rect_t.size, bend=bend)
    rect = (
        warp_bent(image, frame)
        if bend is not None
        else warp_to_rectified(image, rect_t.to_rect, rect_t.size)
    )
    rect_small = _resize(rect, min(1.0, _PROBE_SIDE / max(rect.shape[:2])))
    text_h = text_height(edge_map(to_gray(rect_small))) * rect.shape[1] / rect_small.shape[1]
    # The outline's cells vouch for the text size: a measure far from the
    # cell pitch (rules broken into glyph-sized pieces, noise) is replaced.
    pitch = cell_pitch(outline)
    if not 0.15 * pitch <= text_h <= 0.9 * pitch:
        text_h = 0.45 * pitch
    factor = _zoom_for(text_h, rect.shape)
    edges = edge_map(to_gray(_resize(rect, factor)))
    try:
        found = _find_in_page(rect, factor, 0.0, (text_h * factor, edges))
    except NoTableError:
        return None
    x0, y0, x1, y1 = rect_t.box
    reach = 0.5 * pitch
    fills = (
        found.col_edges[0] <= x0 + reach
        and found.col_edges[-1] >= x1 - reach
        and found.row_edges[0] <= y0 + reach
        and found.row_edges[-1] >= y1 - reach
    )
    if not fills and turn_would_do(outline, bend):
        return None
    return replace(found, to_image=frame.to_image, bend=bend)


def _probe_window(
    small: np.ndarray,
    small_gray: np.ndarray,
    small_edges: np.ndarray,
    small_text_h: float,
    shape: tuple[int, int],
    factor: float,
) -> Region | None:
    """Where the table lies in a big, straight page, from the small probe copy.

    A page screenshot is mostly not table (on the dev bench the table covers
    2-5 % of the big pages), so the full-resolution search only needs a window
    around it. ``None`` when a window would not pay or cannot be trusted: small
    images, text too small to locate on the probe, skewed scans.

    Args:
        small: the probe copy (RGB), ``small_gray`` its luminance and
            ``small_edges`` their edge map.
        small_text_h: text height on the probe copy.
        shape: ``(height, width)`` of the input image.
        factor: the analysis scale of the input image.

    Returns:
        ``(x0, y0, x1, y1)`` in input pixels, or ``None``.
    """
    h, w = shape
    probe = small.shape[1] / w
    if h * w * factor**2 < _WINDOW_MIN_PX or small_text_h < 6:
        return None
    try:
        region, style = _locate(measure_ink(small, small_gray, small_text_h, small_edges))
    except NoTableError:
        return None
    # Rules and fills stand out at any scale; a whitespace-only table among
    # paragraphs is told apart only at full resolution.
    if style != "structured":
        return None
    x0, y0, x1, y1 = region
    # Room for rows the structure does not reach (an untinted header, a row
    # without ruling): _find_in_window checks that the grid kept clear of it.
    mx = 6 * small_text_h + 0.2 * (x1 - x0)
    my = 6 * small_text_h + 0.2 * (y1 - y0)
    box = (
        max(0, int((x0 - mx) / probe)),
        max(0, int((y0 - my) / probe)),
        min(w, int(np.ceil((x1 + mx) / probe))),
        min(h, int(np.ceil((y1 + my) / probe))),
    )
    if (box[2] - box[0]) * (box[3] - box[1]) > _WINDOW_MAX_SHARE * h * w:
        return None
    return box


def _find_in_window(image: np.ndarray, window: Region, factor: float) -> Grid | None:
    """The grid inside a window of a straight page, or ``None`` when the window
    turns out too tight (the table reaches its cut sides) or holds no table."""
    x0, y0, x1, y1 = window
    crop = image[y0:y1, x0:x1]
    work = _resize(crop, factor)
    try:
        rows, cols, style = _search(work, to_gray(work), factor, None)
    except NoTableError:
        return None
    if style != "structured":
        return None
    hw, ww = work.shape[:2]
    cut = (x0 > 0, y0 > 0, x1 < image.shape[1], y1 < image.shape[0])
    pr, pc = float(np.median(np.diff(rows))), float(np.median(np.diff(cols)))
    # Extending the table by a row needs a whole pitch of page beyond it.
    if (
        (cut[0] and cols[0] < 1.5 * pc)
        or (cut[1] and rows[0] < 1.5 * pr)
        or (cut[2] and ww - cols[-1] < 1.5 * pc)
        or (cut[3] and hw - rows[-1] < 1.5 * pr)
    ):
        return None
    return Grid(
        row_edges=tuple(y0 + float(v) / factor for v in rows),
        col_edges=tuple(x0 + float(v) / factor for v in cols),
        to_image=np.eye(3),
        rectified_size=(image.shape[1], image.shape[0]),
        style=style,
    )


def _find_in_page(
    image: np.ndarray,
    factor: float,
    angle: float,
    measured: tuple[float, np.ndarray] | None = None,
) -> Grid:
    """The grid anywhere in the page, straightening it first when skewed.

    ``measured`` (text height and edge map) may be passed when they were
    already measured on this very image at this scale, unturned.
    """
    work = _resize(image, factor)
    gray = to_gray(work)
    # Edges found in the work frame W = to_rect @ diag(factor) @ input.
    to_rect, size = _straighten(gray, angle)
    if not np.allclose(to_rect, np.eye(3)):
        work = warp_to_rectified(work, to_rect, size)
        gray = to_gray(work)
    rows, cols, style = _search(work, gray, factor, measured)
    # The grid is kept at full resolution, in the frame W / factor.
    f = np.diag([factor, factor, 1.0])
    to_image = np.linalg.inv(f) @ np.linalg.inv(to_rect) @ f
    return Grid(
        row_edges=tuple(float(v) / factor for v in rows),
        col_edges=tuple(float(v) / factor for v in cols),
        to_image=to_image,
        rectified_size=(round(work.shape[1] / factor), round(work.shape[0] / factor)),
        style=style,
    )


def _search(
    work: np.ndarray,
    gray: np.ndarray,
    factor: float,
    measured: tuple[float, np.ndarray] | None = None,
) -> tuple[list[float], list[float], str]:
    """Row and column edges of the table in a straight work image.

    Returns:
        ``(rows, cols, style)``, edges in work pixels.

    Raises:
        NoTableError: nothing table-like was found.
    """
    maps = measure_ink(work, gray, *(measured or (None, None)))
    region, style = _locate(maps)
    cols = find_edges(maps, region, axis=1)
    rows = find_edges(maps, region, axis=0)
    rows, cols = _trim_open_sides(maps, rows, cols)
    # Rows (then columns) are added one at a time for as long as they line up:
    # the structure may stop short of the text (small rounded fills, rows
    # without ruling).
    for _ in range(_MAX_EXTEND):
        grown_cols = _extend_outer(maps, rows, cols, axis=1)
        grown_rows = _extend_outer(maps, rows, grown_cols, axis=0)
        if (grown_rows, grown_cols) == (rows, cols):
            break
        rows, cols = grown_rows, grown_cols
    if len(rows) < 2 or len(cols) < 2 or (len(rows) - 1) * (len(cols) - 1) < 2:
        raise NoTableError("no table found (fewer than two cells)")
    # Cells hold text: a "grid" of cells smaller than its own text, or under
    # 7 px in the input image (the smallest screen cells are 8 px), is texture
    # or noise (a dithered picture), not a table.
    min_cell = max(_MIN_CELL_PX * factor, 0.8 * maps.text_h)
    if float(np.median(np.diff(rows))) < min_cell or float(np.median(np.diff(cols))) < min_cell:
        raise NoTableError("no table found (only texture)")
    return rows, cols, style


def _straighten(gray: np.ndarray, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Homography that turns ``gray`` by ``angle`` degrees (identity for 0)."""
    size = (gray.shape[1], gray.shape[0])
    if not angle:
        return np.eye(3), size
    return rotation_homography(size, angle)


def _resize(img: np.ndarray, f: float) -> np.ndarray:
    if f == 1.0:
        return img
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=interp)


def _zoom_for(text_h: float, shape: tuple[int, ...]) -> float:
    side = max(shape[0], shape[1])
    if 0 < text_h < 9:
        z = min(3.0, 12.0 / text_h)
    elif text_h > 36:
        z = 26.0 / text_h
    else:
        z = 1.0
    return min(z, _MAX_WORK_SIDE / side) if z * side > _MAX_WORK_SIDE else z


def _locate(maps: InkMaps) -> tuple[Region, str]:
    """The table's region: its ruled or filled structure, else its text block."""
    structure = locate_structure(maps)
    if structure is None:
        text = locate_text_block(maps)
        if text is None:
            raise NoTableError("no table found")
        return text, "text"
    return structure, "structured"


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
        # with the table (see _extend_outer).
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


def _extend_outer(maps: InkMaps, rows: list[float], cols: list[float], axis: int) -> list[float]:
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
        if _closed_beyond(maps, across, (out[0], out[-1]), (lo, hi), axis):
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
        if direction < 0:
            out.insert(0, max(0.0, edge - pitch))
        else:
            out.append(min(float(g.shape[0]), edge + pitch))
    return out


def _trim_open_sides(
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
                if _closed_beyond(maps, across, body, (int(lo), int(hi)), axis):
                    del along[end]
                    changed = True
                    break
    return rows, cols


def _closed_beyond(
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


def cell_boxes(grid: Grid) -> list[CellBox]:
    """Every cell's box in input-image pixels, row-major: the bounding box of
    its four corners mapped back into the image."""
    xs, ys = np.asarray(grid.col_edges, np.float64), np.asarray(grid.row_edges, np.float64)
    x0, y0 = np.meshgrid(xs[:-1], ys[:-1])
    x1, y1 = np.meshgrid(xs[1:], ys[1:])
    if grid.bend is None:
        corners = np.stack([x0, y0, x1, y0, x1, y1, x0, y1], axis=-1).reshape(1, -1, 2)
        img = cv2.perspectiveTransform(corners, grid.to_image).reshape(-1, 4, 2)
    else:
        # On a sagging page the sides curve: follow them, not just the corners.
        t = np.linspace(0.0, 1.0, 5)[:, None, None]
        pts = np.concatenate(
            [
                np.stack([x0 + (x1 - x0) * t, y0 + 0 * t], -1),
                np.stack([x0 + (x1 - x0) * t, y1 + 0 * t], -1),
                np.stack([x0 + 0 * t, y0 + (y1 - y0) * t], -1),
                np.stack([x1 + 0 * t, y0 + (y1 - y0) * t], -1),
            ]
        )
        img = frame_to_image(grid, pts.reshape(-1, 2)).reshape(20, -1, 2).transpose(1, 0, 2)
    lo = np.floor(img.min(axis=1)).astype(int)
    hi = np.ceil(img.max(axis=1)).astype(int)
    return [
        CellBox(k // grid.cols, k % grid.cols, (int(a), int(b), int(c), int(d)))
        for k, (a, b, c, d) in enumerate(np.hstack([lo, hi]).tolist())
    ]


def rectify_image(image: np.ndarray, grid: Grid) -> np.ndarray:
    """The input image resampled into the grid's full-resolution rectified frame."""
    if grid.bend is not None:
        return warp_bent(image, grid)
    if np.allclose(grid.to_image, np.eye(3), atol=1e-9):
        return image
    return warp_to_rectified(image, np.linalg.inv(grid.to_image), grid.rectified_size)


def cut_cells(rectified: np.ndarray, grid: Grid) -> list[np.ndarray]:
    """Crops of every cell from the rectified image, row-major."""
    ys, xs = cell_cuts(rectified.shape[:2], grid)
    return [cut_cell(rectified, ys, xs, r, c) for r in range(grid.rows) for c in range(grid.cols)]


def cell_cuts(shape: tuple[int, ...], grid: Grid) -> tuple[list[int], list[int]]:
    """The grid's row and column edges as pixel indices into a rectified image
    of ``shape``."""
    h, w = shape[:2]
    ys = [min(h, max(0, round(v))) for v in grid.row_edges]
    xs = [min(w, max(0, round(v))) for v in grid.col_edges]
    return ys, xs


def cut_cell(image: np.ndarray, ys: Sequence[int], xs: Sequence[int], r: int, c: int) -> np.ndarray:
    """Cell ``(r, c)`` of ``image`` between the pixel edges ``ys`` and ``xs``
    (a pixel at least each way)."""
    return image[ys[r] : max(ys[r] + 1, ys[r + 1]), xs[c] : max(xs[c] + 1, xs[c + 1])]
