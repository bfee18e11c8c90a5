"""Synthetic pictures of whole number tables, with exact cell boxes, for tests and demos.

Cell boxes partition the table: for ruled styles a box runs between the centres
of the rules around the cell; for roulette between the centres of the gaps; for
zebra, borderless and dark tables it is the cell's layout rectangle. The
``scan`` style is warped after drawing; its boxes are the axis-aligned bounding
boxes of the warped cells.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from gridreader.errors import DataError
from gridreader.synth import effects as fx
from gridreader.synth.fonts import AnyFont, find_fonts, load_font
from gridreader.synth.handwriting import MnistGlyphs, rotate_mask, trim_mask
from gridreader.types import Box

STYLES = ("ruled", "roulette", "zebra", "borderless", "dark", "scan")
ROULETTE_RED = frozenset({1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36})
TINY_CELL = (15, 8)
_MAX_ANGLE = 10.0

Values = list[list[int | None]]


@dataclass(frozen=True, eq=False)
class RenderedTable:
    """A rendered table and where its cells are.

    Attributes:
        image: ``HxWx3`` uint8 RGB picture.
        boxes: ``boxes[r][c] = (x0, y0, x1, y1)`` in image pixels, x1/y1 exclusive.
        values: the table's values, as given.
        style: the style it was drawn in.
        angle: rotation applied (``scan`` only), degrees counter-clockwise.
    """

    image: np.ndarray
    boxes: list[list[Box]]
    values: Values
    style: str
    angle: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return len(self.values), len(self.values[0])


@dataclass(frozen=True)
class _Palette:
    page: tuple[int, int, int]
    text: tuple[int, int, int]
    rule: tuple[int, int, int] | None
    rule_width: int
    horizontal_only: bool = False


def render_table(
    values: Values,
    style: str,
    *,
    seed: int = 0,
    font: str | os.PathLike[str] | None = None,
    cell: tuple[int, int] | None = None,
    line_width: int | None = None,
    angle: float | None = None,
    mnist: tuple[np.ndarray, np.ndarray] | MnistGlyphs | None = None,
    page: bool = False,
    tiny: bool = False,
    align: str | None = None,
    jpeg_quality: int | None = None,
) -> RenderedTable:
    """Draw a table of numbers in one of :data:`STYLES`.

    Args:
        values: rows of ints (0-9999) or ``None`` for an empty cell.
        style: ``ruled``, ``roulette``, ``zebra``, ``borderless``, ``dark`` or ``scan``.
        seed: seed for every random choice (colours, font, sizes, noise).
        font: font file for the digits; a seeded pick from :func:`find_fonts`
            when ``None`` (Pillow's bundled face when none is installed).
        cell: ``(width, height)`` of a cell (the rule pitch) in pixels.
        line_width: rule width in pixels (ruled, dark, scan) or gap width
            (roulette, 0 for none).
        angle: ``scan`` only: rotation in degrees (random within +-3 if ``None``).
        mnist: ``scan`` only: MNIST images and labels (or a :class:`MnistGlyphs`)
            to write the numbers by hand; font digits otherwise.
        page: place the table on a larger page with a title, a paragraph with
            numbers in it, a footer and wide margins.
        tiny: 15x8 px cells with digits about 6 px tall.
        align: ``left``, ``center`` or ``right`` within cells (random if ``None``).
        jpeg_quality: JPEG-compress the result at this quality.

    Raises:
        DataError: bad values, style or option.
    """
    _check_values(values)
    if style not in STYLES:
        raise DataError(f"table style {style!r} is not one of {', '.join(STYLES)}")
    if angle is not None and (style != "scan" or abs(angle) > _MAX_ANGLE):
        raise DataError(f"angle {angle} needs style 'scan' and at most {_MAX_ANGLE} degrees")
    if align not in (None, "left", "center", "right"):
        raise DataError(f"align {align!r} is not left, center or right")
    rng = np.random.default_rng(seed)
    rows, cols = len(values), len(values[0])
    widest = max((len(str(v)) for row in values for v in row if v is not None), default=1)
    if cell is None:
        if tiny:
            cell = TINY_CELL
        else:
            ch = int(rng.integers(20, 56))
            cell = (max(int(ch * rng.uniform(0.9, 1.8)), round(ch * 0.45 * widest) + 10), ch)
    cw, ch = int(cell[0]), int(cell[1])
    if cw < 6 or ch < 6 or cw * cols > 8000 or ch * rows > 8000:
        raise DataError(f"cell size {cell} does not make a drawable table of {rows}x{cols}")
    font_path = Path(font) if font is not None else _pick_font(rng)
    palette = _palette(rng, style, line_width, tiny)
    align = align or str(rng.choice(("left", "center", "right"), p=(0.15, 0.6, 0.25)))

    # Layout: the table, then the page around it.
    margin = int(rng.integers(60, 140)) if page else int(rng.integers(8, 30))
    title_h = para_h = foot_h = 0
    body_px = max(11, min(20, ch // 2 + 4)) if page else 0
    if page:
        title_h, para_h, foot_h = round(body_px * 2.6), round(body_px * 4.8), round(body_px * 2.2)
    table_w, table_h = cw * cols, ch * rows
    width = max(table_w + 2 * margin, 320 if page else 0)
    height = table_h + 2 * margin + title_h + para_h + foot_h
    ox = (width - table_w) // 2 if not page else margin
    oy = margin + title_h + para_h
    xs = [ox + c * cw for c in range(cols + 1)]
    ys = [oy + r * ch for r in range(rows + 1)]

    img = Image.new("RGB", (width, height), palette.page)
    if style == "scan":
        base = fx.paper(rng, height, width)
        img = Image.fromarray(fx.to_uint8(base))
    draw = ImageDraw.Draw(img)
    if page:
        _draw_page_text(
            draw, rng, font_path, body_px, palette, (margin, width - margin), oy, ys[-1]
        )

    _draw_cells(draw, rng, style, palette, xs, ys, values)
    glyphs = _as_glyphs(mnist) if style == "scan" else None
    arr = np.asarray(img).astype(np.float32)
    _draw_numbers(arr, rng, values, xs, ys, font_path, palette, align, tiny, glyphs)

    boxes = [[(xs[c], ys[r], xs[c + 1], ys[r + 1]) for c in range(cols)] for r in range(rows)]
    used_angle = 0.0
    if style == "scan":
        used_angle = float(angle) if angle is not None else float(rng.uniform(-3.0, 3.0))
        arr, boxes = _scan(rng, arr, boxes, used_angle)
    out = fx.to_uint8(arr)
    if jpeg_quality is not None:
        out = fx.jpeg(out, int(jpeg_quality))
    return RenderedTable(
        image=out,
        boxes=boxes,
        values=[list(row) for row in values],
        style=style,
        angle=used_angle,
    )


def roulette_colour_name(value: int | None) -> str:
    """The pocket colour of a roulette number: ``green``, ``red`` or ``black``."""
    if value is None:
        return "empty"
    if value == 0:
        return "green"
    return "red" if value in ROULETTE_RED else "black"


def _check_values(values: Values) -> None:
    if not values or not values[0]:
        raise DataError("table values: need at least one row and one column")
    cols = len(values[0])
    for r, row in enumerate(values):
        if len(row) != cols:
            raise DataError(f"table values: row {r} has {len(row)} cells, row 0 has {cols}")
        for v in row:
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 9999
            ):
                raise DataError(f"table values: {v!r} in row {r} is not an int 0-9999 or None")


def _pick_font(rng: np.random.Generator) -> Path | None:
    fonts = find_fonts()
    if not fonts:
        return None
    return fonts[int(rng.integers(len(fonts)))]


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    return (int(c[0]), int(c[1]), int(c[2]))


def _palette(rng: np.random.Generator, style: str, line_width: int | None, tiny: bool) -> _Palette:
    lw = line_width if line_width is not None else int(rng.choice((1, 1, 2, 3)))
    if tiny and line_width is None:
        lw = 1
    if lw < 0 or lw > 8:
        raise DataError(f"line width {lw} is outside 0-8")
    page: np.ndarray
    rule: np.ndarray | None
    if style == "ruled":
        page = np.full(3, 255.0) if rng.random() < 0.6 else fx.tint(rng, (238, 252), 4)
        if rng.random() < 0.5:
            rule = fx.tint(rng, (0, 150), 6)
        else:
            rule = fx.contrasting(rng, page.astype(np.float32), 60)
        text = fx.tint(rng, (0, 70), 8)
        return _Palette(_rgb(page), _rgb(text), _rgb(rule), max(1, lw))
    if style == "roulette":
        gap = line_width if line_width is not None else int(rng.choice((0, 1, 2, 2, 3, 4)))
        gap_colour = (255, 255, 255) if rng.random() < 0.8 else (30, 30, 30)
        return _Palette(gap_colour, (255, 255, 255), gap_colour, gap)
    if style == "zebra":
        rule = fx.tint(rng, (190, 225), 4) if rng.random() < 0.6 else None
        return _Palette(
            (255, 255, 255),
            _rgb(fx.tint(rng, (0, 70), 8)),
            _rgb(rule) if rule is not None else None,
            1,
            True,
        )
    if style == "borderless":
        page = np.full(3, 255.0) if rng.random() < 0.7 else fx.tint(rng, (236, 252), 4)
        return _Palette(_rgb(page), _rgb(fx.tint(rng, (0, 80), 8)), None, 0)
    if style == "dark":
        page = fx.tint(rng, (14, 48), 8)
        text = fx.tint(rng, (190, 250), 8)
        rule = np.minimum(page + rng.uniform(20, 55), 255) if rng.random() < 0.6 else None
        horizontal = bool(rng.random() < 0.4)
        return _Palette(
            _rgb(page), _rgb(text), _rgb(rule) if rule is not None else None, max(1, lw), horizontal
        )
    # scan: printed ink and ruling on paper
    rule = fx.tint(rng, (15, 90), 6) if rng.random() < 0.8 else np.array([60.0, 90.0, 170.0])
    return _Palette((240, 238, 230), _rgb(fx.tint(rng, (10, 50), 5)), _rgb(rule), max(1, lw))


def _draw_cells(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    style: str,
    pal: _Palette,
    xs: list[int],
    ys: list[int],
    values: Values,
) -> None:
    """Cell backgrounds and rules (everything but the numbers)."""
    rows, cols = len(ys) - 1, len(xs) - 1
    x0, x1, y0, y1 = xs[0], xs[-1], ys[0], ys[-1]
    if style == "roulette":
        g = pal.rule_width
        lo, hi = g - g // 2, g // 2
        if g:
            draw.rectangle((x0 - hi, y0 - hi, x1 + lo - 1, y1 + lo - 1), fill=pal.page)
        for r in range(rows):
            for c in range(cols):
                colour = _roulette_fill(rng, values[r][c])
                draw.rectangle(
                    (xs[c] + lo, ys[r] + lo, xs[c + 1] - hi - 1, ys[r + 1] - hi - 1), fill=colour
                )
        return
    if style == "zebra":
        tint = _rgb(fx.tint(rng, (228, 246), 8))
        for r in range(rows):
            if r % 2 == 1:
                draw.rectangle((x0, ys[r], x1 - 1, ys[r + 1] - 1), fill=tint)
    if style == "dark" and rng.random() < 0.4:
        alt = tuple(min(255, v + 10) for v in pal.page)
        for r in range(1, rows, 2):
            draw.rectangle((x0, ys[r], x1 - 1, ys[r + 1] - 1), fill=alt)
    if pal.rule is None or pal.rule_width <= 0:
        return
    lw = pal.rule_width
    if style == "scan" and rng.random() < 0.4:
        _hand_ruling(draw, rng, xs, ys, pal)
        return
    for y in ys:
        top = y - lw // 2
        draw.rectangle((x0 - lw // 2, top, x1 - lw // 2 + lw - 1, top + lw - 1), fill=pal.rule)
    if pal.horizontal_only:
        return
    for x in xs:
        left = x - lw // 2
        draw.rectangle((left, y0 - lw // 2, left + lw - 1, y1 - lw // 2 + lw - 1), fill=pal.rule)


def _roulette_fill(rng: np.random.Generator, value: int | None) -> tuple[int, int, int]:
    name = roulette_colour_name(value)
    if name == "empty":
        return _rgb(fx.tint(rng, (205, 232), 3))
    return _rgb(fx.roulette_colour(rng, name))


def _hand_ruling(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, xs: list[int], ys: list[int], pal: _Palette
) -> None:
    """Ruling drawn by hand along a ruler: slightly wavy, a little past the corners."""
    lw = pal.rule_width
    for horizontal, lines, span in ((True, ys, (xs[0], xs[-1])), (False, xs, (ys[0], ys[-1]))):
        for p in lines:
            a = span[0] - int(rng.integers(0, 4))
            b = span[1] + int(rng.integers(0, 4))
            t = np.linspace(a, b, 8)
            wobble = np.cumsum(rng.normal(0, 0.35, 8))
            wobble -= np.linspace(wobble[0], wobble[-1], 8)
            pts = [
                (float(u), p + float(d)) if horizontal else (p + float(d), float(u))
                for u, d in zip(t, wobble, strict=True)
            ]
            draw.line(pts, fill=pal.rule, width=lw, joint="curve")


def _draw_page_text(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    font_path: Path | None,
    px: int,
    pal: _Palette,
    span: tuple[int, int],
    table_top: int,
    table_bottom: int,
) -> None:
    """A title, a paragraph with numbers in it, and a footer around the table."""
    x0, x1 = span
    title = load_font(font_path, round(px * 1.6))
    body = load_font(font_path, px)
    year, count, n = (
        int(rng.integers(2015, 2030)),
        int(rng.integers(100, 9999)),
        int(rng.integers(2, 9)),
    )
    draw.text(
        (x0, table_top - round(px * 7.4)), f"Results {year}, table {n}", font=title, fill=pal.text
    )
    words = (
        f"Over {count} draws in {year} these counts were kept for {n * 4} columns; "
        f"rows 1-{n + 3} are final."
    ).split()
    lines, line = [], ""
    for w in words:
        trial = f"{line} {w}".strip()
        if _text_width(body, trial) > x1 - x0 and line:
            lines.append(line)
            line = w
        else:
            line = trial
    lines.append(line)
    y = table_top - round(px * 4.6)
    for text in lines[:3]:
        draw.text((x0, y), text, font=body, fill=pal.text)
        y += round(px * 1.35)
    draw.text(
        (x0, table_bottom + round(px * 0.9)),
        f"Page {n} of {n + 3} - updated 14:0{n}",
        font=body,
        fill=pal.text,
    )


def _text_width(font: AnyFont, text: str) -> float:
    return float(font.getlength(text))


def _as_glyphs(mnist: tuple[np.ndarray, np.ndarray] | MnistGlyphs | None) -> MnistGlyphs | None:
    if mnist is None or isinstance(mnist, MnistGlyphs):
        return mnist
    return MnistGlyphs(np.asarray(mnist[0]), np.asarray(mnist[1]))


def _fit_font_px(font_path: Path | None, widest: str, cw: int, ch: int, tiny: bool) -> int:
    """The largest size whose digits fill about half the cell height and fit its width."""
    target_cap = 6.0 if tiny else ch * 0.46
    px = max(6, round(target_cap / 0.72))
    while px > 6:
        font = load_font(font_path, px)
        x0, y0, x1, _ = font.getbbox(widest, anchor="ls")
        if x1 - x0 <= (cw - 2 if tiny else cw * 0.8) and -y0 <= (ch - 2 if tiny else ch * 0.6):
            break
        px -= 1
    return px


def _draw_numbers(
    arr: np.ndarray,
    rng: np.random.Generator,
    values: Values,
    xs: list[int],
    ys: list[int],
    font_path: Path | None,
    pal: _Palette,
    align: str,
    tiny: bool,
    glyphs: MnistGlyphs | None,
) -> None:
    """Write every number into its cell of the float image ``arr``."""
    cw, ch = xs[1] - xs[0], ys[1] - ys[0]
    widest = "8" * max((len(str(v)) for row in values for v in row if v is not None), default=1)
    px = _fit_font_px(font_path, widest, cw, ch, tiny)
    font = load_font(font_path, px)
    pad = 1 if tiny else max(3, cw // 10)
    ink = np.array(pal.text, np.float32)
    # Printed numbers share a baseline, placed so the digits' cap height is centred.
    cap = -int(font.getbbox("8", anchor="ls")[1])
    baseline = (ch + cap) // 2
    for r, row in enumerate(values):
        for c, v in enumerate(row):
            if v is None:
                continue
            text = str(v)
            if glyphs is not None:
                mask = _hand_number(rng, glyphs, text, cw, ch)
                mh, mw = mask.shape
                y = ys[r] + (ch - mh) // 2 + int(rng.integers(-ch // 12, ch // 12 + 1))
            else:
                mask, top = _font_number(font, text)
                mh, mw = mask.shape
                y = ys[r] + baseline + top
            if align == "left":
                x = xs[c] + pad
            elif align == "right":
                x = xs[c + 1] - pad - mw
            else:
                x = xs[c] + (cw - mw) // 2
            if glyphs is not None:
                x += int(rng.integers(-cw // 10, cw // 10 + 1))
            fx.blend(arr, mask, ink, x, y)


def _font_number(font: AnyFont, text: str) -> tuple[np.ndarray, int]:
    """A number's float alpha mask and the mask's top relative to the baseline."""
    x0, y0, x1, y1 = (int(v) for v in font.getbbox(text, anchor="ls"))
    img = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)))
    ImageDraw.Draw(img).text((-x0, -y0), text, font=font, fill=255, anchor="ls")
    return np.asarray(img).astype(np.float32) * (1.0 / 255.0), y0


def _hand_number(
    rng: np.random.Generator, glyphs: MnistGlyphs, text: str, cw: int, ch: int
) -> np.ndarray:
    raw = glyphs.fuse(rng, text, max_shear=0.2)
    scale = min(ch * rng.uniform(0.5, 0.72) / raw.shape[0], cw * 0.85 / raw.shape[1])
    size = (max(1, round(raw.shape[1] * scale)), max(1, round(raw.shape[0] * scale)))
    mask = cv2.resize(raw, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    mask = np.clip((mask - 0.1) * 1.6, 0.0, 1.0)
    return trim_mask(rotate_mask(mask, float(rng.uniform(-4, 4))))


def _scan(
    rng: np.random.Generator, arr: np.ndarray, boxes: list[list[Box]], angle: float
) -> tuple[np.ndarray, list[list[Box]]]:
    """Rotate with mild perspective, blur, add noise; boxes follow the warp."""
    h, w = arr.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(-0.012, 0.012, (4, 2)) * np.array([w, h])
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    dst = (np.hstack([src, np.ones((4, 1), np.float32)]) @ rot.T + jitter).astype(np.float32)
    shift = -dst.min(axis=0) + 4
    dst += shift
    out_w, out_h = (math.ceil(v) + 4 for v in dst.max(axis=0))
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    border = arr[2:6, 2:6].reshape(-1, 3).mean(axis=0)
    warped = cv2.warpPerspective(
        arr,
        m,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(v) for v in border),
    )
    new_boxes: list[list[Box]] = []
    for row in boxes:
        out_row: list[Box] = []
        for x0, y0, x1, y1 in row:
            corners = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], np.float32)
            p = cv2.perspectiveTransform(corners, m)[0]
            bx0, by0 = (max(0, math.floor(v)) for v in p.min(axis=0))
            bx1 = min(out_w, math.ceil(float(p[:, 0].max())))
            by1 = min(out_h, math.ceil(float(p[:, 1].max())))
            out_row.append((int(bx0), int(by0), int(bx1), int(by1)))
        new_boxes.append(out_row)
    warped = fx.gaussian_blur(warped, float(rng.uniform(0.4, 1.0)))
    fx.add_noise(rng, warped, float(rng.uniform(2.0, 5.0)))
    out = fx.jpeg(fx.to_uint8(warped), int(rng.integers(55, 92)))
    return out.astype(np.float32), new_boxes
