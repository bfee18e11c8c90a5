"""Handwritten numbers fused from single MNIST digits."""

from __future__ import annotations

import cv2
import numpy as np

from gridreader.errors import DataError

_INK_MIN = 40
# MNIST digits are normalised into a 20x20 box; widths are measured against this.
_NATIVE = 20.0


class MnistGlyphs:
    """MNIST digits cropped to their ink, grouped by digit, as float32 ``0..1``."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        """Index ``x`` (``(N, 28, 28)`` uint8, white on black) by label ``y``.

        Raises:
            DataError: shapes disagree or some digit 0-9 has no sample.
        """
        if x.ndim != 3 or len(x) != len(y):
            raise DataError(f"MNIST arrays: images {x.shape} and labels {y.shape} do not match")
        by_digit: list[list[np.ndarray]] = [[] for _ in range(10)]
        for img, label in zip(x, y, strict=True):
            rows = np.flatnonzero(img.max(axis=1) >= _INK_MIN)
            cols = np.flatnonzero(img.max(axis=0) >= _INK_MIN)
            if len(rows) < 3 or len(cols) < 1 or not 0 <= int(label) <= 9:
                continue
            glyph = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            by_digit[int(label)].append(glyph.astype(np.float32) / 255.0)
        missing = [d for d in range(10) if not by_digit[d]]
        if missing:
            raise DataError(f"MNIST arrays: no samples of digit(s) {missing}")
        self._by_digit = by_digit

    def digit(self, rng: np.random.Generator, d: int) -> np.ndarray:
        """A random sample of digit ``d``, cropped to its ink."""
        pool = self._by_digit[d]
        return pool[int(rng.integers(len(pool)))]

    def fuse(
        self,
        rng: np.random.Generator,
        text: str,
        *,
        gap: tuple[float, float] = (-0.2, 0.4),
        max_shear: float = 0.3,
    ) -> np.ndarray:
        """Write ``text`` as one float32 alpha mask of MNIST digits, about 20 px tall.

        Digits get their own scale (0.8-1.2) and vertical jitter, and sit side by
        side with a gap of ``gap`` (fractions of a digit's width; negative
        overlaps). The whole number is then slanted by a shear up to
        ``max_shear`` and its strokes are sometimes thickened or thinned.
        """
        parts: list[tuple[np.ndarray, int, int]] = []
        x = 0.0
        for ch in text:
            g = self.digit(rng, int(ch))
            s = float(rng.uniform(0.8, 1.2))
            h, w = max(3, round(g.shape[0] * s)), max(1, round(g.shape[1] * s))
            g = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
            dy = round(float(rng.normal(0.0, 0.05)) * _NATIVE)
            if parts:
                ref = max(w, parts[-1][0].shape[1], 0.45 * _NATIVE)
                x += float(rng.uniform(*gap)) * ref
            parts.append((g, round(x), dy + (round(_NATIVE * 1.2) - h) // 2))
            x += w
        x_min = min(px for _, px, _ in parts)
        y_min = min(py for _, _, py in parts)
        width = max(px + g.shape[1] for g, px, _ in parts) - x_min
        height = max(py + g.shape[0] for g, _, py in parts) - y_min
        pad = 2
        out = np.zeros((height + 2 * pad, width + 2 * pad), np.float32)
        for g, px, py in parts:
            oy, ox = py - y_min + pad, px - x_min + pad
            view = out[oy : oy + g.shape[0], ox : ox + g.shape[1]]
            np.maximum(view, g, out=view)
        shear = float(np.clip(rng.normal(0.0, max_shear / 2.5), -max_shear, max_shear))
        if abs(shear) > 0.02:
            out = shear_mask(out, shear)
        r = rng.random()
        if r < 0.2:
            k = 3 if rng.random() < 0.3 else 2
            out = cv2.dilate(out, np.ones((k, k), np.uint8))
        elif r < 0.32:
            out = cv2.erode(out, np.ones((2, 2), np.uint8))
            if float(out.max()) < 0.5:
                return self.fuse(rng, text, gap=gap, max_shear=max_shear)
        return out


def shear_mask(mask: np.ndarray, shear: float) -> np.ndarray:
    """Slant a mask: ``x' = x - shear * (y - h/2)``, widened to keep all ink."""
    h, w = mask.shape
    extra = int(np.ceil(abs(shear) * h / 2)) + 1
    m = np.array([[1.0, -shear, shear * h / 2 + extra], [0.0, 1.0, 0.0]], np.float32)
    return cv2.warpAffine(mask, m, (w + 2 * extra, h), flags=cv2.INTER_LINEAR)


def rotate_mask(mask: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate a mask about its centre, widened so no ink is cut."""
    h, w = mask.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    m[0, 2] += (nw - w) / 2
    m[1, 2] += (nh - h) / 2
    return cv2.warpAffine(mask, m, (nw, nh), flags=cv2.INTER_LINEAR)


def trim_mask(mask: np.ndarray, level: float = 0.05) -> np.ndarray:
    """Crop a mask to the box of its values above ``level``."""
    rows = np.flatnonzero(mask.max(axis=1) > level)
    cols = np.flatnonzero(mask.max(axis=0) > level)
    if len(rows) == 0:
        return mask
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
