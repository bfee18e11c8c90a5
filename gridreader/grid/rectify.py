"""Deskewing: find the rotation that makes rows and rules axis-aligned."""

from __future__ import annotations

import cv2
import numpy as np

from gridreader.grid.ink import thin_ink

_MAX_ANGLE = 7.0
_STRAIGHT = 0.12


def _sharpness(mask: np.ndarray, angle: float) -> float:
    h, w = mask.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rot = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST)
    rows = rot.sum(axis=1, dtype=np.float64)
    cols = rot.sum(axis=0, dtype=np.float64)
    # Rows of text and rules give a spiky profile only when aligned; both axes
    # count so a table with only vertical structure still aligns.
    return float(np.square(np.diff(rows)).sum() + np.square(np.diff(cols)).sum())


def _rule_angle(mask: np.ndarray) -> float | None:
    """Median tilt of long straight rules, in the rotation's sign convention."""
    h, w = mask.shape
    min_len = int(0.15 * min(h, w))
    segs = cv2.HoughLinesP(
        mask,
        1,
        np.pi / 720,
        threshold=max(20, min_len // 2),
        minLineLength=min_len,
        maxLineGap=max(3, min_len // 12),
    )
    if segs is None:
        return None
    s = segs.reshape(-1, 4).astype(float)
    dx, dy = s[:, 2] - s[:, 0], s[:, 3] - s[:, 1]
    ang = np.degrees(np.arctan2(dy, dx))
    ang = (ang + 45) % 90 - 45  # horizontal and vertical rules alike
    length = np.hypot(dx, dy)
    ok = np.abs(ang) <= _MAX_ANGLE
    if ok.sum() < 3:
        return None
    a, wt = ang[ok], length[ok]
    order = np.argsort(a)
    cum = np.cumsum(wt[order])
    median = float(a[order][np.searchsorted(cum, cum[-1] / 2)])
    # Image y points down; a positive rotation angle turns content anticlockwise.
    return median


def estimate_skew(gray: np.ndarray) -> float:
    """Angle in degrees (counter-clockwise) that straightens the content.

    Long rules, where a table has them, give the angle directly; otherwise the
    angle that makes the row/column ink profiles sharpest is used.
    """
    h, w = gray.shape
    scale = min(1.0, 900.0 / max(h, w))
    small = cv2.resize(
        gray, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA
    )
    mask = thin_ink(small, 9)[0]
    if mask.sum() < 50:
        return 0.0
    # Screenshots are exactly straight: their profiles are sharpest at 0 by a
    # wide margin, and the costlier line search is skipped.
    at_zero = _sharpness(mask, 0.0)
    if at_zero > 1.25 * max(_sharpness(mask, -0.4), _sharpness(mask, 0.4)):
        return 0.0
    ruled = _rule_angle(mask)
    if ruled is not None:
        return ruled if abs(ruled) >= _STRAIGHT else 0.0
    best = max(np.arange(-_MAX_ANGLE, _MAX_ANGLE + 1e-9, 0.5), key=lambda a: _sharpness(mask, a))
    fine = np.arange(best - 0.5, best + 0.5 + 1e-9, 0.1)
    best = max(fine, key=lambda a: _sharpness(mask, a))
    # Screenshots are exactly straight; do not resample them for noise-level angles.
    if abs(_sharpness(mask, best) - _sharpness(mask, 0.0)) <= 0.02 * _sharpness(mask, 0.0):
        return 0.0
    return float(best) if abs(best) >= _STRAIGHT else 0.0


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
