"""Rectification: the rotation that straightens a scan, and the perspective and
page sag that straighten a photographed grid."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gridreader.grid.ink import thin_ink
from gridreader.types import Grid, PageBend

_MAX_ANGLE = 7.0
_MIN_SHIFT_PX = 3.5


def _sharpness(mask: np.ndarray, angle: float) -> float:
    h, w = mask.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rot = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST)
    # Integer profiles (exact), summed by OpenCV: several times numpy's speed.
    rows = cv2.reduce(rot, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.int64)
    cols = cv2.reduce(rot, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.int64)
    # Rows of text and rules give a spiky profile only when aligned; both axes
    # count so a table with only vertical structure still aligns.
    return float(np.square(np.diff(rows)).sum() + np.square(np.diff(cols)).sum())


def estimate_skew(gray: np.ndarray) -> float:
    """Angle in degrees (counter-clockwise) that straightens the content.

    The angle is the one that makes the row and column ink profiles sharpest:
    rules and rows of text alike give spiky profiles only when aligned. The
    search runs coarse on a half-size copy and fine on the full mask. Checked
    against the true angles of 42 skewed scans (from their cell boxes), it is
    as close as a Hough search for the rules (0.27 degree on average) at a
    third of the time.
    """
    h, w = gray.shape
    scale = min(1.0, 900.0 / max(h, w))
    small = cv2.resize(
        gray, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA
    )
    mask = thin_ink(small, 9)[0]
    if mask.sum() < 50:
        return 0.0
    mh, mw = mask.shape
    # Screenshots are exactly straight: their profiles are sharpest at 0 by a
    # wide margin against a small turn, and the search is skipped. The turn
    # moves the content by a few pixels at least (on a small image 0.4 degree
    # moves nothing).
    at_zero = _sharpness(mask, 0.0)
    turn = max(0.4, float(np.degrees(np.arctan(2.5 / max(mh, mw)))))
    if at_zero > 1.25 * max(_sharpness(mask, -turn), _sharpness(mask, turn)):
        return 0.0
    # Coarse steps on a half-size copy; its pixels count the ink they cover
    # (0-4), so thin rules survive the shrinking.
    half = cv2.resize(mask * 4, (max(1, mw // 2), max(1, mh // 2)), interpolation=cv2.INTER_AREA)
    best = _sharpest(half, np.arange(-_MAX_ANGLE, _MAX_ANGLE + 1e-9, 1.0))
    best = _sharpest(half, np.arange(best - 0.75, best + 0.75 + 1e-9, 0.25))
    best = _sharpest(mask, np.arange(best - 0.2, best + 0.2 + 1e-9, 0.1))
    # Screenshots are exactly straight; do not resample them for noise-level
    # angles: a profile barely sharper than at 0, or a turn that moves the
    # content by under 3.5 px end to end. A nearest-pixel rotation of a small
    # mask drops and doubles rows, which makes spikes of its own; and a drift
    # that small is within what the edge search tolerates anyway.
    shift = max(mh, mw) * np.tan(np.radians(abs(best)))
    if abs(_sharpness(mask, best) - at_zero) <= 0.02 * at_zero or shift < _MIN_SHIFT_PX:
        return 0.0
    return best


def _sharpest(mask: np.ndarray, angles: np.ndarray) -> float:
    return float(max(angles, key=lambda a: _sharpness(mask, float(a))))


def rotation_homography(size: tuple[int, int], angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Homography image -> rectified for a rotation by ``angle``, on an enlarged canvas.

    Returns:
        ``(H, (width, height))`` where ``H`` maps input pixels into the rectified frame.
    """
    w, h = size
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return np.vstack([m, [0.0, 0.0, 1.0]]), (nw, nh)


