"""Colours, backgrounds and image degradations shared by the cell and table makers.

Images here are float32 ``HxWx3`` RGB in ``0..255`` until :func:`to_uint8`.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_RAMP = np.linspace(-1.0, 1.0, 5, dtype=np.float32)


def luma(colour: np.ndarray) -> float:
    """Luminance of an RGB colour, as ``cv2``'s RGB-to-gray computes it."""
    return float(np.dot(np.asarray(colour, np.float32), _LUMA))


def tint(rng: np.random.Generator, level: tuple[float, float], spread: float) -> np.ndarray:
    """A colour of luminance about ``level`` with per-channel variation ``spread``."""
    base = float(rng.uniform(*level))
    return np.clip(base + rng.uniform(-spread, spread, 3), 0, 255).astype(np.float32)


def contrasting(rng: np.random.Generator, bg: np.ndarray, min_delta: float) -> np.ndarray:
    """A random colour whose luminance differs from ``bg``'s by at least ``min_delta``."""
    for _ in range(20):
        c = rng.uniform(0, 255, 3).astype(np.float32)
        if abs(luma(c) - luma(bg)) >= min_delta:
            return c
    return np.full(3, 0.0 if luma(bg) > 127 else 255.0, np.float32)


def roulette_colour(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A roulette cell colour: ``red`` (#c00..#e33), ``black`` (#000..#333), ``green``."""
    if kind == "red":
        c = [rng.uniform(0xC0, 0xEE), rng.uniform(0x00, 0x33), rng.uniform(0x00, 0x33)]
    elif kind == "black":
        v = rng.uniform(0x00, 0x33)
        c = [v + rng.uniform(-6, 6), v + rng.uniform(-6, 6), v + rng.uniform(-6, 10)]
    else:
        c = [rng.uniform(0x00, 0x18), rng.uniform(0x80, 0xAA), rng.uniform(0x00, 0x55)]
    return np.clip(np.array(c, np.float32), 0, 255)


def paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Scanned paper: white/cream/light gray with blotchy texture and a gradient."""
    kind = rng.random()
    if kind < 0.45:
        base = tint(rng, (228, 252), 4)
    elif kind < 0.75:
        base = np.array([246, 240, 222], np.float32) + rng.uniform(-8, 8, 3).astype(np.float32)
    else:
        base = tint(rng, (200, 232), 5)
    # Blotches and a gradient in one low-resolution field, scaled up smoothly.
    field = rng.standard_normal((5, 5), dtype=np.float32) * (1.0 + 5.0 * rng.random())
    field += _RAMP[:, None] * (12.0 * rng.random() - 6.0)
    field += _RAMP[None, :] * (12.0 * rng.random() - 6.0)
    shade = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.merge([shade + float(base[0]), shade + float(base[1]), shade + float(base[2])])


def fill_grid(
    xs: tuple[int, int, int, int], ys: tuple[int, int, int, int], colours: np.ndarray
) -> np.ndarray:
    """A float image split by ``xs`` and ``ys`` into 3x3 blocks of ``colours[i, j]``.

    ``xs``/``ys`` are ``(0, a, b, size)`` with non-decreasing cuts.
    """
    out = np.empty((ys[3], xs[3], 3), np.float32)
    widths = (xs[1], xs[2] - xs[1], xs[3] - xs[2])
    for i in range(3):
        if ys[i + 1] > ys[i]:
            # Whole rows at a time: numpy fills (n, 3) pixels slowly, rows fast.
            out[ys[i] : ys[i + 1]] = np.repeat(colours[i], widths, axis=0)
    return out


def blend(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray, x: int = 0, y: int = 0) -> None:
    """Paint ``colour`` into ``img`` through ``alpha`` (float ``0..1``) placed at ``(x, y)``.

    The part of ``alpha`` that falls outside ``img`` is dropped.
    """
    h, w = img.shape[:2]
    ah, aw = alpha.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(w, x + aw), min(h, y + ah)
    if x1 <= x0 or y1 <= y0:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x]
    # Channel by channel: numpy broadcasting over a trailing axis of 3 is slow.
    for c in range(3):
        view = img[y0:y1, x0:x1, c]
        view += (float(colour[c]) - view) * a


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(20240601).standard_normal((384, 384, 4), dtype=np.float32)


def add_noise(rng: np.random.Generator, img: np.ndarray, sigma: float) -> None:
    """Add gaussian noise in place, mostly shared across channels like sensor noise.

    Windows of a fixed noise bank are used; drawing fresh normals for every
    crop would cost more than the rest of the crop.
    """
    h, w = img.shape[:2]
    bank = _noise_bank()
    if h > bank.shape[0] or w > bank.shape[1]:
        noise = rng.standard_normal((h, w, 4), dtype=np.float32)
    else:
        y = int(rng.integers(0, bank.shape[0] - h + 1))
        x = int(rng.integers(0, bank.shape[1] - w + 1))
        noise = bank[y : y + h, x : x + w]
    shared = noise[:, :, 3] * sigma
    for c in range(3):
        img[:, :, c] += shared + noise[:, :, c] * (0.35 * sigma)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a kernel sized for ``sigma``."""
    k = max(3, 2 * int(np.ceil(2.5 * sigma)) + 1)
    return cv2.GaussianBlur(img, (k, k), sigma)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and clip a float image into uint8."""
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compress and decode a uint8 RGB image (4:2:0, like most encoders)."""
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        return img
    return np.ascontiguousarray(decoded[:, :, ::-1])
