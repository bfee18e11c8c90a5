"""The search: from a picture to a :class:`~gridreader.types.Grid`.

``find_grid`` measures the text size on a small probe copy, picks the analysis
scale, straightens skewed pages (:mod:`.rectify`), builds the evidence maps
(:mod:`.ink`), locates the table (:mod:`.locate`), finds its row and column
edges (:mod:`.edges`) and settles its outer rows and columns (:mod:`.bounds`).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import cv2
import numpy as np

from gridreader.errors import NoTableError
from gridreader.grid.bounds import grow_outer, merge_slivers, trim_open_sides
from gridreader.grid.cells import cell_cuts, rectify_image
from gridreader.grid.edges import find_edges
from gridreader.grid.ink import InkMaps, edge_map, measure_ink, text_height
from gridreader.grid.lattice import group_lines, lattice_edges, number_lines
from gridreader.grid.locate import Region, locate_structure, locate_text_block
from gridreader.grid.rectify import (
    cell_pitch,
    estimate_skew,
    find_outline,
    needs_homography,
    outline_transform,
    rotation_homography,
    turn_would_do,
    warp_bent,
    warp_to_rectified,
)
from gridreader.grid.refuse import check_cells
from gridreader.grid.score import drop_letter_header, score_grid
from gridreader.grid.tokens import Token, find_tokens
from gridreader.imaging import rendered_page, squeeze_gray, to_gray
from gridreader.types import Grid, Shape

_MAX_WORK_SIDE = 2400
_PROBE_SIDE = 1000
_MIN_CELL_PX = 7.0
# Pages smaller than this (work pixels) are searched whole: a window would not pay.
_WINDOW_MIN_PX = 500_000
_WINDOW_MAX_SHARE = 0.6
# Fewest cells an outline must enclose to be taken for a photographed grid.
_PHOTO_MIN_CELLS = 9
# A rule along this share of the grid's height (or width) runs through it.
_THROUGH = 0.8


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
    grid = _find_any(image)
    # Whatever lattice was found must hold what number tables hold: noise,
    # photos and textures make lattices too.
    rect = rectify_image(image, grid)
    ys, xs = cell_cuts(rect.shape, grid)
    check_cells(to_gray(rect), ys, xs)
    return grid


def _find_any(image: np.ndarray) -> Grid:
    """The best lattice in ``image``, before the check that it holds a table."""
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
    photo = None if rendered_page(small_gray) else _find_in_photo(image, small_gray, probe)
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
    # A grid photographed for its numbers has rows and columns: a piece of
    # ink around a few holes (a strip of badges on a web page) is no outline.
    if outline is None or outline.cells < _PHOTO_MIN_CELLS:
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
        # The outline's rules vouch for the lines: on the photo set the lattice
        # of the numbers lost a row or column of empty puzzle cells 4 times
        # and mended 1 split column.
        found = _find_in_page(rect, factor, 0.0, (text_h * factor, edges), photo=True)
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
    # A single row or column is a piece of the table the probe saw (a
    # footer's rule, the last row under it): the whole page is searched.
    if style == "text" or len(rows) < 3 or len(cols) < 3:
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
    photo: bool = False,
) -> Grid:
    """The grid anywhere in the page, straightening it first when skewed.

    ``measured`` (text height and edge map) may be passed when they were
    already measured on this very image at this scale, unturned; ``photo``
    is a photographed grid cut from the frame its outline makes upright (see
    :func:`_search`).
    """
    work = _resize(image, factor)
    gray = to_gray(work)
    # Edges found in the work frame W = to_rect @ diag(factor) @ input.
    to_rect, size = _straighten(gray, angle)
    if not np.allclose(to_rect, np.eye(3)):
        work = warp_to_rectified(work, to_rect, size)
        gray = to_gray(work)
    rows, cols, style = _search(work, gray, factor, measured, photo)
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
    photo: bool = False,
) -> tuple[list[float], list[float], str]:
    """Row and column edges of the table in a straight work image.

    A ``photo`` (a photographed grid in the frame its ruled outline makes
    upright) keeps the structural grid: its outline vouches for the lines,
    and the lattice of the numbers would merge or drop rows and columns of
    empty puzzle cells. Its cells are of one size, so wider slivers go.

    Returns:
        ``(rows, cols, style)``, edges in work pixels.

    Raises:
        NoTableError: nothing table-like was found.
    """
    text_h, edges = measured or (None, None)
    maps = measure_ink(work, gray, text_h, edges, photo=photo)
    region, style = _locate(maps)
    cols = find_edges(maps, region, axis=1)
    rows = find_edges(maps, region, axis=0)
    rows, cols = trim_open_sides(maps, rows, cols)
    rows, cols = grow_outer(maps, rows, cols)
    # A web table's empty row is its padding tall, 0.3 of a pitch or more:
    # only a photographed grid loses slivers that wide.
    rows, cols = merge_slivers(maps, rows, cols, 0.4 if photo else 0.25)
    if not photo:
        tokens = find_tokens(maps.glyphs, maps.text_h, gray)
        rows, cols, style = _best_candidate(maps, gray, (rows, cols, style), tokens)
        rows = drop_letter_header(tokens, rows, cols)
    if len(rows) < 2 or len(cols) < 2 or (len(rows) - 1) * (len(cols) - 1) < 2:
        raise NoTableError("no table found (fewer than two cells)")
    # Cells hold text: a "grid" of cells smaller than its own text, or under
    # 7 px in the input image (the smallest screen cells are 8 px), is texture
    # or noise (a dithered picture), not a table.
    min_cell = max(_MIN_CELL_PX * factor, 0.8 * maps.text_h)
    if float(np.median(np.diff(rows))) < min_cell or float(np.median(np.diff(cols))) < min_cell:
        raise NoTableError("no table found (only texture)")
    return rows, cols, style


def _best_candidate(
    maps: InkMaps,
    gray: np.ndarray,
    structural: tuple[list[float], list[float], str],
    tokens: list[Token],
) -> tuple[list[float], list[float], str]:
    """The structural grid, or the lattice of the numbers when it explains
    the picture's ``tokens`` better."""
    lattice = lattice_edges(maps, tokens)
    if lattice is None:
        if structural[2] == "text" and len(structural[0]) >= 2 and len(structural[1]) >= 2:
            # A block of text with no line of numbers in it is prose.
            lines = number_lines(group_lines(tokens, maps.text_h), maps.text_h)
            numbers = [t for line in lines for t in line]
            if score_grid(numbers, [], structural[0], structural[1]).explained == 0:
                raise NoTableError("no table found (text without numbers)")
        return structural
    if len(structural[0]) < 2 or len(structural[1]) < 2:
        return lattice[0], lattice[1], "lattice"
    # A rule the whole table's height inside one of the lattice's columns
    # (or its width inside a row) parts two cells it took for one: two
    # ruled grids side by side whose rows line up, read as one.
    if _ruled_through(maps, *lattice) > _ruled_through(maps, structural[0], structural[1]):
        return structural
    lines = number_lines(group_lines(tokens, maps.text_h), maps.text_h)
    numbers = [t for line in lines for t in line]
    words = [t for t in tokens if t.word]
    mine = score_grid(numbers, words, structural[0], structural[1])
    theirs = score_grid(numbers, words, *lattice)
    # The lattice replaces the structure only to mend whole lines (a header
    # or padding row, dropped columns), or edges through the numbers, without
    # cutting more of them: token shapes are less certain than rules
    # (handwriting, fragments of glyphs), so ties stay with the structure.
    # A structure with several whole-line faults may be mended at the cost
    # of a few more shared cells (letter-spaced digits).
    slack = 0.05 * theirs.explained if mine.faults >= 2 else 0.0
    fewer_faults = theirs.faults < mine.faults and theirs.cut <= mine.cut + slack
    # Numbers cut, or two to a cell (a column the structure merged where no
    # rule parts it), against none.
    fewer_splits = theirs.faults == mine.faults and (
        (theirs.split == 0 and mine.split >= 2 and theirs.crowded <= mine.crowded)
        or (theirs.cut == 0 and mine.cut >= 2)
    )
    # Numbers the structure's text rows hold (header letters) may go, but a
    # lattice of less than half the structure's numbers is a fragment: the
    # structure's faults were numbers the token search missed (broken glyphs).
    if (
        (fewer_faults or fewer_splits)
        and theirs.explained >= mine.explained - 2 * mine.text_rows * len(structural[1])
        and 2 * theirs.explained >= mine.explained
    ):
        return lattice[0], lattice[1], "lattice"
    # A structure around no number at all (a header line, a card's title
    # band) is no number table, whatever the lattice's faults.
    if mine.explained == 0 and theirs.explained >= 2:
        return lattice[0], lattice[1], "lattice"
    # Without rules or fills the structure is only a block of ink, no surer
    # than the lattice; rows far apart (generous padding) split it into
    # blocks of one row each. Rules and fills can mislead too: a card's
    # header band taken for a row, a table's left columns left out where
    # the fills stop. A lattice that holds half as many numbers again (and
    # two more, against rules or fills), with no more whole-line faults and
    # at most a fifth more shared cells, is the table.
    extra = 0 if structural[2] == "text" else 2
    if (
        theirs.explained >= 1.5 * mine.explained + extra
        and theirs.faults <= mine.faults
        and theirs.cut <= mine.cut + 0.2 * theirs.explained
    ):
        return lattice[0], lattice[1], "lattice"
    return structural


def _ruled_through(maps: InkMaps, rows: list[float], cols: list[float]) -> int:
    """How many rows and columns of the grid have a rule across their
    middle, from one end of the grid to the other."""
    y0, y1 = round(rows[0]), round(rows[-1])
    x0, x1 = round(cols[0]), round(cols[-1])
    if y1 - y0 < 2 or x1 - x0 < 2:
        return 0
    down = maps.rules_v[y0:y1, x0:x1].mean(axis=0) >= _THROUGH
    across = maps.rules_h[y0:y1, x0:x1].mean(axis=1) >= _THROUGH
    n = 0
    for edges, full, start in ((cols, down, x0), (rows, across, y0)):
        for a, b in itertools.pairwise(edges):
            lo, hi = round(a + 0.2 * (b - a)) - start, round(b - 0.2 * (b - a)) - start
            n += bool(full[max(0, lo) : max(0, hi + 1)].any())
    return n


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