def warp_to_rectified(img: np.ndarray, to_rect: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample ``img`` into the rectified frame, padding with its border colour."""
    border = tuple(int(v) for v in np.median(np.concatenate([img[0], img[-1]]), axis=0).ravel())
    return cv2.warpPerspective(
        img,
        to_rect,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


# --- Photographed grids: perspective and page sag ---------------------------

_OUTLINE_SIDE = 1000.0
# Sides a degree apart: a perspective the rotation search can only approximate.
_MAX_SPREAD = 1.0
_MIN_SAG_PX = 1.5
_MIN_CELLS = 4


@dataclass(frozen=True, eq=False)
class Outline:
    """A ruled grid's outline in a photo.

    Attributes:
        corners: ``(4, 2)`` top-left, top-right, bottom-right, bottom-left, in
            input pixels.
        contour: ``(N, 2)`` the outline's points, in input pixels.
        cells: how many cell-like holes the ruling encloses.
    """

    corners: np.ndarray
    contour: np.ndarray
    cells: int


def find_outline(gray: np.ndarray, scale: float = 1.0) -> Outline | None:
    """The outline of the ruled grid in ``gray``, or ``None`` when there is none.

    The ruling of a grid is one connected piece of ink that encloses many
    holes of about one size (its cells); text, pictures and page edges do not.
    A grid cut by the picture's edge is passed over for a whole one.

    Args:
        gray: the picture (or a shrunk copy) in gray.
        scale: ``gray``'s pixels per input pixel; the outline comes back in
            input pixels.
    """
    h, w = gray.shape
    f = min(1.0, _OUTLINE_SIDE / max(h, w))
    small = (
        cv2.resize(gray, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        if f < 1
        else gray
    )
    best: tuple[float, np.ndarray, int] | None = None
    # Dark ink on lighter paper, whatever the light across the page; faint,
    # blurred rules of a small grid need a wider window and a lower bar.
    for window, bar in ((30, 8), (20, 4)):
        found = _best_ruling(small, window, bar)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    if best is None:
        return None
    pts = best[1].reshape(-1, 2).astype(np.float64)
    corners = _quad_corners(pts)
    if corners is None:
        return None
    k = 1.0 / (f * scale)
    return Outline(corners * k, pts * k, best[2])


def _best_ruling(small: np.ndarray, window: int, bar: int) -> tuple[float, np.ndarray, int] | None:
    """The ink piece that encloses the most cell-like holes: ``(score, contour,
    cells)``; a piece cut by the picture's edge scores a tenth."""
    sh, sw = small.shape
    block = max(15, round(max(sh, sw) / window)) | 1
    ink = cv2.adaptiveThreshold(
        small, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, bar
    )
    contours, hierarchy = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return None
    hier = hierarchy[0]
    best: tuple[float, np.ndarray, int] | None = None
    min_hole = max(16.0, 1e-4 * sh * sw)
    for i, c in enumerate(contours):
        if hier[i][3] != -1 or len(c) < 40:
            continue
        holes = []
        j = hier[i][2]
        while j != -1:
            a = cv2.contourArea(contours[j])
            if a >= min_hole:
                holes.append(a)
            j = hier[j][0]
        if len(holes) < _MIN_CELLS:
            continue
        med = float(np.median(holes))
        cells = sum(1 for a in holes if 0.3 * med <= a <= 3.0 * med)
        x, y, bw, bh = cv2.boundingRect(c)
        cut = x <= 1 or y <= 1 or x + bw >= sw - 1 or y + bh >= sh - 1
        # Cells must make most of the piece's area: a blot with pores is no grid.
        hull_area = cv2.contourArea(cv2.convexHull(c))
        if cells < _MIN_CELLS or cells * med < 0.3 * hull_area:
            continue
        score = cells * med * (0.1 if cut else 1.0)
        if best is None or score > best[0]:
            best = (score, c, cells)
    return best


def _quad_corners(pts: np.ndarray) -> np.ndarray | None:
    """Four corners of a quadrilateral outline, clockwise from top-left, or
    ``None`` when the outline is no quadrilateral (a ruling without a border,
    whose lines stick out unevenly)."""
    hull = cv2.convexHull(pts.astype(np.float32))
    peri = cv2.arcLength(hull, True)
    candidates = []
    for eps in (0.01, 0.02, 0.03, 0.05):
        approx = cv2.approxPolyDP(hull, eps * peri, True).reshape(-1, 2)
        if len(approx) == 4:
            candidates.append(approx.astype(np.float64))
            break
    # The points farthest along the diagonals.
    s, d = pts.sum(axis=1), pts[:, 0] - pts[:, 1]
    candidates.append(pts[[np.argmin(s), np.argmax(d), np.argmax(s), np.argmin(d)]])
    hull_area = cv2.contourArea(hull)
    for quad in candidates:
        centre = quad.mean(axis=0)
        quad = quad[np.argsort(np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0]))]
        quad = np.roll(quad, -int(np.argmin(quad.sum(axis=1))), axis=0)
        if _fits_outline(quad, pts, hull_area):
            return quad
    return None


