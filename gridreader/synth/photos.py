"""Synthetic phone photos of printed number grids, with exact cell boxes.

A flat page is drawn first (paper, a ruled grid of numbers, a title, a few
lines of text and a second grid beside it), then photographed: the page is
bent gently (a cylinder-like sag), turned in 3-D and projected by a pinhole
camera, lit unevenly, shadowed, blurred, given sensor noise and saved as a
low-resolution JPEG. The second grid is framed so that it is cut by the
picture's edge. Cell boxes are the bounding boxes, in photo pixels, of each
cell's bent and projected outline.

Families are fixed generator settings (:data:`FAMILIES`); ``heldout`` ones are
measured on but no rule of the grid finder was developed on them.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from gridreader.errors import DataError, GridReaderError, one_line
from gridreader.imageio import load_image, write_atomic
from gridreader.synth import effects as fx
from gridreader.synth.fonts import find_fonts, load_font
from gridreader.synth.handwriting import MnistGlyphs, rotate_mask, trim_mask
from gridreader.types import Box

Values = list[list[int | None]]


@dataclass(frozen=True)
class PhotoFamily:
    """Settings of one family of photos.

    Attributes:
        name: the family's name (the ``style`` in the truth files).
        content: ``puzzle`` (9x9, digits 1-9 and empty cells) or ``tally``
            (numbers 0-36, some empty).
        frame: ``(width, height)`` of the photo.
        max_tilt: largest tilt of the page against the camera, degrees.
        max_roll: largest turn of the page in the picture plane, degrees.
        bend: largest sag of the page, as a share of the grid's width.
        handwritten: tally numbers written by hand (MNIST ``x_test``).
        box_lines: puzzle grids draw every third line (and the border) thick.
        shadow: chance of a soft shadow across the page.
        light: strength of the uneven light (0 none, 1 strong).
        blur: range of the gaussian blur sigma, photo pixels.
        noise: range of the sensor noise sigma.
        jpeg: range of the JPEG quality.
        heldout: no rule was developed on this family.
    """

    name: str
    content: str
    frame: tuple[int, int]
    max_tilt: float
    max_roll: float
    bend: float
    handwritten: bool = False
    box_lines: bool = True
    shadow: float = 0.5
    light: float = 0.5
    blur: tuple[float, float] = (0.4, 1.0)
    noise: tuple[float, float] = (2.0, 5.0)
    jpeg: tuple[int, int] = (60, 88)
    heldout: bool = False


FAMILIES: dict[str, PhotoFamily] = {
    f.name: f
    for f in (
        # Development families: the finder's rules were written looking at these.
        PhotoFamily("puzzle-tilt", "puzzle", (960, 1280), 30.0, 12.0, 0.02),
        PhotoFamily("puzzle-lowres", "puzzle", (640, 480), 20.0, 8.0, 0.01, blur=(0.6, 1.2)),
        PhotoFamily("tally-hand", "tally", (960, 1280), 25.0, 10.0, 0.025, handwritten=True),
        # Held-out families: settings no rule was developed on.
        PhotoFamily(
            "puzzle-bent-dim",
            "puzzle",
            (640, 480),
            30.0,
            15.0,
            0.045,
            shadow=0.9,
            light=1.0,
            noise=(4.0, 8.0),
            heldout=True,
        ),
        PhotoFamily(
            "puzzle-thin",
            "puzzle",
            (960, 1280),
            30.0,
            15.0,
            0.03,
            box_lines=False,
            blur=(0.8, 1.6),
            jpeg=(45, 70),
            heldout=True,
        ),
        PhotoFamily(
            "tally-print-lowres",
            "tally",
            (640, 480),
            28.0,
            12.0,
            0.03,
            light=0.8,
            jpeg=(40, 65),
            heldout=True,
        ),
    )
}

_CELL = 64  # page pixels per cell
_BACKGROUNDS = ((120, 90, 60), (60, 60, 64), (170, 160, 150), (90, 110, 130), (200, 195, 185))
_WORDS = tuple(
    [
        "puzzle",
        "medium",
        "hard",
        "easy",
        "solution",
        "page",
        "daily",
        "sudoku",
        "fill",
        "every",
        "row",
        "column",
        "and",
        "box",
        "with",
        "the",
        "digits",
        "once",
        "only",
        "results",
        "table",
        "week",
        "score",
        "total",
        "draw",
        "numbers",
    ]
)


@dataclass(frozen=True, eq=False)
class RenderedPhoto:
    """A photographed grid and where its cells are.

    Attributes:
        image: ``HxWx3`` uint8 RGB photo (already JPEG-compressed).
        jpeg: the photo as JPEG file bytes (``image`` is their decoding).
        boxes: ``boxes[r][c] = (x0, y0, x1, y1)`` in photo pixels, x1/y1 exclusive.
        values: the grid's values.
        family: the family's name.
        tilt: the page's tilt against the camera, degrees.
    """

    image: np.ndarray
    jpeg: bytes = field(repr=False)
    boxes: list[list[Box]]
    values: Values
    family: str
    tilt: float


def render_photo(
    family: str | PhotoFamily,
    *,
    seed: int = 0,
    mnist: tuple[np.ndarray, np.ndarray] | MnistGlyphs | None = None,
    font: Path | None = None,
) -> RenderedPhoto:
    """Draw and photograph a printed grid of one family.

    Args:
        family: a name in :data:`FAMILIES`, or the settings themselves.
        seed: seed for every random choice.
        mnist: handwritten families: MNIST images and labels to write with
            (evaluation sets pass ``x_test``, training material ``x_train``).
        font: font for the printed digits; a seeded pick when ``None``.

    Raises:
        DataError: unknown family, or a handwritten family without ``mnist``.
    """
    fam = _family(family)
    if fam.handwritten and mnist is None:
        raise DataError(f"photo family {fam.name} writes by hand and needs MNIST digits")
    glyphs = None
    if fam.handwritten and mnist is not None:
        glyphs = mnist if isinstance(mnist, MnistGlyphs) else MnistGlyphs(*mnist)
    rng = np.random.default_rng(seed)
    values = _values(rng, fam.content)
    fonts = find_fonts()
    font_path = (
        font if font is not None else (fonts[int(rng.integers(len(fonts)))] if fonts else None)
    )
    page, edges, other = _draw_page(rng, fam, values, font_path, glyphs)
    xs, ys = edges
    for _ in range(20):
        cam = _camera(rng, fam, page.shape[:2], (xs[0], ys[0], xs[-1], ys[-1]), other)
        if cam is not None:
            break
    else:
        raise DataError(f"photo family {fam.name}: no framing found for seed {seed}")
    encoded = _photograph(rng, fam, page, cam)
    photo = load_image(encoded)
    boxes = [
        [
            _cell_box(cam, (xs[c], ys[r], xs[c + 1], ys[r + 1]), fam.frame)
            for c in range(len(xs) - 1)
        ]
        for r in range(len(ys) - 1)
    ]
    return RenderedPhoto(photo, encoded, boxes, values, fam.name, cam.tilt)


def _family(family: str | PhotoFamily) -> PhotoFamily:
    if isinstance(family, PhotoFamily):
        return family
    if family not in FAMILIES:
        raise DataError(f"photo family {family!r} is not one of {', '.join(FAMILIES)}")
    return FAMILIES[family]


def with_settings(family: str, **changes: object) -> PhotoFamily:
    """A family's settings with some changed (for tests and experiments)."""
    return replace(_family(family), **changes)  # type: ignore[arg-type]


def _values(rng: np.random.Generator, content: str) -> Values:
    if content == "puzzle":
        fill = rng.uniform(0.3, 0.6)
        return [
            [int(rng.integers(1, 10)) if rng.random() < fill else None for _ in range(9)]
            for _ in range(9)
        ]
    rows, cols = int(rng.integers(5, 11)), int(rng.integers(4, 9))
    return [
        [int(rng.integers(0, 37)) if rng.random() < 0.85 else None for _ in range(cols)]
        for _ in range(rows)
    ]


def _draw_page(
    rng: np.random.Generator,
    fam: PhotoFamily,
    values: Values,
    font_path: Path | None,
    glyphs: MnistGlyphs | None,
) -> tuple[np.ndarray, tuple[list[int], list[int]], tuple[int, int, int, int]]:
    """The flat page: paper, the grid, text around it and a second grid.

    Returns:
        ``(page, (xs, ys), other)``: float32 RGB page, the grid's line
        positions, and the second grid's box on the page.
    """
    rows, cols = len(values), len(values[0])
    cw = _CELL if fam.content == "puzzle" else int(_CELL * rng.uniform(1.0, 1.4))
    ch = _CELL if fam.content == "puzzle" else int(_CELL * rng.uniform(0.8, 1.0))
    gw, gh = cw * cols, ch * rows
    # Room for a title above, text beside, and the second grid on one side.
    side = int(rng.choice((-1, 1)))
    margin = 3 * _CELL
    other_w = 9 * _CELL if fam.content == "puzzle" else gw
    width = margin + gw + _CELL + other_w + margin + 5 * _CELL
    height = margin + 2 * _CELL + gh + 3 * _CELL + margin
    gx = (margin + 5 * _CELL) if side > 0 else (margin + other_w + _CELL)
    gy = margin + 2 * _CELL
    ox = gx + gw + _CELL if side > 0 else margin
    other = (ox, gy + int(rng.integers(-_CELL, _CELL)), ox + other_w, 0)
    other = (
        other[0],
        other[1],
        other[2],
        other[1] + (9 * _CELL if fam.content == "puzzle" else gh),
    )
    xs = [gx + c * cw for c in range(cols + 1)]
    ys = [gy + r * ch for r in range(rows + 1)]

    page = fx.paper(rng, height, width)
    ink = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(ink)
    thin = int(rng.integers(2, 4))
    thick = thin + int(rng.integers(3, 6)) if fam.box_lines else thin
    _draw_lines(draw, xs, ys, thin, thick, 3 if fam.content == "puzzle" else 0)
    font = load_font(font_path, int(0.62 * ch))
    text_font = load_font(font_path, int(rng.integers(22, 34)))
    # Title above the grid, a caption under it, text to the far side.
    draw.text((gx, gy - int(1.6 * _CELL)), _sentence(rng, 4), font=text_font, fill=255)
    draw.text((gx, ys[-1] + _CELL // 2), _sentence(rng, 6), font=text_font, fill=255)
    tx = margin if side > 0 else xs[-1] + _CELL // 2
    for k in range(int(rng.integers(3, 7))):
        draw.text((tx, gy + k * 44), _sentence(rng, 2), font=text_font, fill=255)
    # The second grid: another puzzle/tally of the same kind.
    o_vals = _values(rng, fam.content)
    o_rows = 9 if fam.content == "puzzle" else len(ys) - 1
    o_cols = 9 if fam.content == "puzzle" else len(xs) - 1
    oxs = [other[0] + c * (other[2] - other[0]) // o_cols for c in range(o_cols + 1)]
    oys = [other[1] + r * ch for r in range(o_rows + 1)]
    _draw_lines(draw, oxs, oys, thin, thick, 3 if fam.content == "puzzle" else 0)
    ink_arr = np.asarray(ink).astype(np.float32) / 255.0
    colour = fx.tint(rng, (10, 60), 6)
    _draw_numbers(rng, ink_arr, values, xs, ys, font, glyphs)
    o_vals = [row[: len(oxs) - 1] for row in o_vals[: len(oys) - 1]]
    if len(o_vals) == len(oys) - 1 and all(len(r) == len(oxs) - 1 for r in o_vals):
        _draw_numbers(rng, ink_arr, o_vals, oxs, oys, font, glyphs)
    fx.blend(page, np.clip(ink_arr, 0.0, 1.0), colour)
    return page, (xs, ys), other


def _draw_lines(
    draw: ImageDraw.ImageDraw, xs: list[int], ys: list[int], thin: int, thick: int, every: int
) -> None:
    for k, x in enumerate(xs):
        w = thick if k in (0, len(xs) - 1) or (every and k % every == 0) else thin
        draw.rectangle(
            (x - w // 2, ys[0] - thick // 2, x - w // 2 + w - 1, ys[-1] + thick // 2), fill=255
        )
    for k, y in enumerate(ys):
        w = thick if k in (0, len(ys) - 1) or (every and k % every == 0) else thin
        draw.rectangle(
            (xs[0] - thick // 2, y - w // 2, xs[-1] + thick // 2, y - w // 2 + w - 1), fill=255
        )


def _sentence(rng: np.random.Generator, words: int) -> str:
    out = []
    for _ in range(words):
        out.append(
            str(int(rng.integers(1, 999))) if rng.random() < 0.2 else str(rng.choice(_WORDS))
        )
    return " ".join(out).capitalize()


def _draw_numbers(
    rng: np.random.Generator,
    ink: np.ndarray,
    values: Values,
    xs: list[int],
    ys: list[int],
    font: object,
    glyphs: MnistGlyphs | None,
) -> None:
    for r, row in enumerate(values):
        for c, v in enumerate(row):
            if v is None:
                continue
            cw, ch = xs[c + 1] - xs[c], ys[r + 1] - ys[r]
            if glyphs is not None:
                raw = glyphs.fuse(rng, str(v), max_shear=0.2)
                scale = min(ch * rng.uniform(0.5, 0.7) / raw.shape[0], cw * 0.75 / raw.shape[1])
                size = (max(1, round(raw.shape[1] * scale)), max(1, round(raw.shape[0] * scale)))
                mask = cv2.resize(raw, size, interpolation=cv2.INTER_AREA)
                mask = trim_mask(
                    rotate_mask(np.clip((mask - 0.1) * 1.6, 0, 1), float(rng.uniform(-5, 5)))
                )
            else:
                img = Image.new("L", (cw, ch), 0)
                ImageDraw.Draw(img).text((cw / 2, ch / 2), str(v), font=font, fill=255, anchor="mm")  # type: ignore[arg-type]
                mask = trim_mask(np.asarray(img).astype(np.float32) / 255.0)
            mh, mw = mask.shape
            x = xs[c] + (cw - mw) // 2 + int(rng.integers(-cw // 12, cw // 12 + 1))
            y = ys[r] + (ch - mh) // 2 + int(rng.integers(-ch // 12, ch // 12 + 1))
            view = ink[y : y + mh, x : x + mw]
            np.maximum(view, mask[: view.shape[0], : view.shape[1]], out=view)


@dataclass(frozen=True, eq=False)
class _Camera:
    """Page pixels -> photo pixels: bend, 3-D turn, pinhole projection, framing."""

    rot: np.ndarray
    centre: tuple[float, float]
    half_w: float
    bend: float
    distance: float
    focal: float
    frame_m: np.ndarray  # 2x3 similarity applied after projection
    tilt: float

    def project(self, pts: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` page points to photo pixels."""
        x = pts[:, 0] - self.centre[0]
        y = pts[:, 1] - self.centre[1]
        # The page sags like an open booklet: depth grows with the square of
        # the distance from the grid's centre line.
        z = self.bend * self.half_w * (x / self.half_w) ** 2
        p = np.stack([x, y, z], axis=1) @ self.rot.T
        depth = p[:, 2] + self.distance
        u = self.focal * p[:, 0] / depth
        v = self.focal * p[:, 1] / depth
        uv = np.stack([u, v, np.ones_like(u)], axis=1)
        return uv @ self.frame_m.T


def _camera(
    rng: np.random.Generator,
    fam: PhotoFamily,
    page_hw: tuple[int, ...],
    grid: tuple[int, int, int, int],
    other: tuple[int, int, int, int],
) -> _Camera | None:
    """A camera that frames the whole grid and cuts the second one, or ``None``."""
    tilt = float(rng.uniform(0.0, fam.max_tilt))
    heading = float(rng.uniform(0, 2 * math.pi))
    ax, ay = math.radians(tilt) * math.cos(heading), math.radians(tilt) * math.sin(heading)
    roll = math.radians(float(rng.uniform(-fam.max_roll, fam.max_roll)))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array(
        [[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]]
    )
    x0, y0, x1, y1 = grid
    half_w = (x1 - x0) / 2
    focal = float(rng.uniform(1.0, 1.6)) * max(x1 - x0, y1 - y0)
    cam = _Camera(
        rot=rz @ ry @ rx,
        centre=((x0 + x1) / 2, (y0 + y1) / 2),
        half_w=half_w,
        bend=float(rng.uniform(0.0, fam.bend)),
        distance=focal,
        focal=focal,
        frame_m=np.array([[1.0, 0, 0], [0, 1.0, 0]]),
        tilt=tilt,
    )
    outline = _outline((x0, y0, x1, y1), 24)
    uv = cam.project(outline)
    fw, fh = fam.frame
    # The grid fills 45-85 % of the frame's shorter fit.
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    span = hi - lo
    scale = float(rng.uniform(0.45, 0.85)) * min(fw / span[0], fh / span[1])
    free = np.array([fw, fh]) - scale * span
    offset = free * rng.uniform(0.15, 0.85, 2) - scale * lo
    cam = replace(cam, frame_m=np.array([[scale, 0, offset[0]], [0, scale, offset[1]]]))
    o = cam.project(_outline(other, 24))
    inside = (o[:, 0] >= 0) & (o[:, 0] < fw) & (o[:, 1] >= 0) & (o[:, 1] < fh)
    # The second grid must show (a corner of it at least) but be cut.
    if inside.all() or inside.mean() < 0.05:
        return None
    return cam


def _outline(box: tuple[int, int, int, int], n: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    t = np.linspace(0.0, 1.0, n)
    return np.concatenate(
        [
            np.stack([x0 + (x1 - x0) * t, np.full(n, y0)], 1),
            np.stack([np.full(n, x1), y0 + (y1 - y0) * t], 1),
            np.stack([x0 + (x1 - x0) * t, np.full(n, y1)], 1),
            np.stack([np.full(n, x0), y0 + (y1 - y0) * t], 1),
        ]
    ).astype(np.float64)


def _cell_box(cam: _Camera, cell: tuple[int, int, int, int], frame: tuple[int, int]) -> Box:
    p = cam.project(_outline(cell, 6))
    x0, y0 = np.floor(p.min(axis=0)).astype(int)
    x1, y1 = np.ceil(p.max(axis=0)).astype(int)
    return (max(0, int(x0)), max(0, int(y0)), min(frame[0], int(x1)), min(frame[1], int(y1)))


def _photograph(
    rng: np.random.Generator, fam: PhotoFamily, page: np.ndarray, cam: _Camera
) -> bytes:
    """Resample the page through the camera, then light, blur, noise and JPEG."""
    fw, fh = fam.frame
    map_x, map_y = _inverse_map(cam, (fw, fh))
    background = np.array(_BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))], np.float32)
    photo = cv2.remap(
        page,
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(v) for v in background),
    )
    # Uneven light: a smooth field, brighter on one side.
    field = rng.standard_normal((4, 4)).astype(np.float32) * 0.08 * fam.light
    light = cv2.resize(field, (fw, fh), interpolation=cv2.INTER_CUBIC)
    ramp = (
        np.linspace(-1, 1, fw, dtype=np.float32)[None, :]
        * float(rng.uniform(-0.2, 0.2))
        * fam.light
    )
    ramp2 = (
        np.linspace(-1, 1, fh, dtype=np.float32)[:, None]
        * float(rng.uniform(-0.2, 0.2))
        * fam.light
    )
    gain = 1.0 + light + ramp + ramp2
    if rng.random() < fam.shadow:
        gain = gain * _shadow(rng, (fw, fh))
    photo *= gain[:, :, None]
    photo = fx.gaussian_blur(photo, float(rng.uniform(*fam.blur)))
    fx.add_noise(rng, photo, float(rng.uniform(*fam.noise)))
    quality = int(rng.integers(fam.jpeg[0], fam.jpeg[1] + 1))
    ok, buf = cv2.imencode(
        ".jpg", fx.to_uint8(photo)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise DataError(f"photo family {fam.name}: JPEG encoding failed")
    return buf.tobytes()


def _inverse_map(cam: _Camera, frame: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Photo -> page coordinates for every photo pixel.

    The flat page is a homography; the bend is a small correction, undone by
    a few fixed-point steps from the flat solution.
    """
    fw, fh = frame
    flat = replace(cam, bend=0.0)
    corners = np.array([[0, 0], [1000, 0], [1000, 1000], [0, 1000]], np.float64) + cam.centre
    to_photo = cv2.getPerspectiveTransform(
        corners.astype(np.float32), flat.project(corners).astype(np.float32)
    )
    to_page = np.linalg.inv(to_photo)
    # Solved on every 4th pixel and interpolated: the map is smooth.
    k = 4
    ch, cw = -(-fh // k), -(-fw // k)
    yy, xx = np.mgrid[0:ch, 0:cw] * k + (k - 1) / 2
    uv = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64)
    q0 = _apply(to_page, uv)
    q = q0.copy()
    if cam.bend > 0:
        for _ in range(6):
            q += q0 - _apply(to_page, cam.project(q))
    full = (cw * k, ch * k)
    map_x = cv2.resize(
        q[:, 0].reshape(ch, cw).astype(np.float32), full, interpolation=cv2.INTER_LINEAR
    )
    map_y = cv2.resize(
        q[:, 1].reshape(ch, cw).astype(np.float32), full, interpolation=cv2.INTER_LINEAR
    )
    return map_x[:fh, :fw], map_y[:fh, :fw]


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.hstack([pts, np.ones((len(pts), 1))]) @ h.T
    return p[:, :2] / p[:, 2:3]


def _shadow(rng: np.random.Generator, frame: tuple[int, int]) -> np.ndarray:
    """A soft shadow (of a hand or a phone) over part of the picture, as a gain."""
    fw, fh = frame
    mask = np.zeros((fh, fw), np.float32)
    cx, cy = rng.uniform(0, fw), rng.uniform(0, fh)
    r = rng.uniform(0.3, 0.7) * max(fw, fh)
    pts = np.array(
        [
            [
                cx + r * math.cos(t) * rng.uniform(0.6, 1.2),
                cy + r * math.sin(t) * rng.uniform(0.6, 1.2),
            ]
            for t in np.linspace(0, 2 * math.pi, 9)[:-1] + rng.uniform(0, 1)
        ],
        np.int32,
    )
    cv2.fillPoly(mask, [pts], 1.0)
    soft = cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(0.02, 0.08)) * max(fw, fh))
    return 1.0 - float(rng.uniform(0.2, 0.45)) * soft


# The committed photo set's first seed.
PHOTO_SEED_BASE = 10_000


def write_photo_set(
    folder: str | os.PathLike[str],
    per_family: int,
    mnist: tuple[np.ndarray, np.ndarray] | MnistGlyphs,
    families: tuple[str, ...] = tuple(FAMILIES),
    seed_base: int = PHOTO_SEED_BASE,
) -> list[Path]:
    """Write ``per_family`` photos of each family in the dev bench's format.

    Each photo ``FAMILY-NN.jpg`` gets ``FAMILY-NN.csv`` (the truth, an empty
    field for an empty cell) and ``FAMILY-NN.boxes.json`` (``style`` is the
    family, plus ``heldout``, ``tilt``, ``rows``, ``cols`` and ``boxes``).
    Seeds are fixed per family and index (from ``seed_base``: the committed
    set's by default, another for fresh photos of the same families), so the
    set is reproducible.

    Returns:
        The photos written.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    glyphs = mnist if isinstance(mnist, MnistGlyphs) else MnistGlyphs(*mnist)
    written = []
    for fi, name in enumerate(families):
        fam = _family(name)
        for k in range(per_family):
            p = render_photo(fam, seed=seed_base + 100 * fi + k, mnist=glyphs)
            stem = out / f"{name}-{k:02d}"
            csv_text = "".join(
                ",".join("" if v is None else str(v) for v in row) + "\n" for row in p.values
            )
            meta = {
                "style": name,
                "heldout": fam.heldout,
                "tilt": round(p.tilt, 1),
                "rows": len(p.values),
                "cols": len(p.values[0]),
                "boxes": [[list(b) for b in row] for row in p.boxes],
            }
            write_atomic(stem.with_suffix(".jpg"), p.jpeg)
            write_atomic(stem.with_suffix(".csv"), csv_text)
            write_atomic(Path(f"{stem}.boxes.json"), json.dumps(meta))
            written.append(stem.with_suffix(".jpg"))
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m gridreader.synth.photos OUT [--per-family N] [--mnist NPZ]``."""
    import argparse

    from gridreader.synth.mnist import load_mnist

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("out")
    ap.add_argument("--per-family", type=int, default=10)
    ap.add_argument("--mnist", default="data/mnist/mnist-digits.npz")
    ap.add_argument(
        "--seed-base",
        type=int,
        default=PHOTO_SEED_BASE,
        help=f"first seed (default {PHOTO_SEED_BASE}: the committed set); another: fresh photos",
    )
    args = ap.parse_args(argv)
    try:
        data = load_mnist(args.mnist)
        # Evaluation material: handwriting from the test split only.
        paths = write_photo_set(
            args.out, args.per_family, (data.x_test, data.y_test), seed_base=args.seed_base
        )
    except GridReaderError as e:
        print(f"photos: error: {one_line(e)}", file=sys.stderr)
        return 1
    print(f"{len(paths)} photos in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