def _fits_outline(quad: np.ndarray, pts: np.ndarray, hull_area: float) -> bool:
    """Whether the outline runs along the quadrilateral's sides (a gentle sag
    allowed) and the quadrilateral covers it."""
    poly = quad.astype(np.float32).reshape(-1, 1, 2)
    area = cv2.contourArea(poly)
    if not 0.9 * hull_area <= area <= 1.1 * hull_area:
        return False
    size = float(np.sqrt(area))
    sample = pts[:: max(1, len(pts) // 400)]
    dist = np.array(
        [abs(cv2.pointPolygonTest(poly, (float(x), float(y)), True)) for x, y in sample]
    )
    return float((dist <= 0.04 * size).mean()) >= 0.85


def needs_homography(outline: Outline, bend: PageBend | None) -> bool:
    """Whether an outline shows perspective, page sag or a turn beyond the
    rotation search's reach (its sides more than a degree apart, or more than
    7 degrees off the axes)."""
    if bend is not None:
        return True
    angles = side_angles(outline)
    return max(angles) - min(angles) > _MAX_SPREAD or max(abs(v) for v in angles) > _MAX_ANGLE


def turn_would_do(outline: Outline, bend: PageBend | None) -> bool:
    """Whether the rotation search can straighten the outline (mild perspective
    included, as in a scan): no sag and sides within its reach."""
    return bend is None and max(abs(v) for v in side_angles(outline)) <= _MAX_ANGLE


def side_angles(outline: Outline) -> list[float]:
    """Angles of the outline's top, bottom, left and right sides against the
    axes, degrees."""
    c = outline.corners
    angles = []
    for a, b, horizontal in ((0, 1, True), (3, 2, True), (0, 3, False), (1, 2, False)):
        dx, dy = c[b] - c[a]
        angles.append(float(np.degrees(np.arctan2(dy, dx) if horizontal else np.arctan2(-dx, dy))))
    return angles


def _side_lengths(c: np.ndarray) -> tuple[float, float]:
    w = max(np.linalg.norm(c[1] - c[0]), np.linalg.norm(c[2] - c[3]))
    h = max(np.linalg.norm(c[3] - c[0]), np.linalg.norm(c[2] - c[1]))
    return float(w), float(h)


def cell_pitch(outline: Outline) -> float:
    """The typical cell size inside the outline, in rectified pixels."""
    w, h = _side_lengths(outline.corners)
    return float(np.sqrt(w * h / outline.cells))


@dataclass(frozen=True, eq=False)
class Rectification:
    """How a photographed grid's outline is made an upright rectangle.

    Attributes:
        to_rect: homography, input pixels -> rectified frame.
        size: ``(width, height)`` of the rectified frame.
        box: the outline's rectangle in the rectified frame.
        bend: the sag left over after the homography (``None``: flat).
    """

    to_rect: np.ndarray
    size: tuple[int, int]
    box: tuple[float, float, float, float]
    bend: PageBend | None


def outline_transform(outline: Outline) -> Rectification:
    """Homography that makes the outline an upright rectangle, and the sag left over.

    The rectangle keeps the outline's longer sides' lengths (so cells keep
    their resolution) with a margin around it.

    """
    c = outline.corners
    w, h = _side_lengths(c)
    m = round(0.05 * max(w, h)) + 4
    box = (float(m), float(m), float(m + w), float(m + h))
    dst = np.array([[m, m], [m + w, m], [m + w, m + h], [m, m + h]], np.float32)
    to_rect = cv2.getPerspectiveTransform(c.astype(np.float32), dst)
    size = (int(np.ceil(w)) + 2 * m, int(np.ceil(h)) + 2 * m)
    contour = outline.contour.reshape(1, -1, 2)
    # The corners are single outline pixels; the sides, fitted as lines over
    # their whole length, meet where the corners really are.
    lines = _side_fits(cv2.perspectiveTransform(contour, to_rect).reshape(-1, 2), box, 1)
    if lines is not None:
        refined = _line_corners(lines, box)
        back = cv2.perspectiveTransform(refined.reshape(1, -1, 2), np.linalg.inv(to_rect))
        to_rect = cv2.getPerspectiveTransform(back.reshape(4, 2).astype(np.float32), dst)
    pts = cv2.perspectiveTransform(contour, to_rect).reshape(-1, 2)
    return Rectification(to_rect, size, box, _fit_bend(pts, box))


def _line_corners(lines: list[np.ndarray], box: tuple[float, float, float, float]) -> np.ndarray:
    """Where the fitted sides meet: top-left, top-right, bottom-right, bottom-left."""
    x0, y0, x1, y1 = box
    # Each side as n . p = c: top/bottom y = y_k + a x + b, left/right x = x_k + a y + b.
    top, bottom, left, right = (
        (np.array([-lines[0][0], 1.0]), y0 + lines[0][1]),
        (np.array([-lines[1][0], 1.0]), y1 + lines[1][1]),
        (np.array([1.0, -lines[2][0]]), x0 + lines[2][1]),
        (np.array([1.0, -lines[3][0]]), x1 + lines[3][1]),
    )
    out = []
    for a, b in ((top, left), (top, right), (bottom, right), (bottom, left)):
        out.append(np.linalg.solve(np.stack([a[0], b[0]]), np.array([a[1], b[1]])))
    return np.array(out, np.float64)


def _fit_bend(pts: np.ndarray, box: tuple[float, float, float, float]) -> PageBend | None:
    """Parabolas through the four sides of a rectified outline, or ``None``
    when the page does not sag."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    sides = _side_fits(pts, box, 2)
    if sides is None:
        return None
    fits = [(float(f[0]), float(f[1]), float(f[2])) for f in sides]
    # Only a sag (the parabola's bulge off its chord) makes a bent page; a
    # tilt of a side is a corner found a pixel off. A page bent about one axis
    # bends both sides that cross it, a bump of text on one side does not. A
    # sag under 1.5 px is within what the edge search tolerates.
    sags = [abs(f[0]) * (span / 2) ** 2 for f, span in zip(fits, (w, w, h, h), strict=True)]
    if max(min(sags[0], sags[1]), min(sags[2], sags[3])) < _MIN_SAG_PX:
        return None
    return PageBend(box, fits[0], fits[1], fits[2], fits[3])


def _side_fits(
    pts: np.ndarray, box: tuple[float, float, float, float], degree: int
) -> list[np.ndarray] | None:
    """Polynomials of each side's offset from ``box`` (top, bottom: y offset
    by x; left, right: x offset by y), or ``None`` when a side is too short
    of points or strays too far to be a gentle curve.

    Each outline point belongs to the side it is nearest to; points near the
    corners are left out (they bend round), and points far off the first fit
    (text touching the ruling) are dropped before the second.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    x, y = pts[:, 0], pts[:, 1]
    side = np.stack([np.abs(y - y0), np.abs(y - y1), np.abs(x - x0), np.abs(x - x1)]).argmin(axis=0)
    along_x = (x > x0 + 0.06 * w) & (x < x1 - 0.06 * w)
    along_y = (y > y0 + 0.06 * h) & (y < y1 - 0.06 * h)
    fits = []
    for k, (sel, t, dev, span) in enumerate(
        (
            (along_x, x, y - y0, w),
            (along_x, x, y - y1, w),
            (along_y, y, x - x0, h),
            (along_y, y, x - x1, h),
        )
    ):
        keep = (side == k) & sel
        fit = _robust_fit(t[keep], dev[keep], span, degree)
        if fit is None:
            return None
        fits.append(fit)
    return fits


def _robust_fit(t: np.ndarray, dev: np.ndarray, span: float, degree: int) -> np.ndarray | None:
    if t.size < 12:
        return None
    c = np.polyfit(t, dev, degree)
    res = np.abs(np.polyval(c, t) - dev)
    keep = res <= max(1.5, 2.5 * float(np.median(res)))
    if keep.sum() >= 12:
        c = np.polyfit(t[keep], dev[keep], degree)
    # A side that strays by more than a tenth of its length is no gentle curve.
    if float(np.abs(np.polyval(c, np.linspace(t.min(), t.max(), 9))).max()) > 0.1 * span:
        return None
    return np.asarray(c, np.float64)


def bend_points(bend: PageBend | None, pts: np.ndarray) -> np.ndarray:
    """Move ``(N, 2)`` points of the straight frame onto the sagging page.

    Between the outline's sides the sag is blended linearly (a Coons patch
    whose sides are the fitted parabolas), which is what a page bent about
    one axis does.
    """
    if bend is None:
        return pts
    x0, y0, x1, y1 = bend.box
    x, y = pts[:, 0], pts[:, 1]
    s = np.clip((x - x0) / (x1 - x0), -0.25, 1.25)
    t = np.clip((y - y0) / (y1 - y0), -0.25, 1.25)
    dy = (1 - t) * np.polyval(bend.top, x) + t * np.polyval(bend.bottom, x)
    dx = (1 - s) * np.polyval(bend.left, y) + s * np.polyval(bend.right, y)
    return np.stack([x + dx, y + dy], axis=1)


def frame_to_image(grid: Grid, pts: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` points of the grid's rectified frame into input pixels."""
    p = bend_points(grid.bend, np.asarray(pts, np.float64))
    return cv2.perspectiveTransform(p.reshape(1, -1, 2), grid.to_image).reshape(-1, 2)


def warp_bent(img: np.ndarray, grid: Grid) -> np.ndarray:
    """Resample ``img`` into the frame of a grid found on a sagging page."""
    w, h = grid.rectified_size
    # The map is smooth: solve it on every 4th pixel and interpolate.
    k = 4
    ch, cw = -(-h // k), -(-w // k)
    yy, xx = np.mgrid[0:ch, 0:cw] * k + (k - 1) / 2
    src = frame_to_image(grid, np.stack([xx.ravel(), yy.ravel()], 1))
    full = (cw * k, ch * k)
    map_x = cv2.resize(src[:, 0].reshape(ch, cw).astype(np.float32), full)[:h, :w]
    map_y = cv2.resize(src[:, 1].reshape(ch, cw).astype(np.float32), full)[:h, :w]
    border = tuple(int(v) for v in np.median(np.concatenate([img[0], img[-1]]), axis=0).ravel())
    return cv2.remap(
        img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border
    )
