"""Synthetic cell crops for pretraining the cell classifier.

Each sample imitates what the grid stage hands to :func:`prepare_crop`: the box of
one table cell, cut with a little margin (or a little short), so neighbouring
rules and cell colours may show at the edges. Three kinds are made:

* handwritten numbers fused from MNIST digits on scanned paper;
* printed numbers in real fonts on screen-like backgrounds (plain, zebra, dark
  theme, roulette, any colours) or on paper, rendered at 1-3x and scaled down;
* empty cells of all the above looks, with rules, noise and the odd speck.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gridreader.classes import EMPTY
from gridreader.errors import DataError
from gridreader.preprocess import INPUT_SIZE, prepare_batch
from gridreader.synth import effects as fx
from gridreader.synth.fonts import compose_number, glyph_atlas
from gridreader.synth.handwriting import MnistGlyphs, rotate_mask, trim_mask

# Glyph atlases: exact renderings at 7-24 px (hinting shapes small screen text),
# larger text scaled down from one 112 px master per font, so the atlas cache
# stays small (about 20 atlases per font).
_PX_MIN = 7
_DIRECT_MAX_PX = 24
_MASTER_PX = 112
_SCREEN_LOOKS = ("light", "zebra", "dark", "roulette", "colour", "paper")
_SCREEN_LOOK_CUM = (0.30, 0.43, 0.60, 0.75, 0.90, 1.0)
_MAX_RENDER_AREA = 90_000
_GRID, _HORIZONTAL, _NONE, _VERTICAL = 0, 1, 2, 3
_ROULETTE = ("red", "black", "green")
_WHITE = np.full(3, 255.0, np.float32)


@dataclass
class _Look:
    """Colours and degradations of one crop. ``rules`` is top, bottom, left, right."""

    regions: np.ndarray  # (3, 3, 3): neighbour rows x neighbour cols x RGB
    ink: np.ndarray
    paper: bool = False
    rules: list[tuple[float, np.ndarray] | None] = field(default_factory=lambda: [None] * 4)
    rule_slope: float = 0.0
    ink_alpha: float = 1.0
    blur: float = 0.0
    noise: float = 0.0
    jpeg: int = 0
    invert: bool = False


class CellSynth:
    """Endless, seeded stream of synthetic cell crops.

    Args:
        classes: class names, numbers first and ``"empty"`` last
            (see :func:`gridreader.classes.parse_classes`).
        mnist_x: ``(N, 28, 28)`` uint8 MNIST training digits.
        mnist_y: their labels.
        fonts: font files for printed numbers; empty uses Pillow's bundled face.
        seed: seed of the numpy generator behind every random choice.
        handwritten_share: share of the crops drawn as handwriting on scanned
            paper (for empty cells: share of blank paper cells).
        empty_share: share of all crops that are empty cells.
        small_text_share: share of printed crops drawn with tiny text (cap
            height 4.5-9 px, as on downscaled screenshots); 0 keeps the default
            size mix.

    Numbers are drawn uniformly from the class list. The same seed and the same
    sequence of calls give the same crops.
    """

    def __init__(
        self,
        classes: tuple[str, ...],
        mnist_x: np.ndarray,
        mnist_y: np.ndarray,
        fonts: list[Path],
        seed: int,
        handwritten_share: float = 0.35,
        empty_share: float = 0.14,
        small_text_share: float = 0.0,
    ) -> None:
        if not classes or classes[-1] != EMPTY:
            raise DataError(f"classes must end with {EMPTY!r}, got {classes!r}")
        numbers = classes[:-1]
        if not numbers or not all(c.isdigit() for c in numbers):
            raise DataError(f"classes must be non-negative integers before {EMPTY!r}")
        if not (0.0 <= handwritten_share <= 1.0 and 0.0 <= empty_share < 1.0):
            raise DataError("handwritten_share must be in [0, 1] and empty_share in [0, 1)")
        self.classes = classes
        self.handwritten_share = handwritten_share
        self.empty_share = empty_share
        self.small_text_share = small_text_share
        self._numbers = numbers
        self._widest = max(len(c) for c in numbers)
        self._mnist = MnistGlyphs(mnist_x, mnist_y)
        self._font_groups = _group_fonts(fonts)
        self._rng = np.random.default_rng(seed)

    def sample(self, n: int) -> tuple[list[np.ndarray], np.ndarray]:
        """``n`` raw RGB uint8 crops of varied sizes and their class indices.

        Raises:
            DataError: ``n`` is negative.
        """
        if n < 0:
            raise DataError(f"cannot sample {n} crops")
        rng = self._rng
        empty_index = len(self.classes) - 1
        labels = rng.integers(0, len(self._numbers), n)
        labels[rng.random(n) < self.empty_share] = empty_index
        crops = [self._crop(rng, int(y)) for y in labels]
        return crops, labels.astype(np.int64)

    def sample_prepared(
        self, n: int, size: tuple[int, int] = INPUT_SIZE, *, drop_blank: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` crops through :func:`prepare_batch`: ``(n, h, w, 1)`` float32 and labels.

        Args:
            n: how many.
            size: ``(height, width)`` of the prepared images.
            drop_blank: replace misleading pairs: numbered crops whose prepared
                image is all zero (text too faint or small for
                :func:`prepare_crop` to find), so the network is never taught
                that a blank input is a number, and empty crops that come out as
                a lone upright bar (see :func:`upright_bars`).
        """
        crops, labels = self.sample(n)
        X = prepare_batch(crops, size)
        if not drop_blank or n == 0:
            return X, labels
        empty = len(self.classes) - 1
        for _ in range(20):
            blank = X.reshape(n, -1).max(axis=1) == 0
            bad = np.flatnonzero(
                ((labels != empty) & blank) | ((labels == empty) & upright_bars(X))
            )
            if len(bad) == 0:
                break
            more, more_labels = self.sample(len(bad))
            X[bad] = prepare_batch(more, size)
            labels[bad] = more_labels
        return X, labels

    def _crop(self, rng: np.random.Generator, label: int) -> np.ndarray:
        text = None if label == len(self.classes) - 1 else self.classes[label]
        if rng.random() < self.handwritten_share:
            return self._handwritten(rng, text)
        return self._printed(rng, text)

    def _printed(self, rng: np.random.Generator, text: str | None) -> np.ndarray:
        look_name = _SCREEN_LOOKS[_pick(rng, _SCREEN_LOOK_CUM)]
        # Final cap height in pixels: mostly ordinary text, sometimes tiny or huge.
        if self.small_text_share and rng.random() < self.small_text_share:
            cap_f = _log_uniform(rng, 4.5, 9.0)
        else:
            cap_f = (
                _log_uniform(rng, 8.0, 34.0) if rng.random() < 0.75 else _log_uniform(rng, 5, 80)
            )
        k = 1.0 if rng.random() < 0.35 else _u(rng, 1.2, 3.0)
        path = self._pick_font(rng)
        px = cap_f * k / 0.72
        if px < _DIRECT_MAX_PX + 0.5:
            # Small sizes are rendered exactly: hinting shapes small screen text.
            atlas = glyph_atlas(path, max(_PX_MIN, round(px)))
            s = 1.0
        else:
            atlas = glyph_atlas(path, _MASTER_PX)
            s = min(cap_f * k / atlas.cap, 1.15)
        # The final cap height is kept; the render scale absorbs the rounding.
        k = max(0.7, atlas.cap * s / cap_f)
        ref_w = self._widest * float(np.mean(atlas.advance)) * s
        if text is not None:
            tracking = _u(rng, -0.04, 0.1) if rng.random() < 0.2 else 0.0
            mask = compose_number(atlas, text, tracking)
            if s != 1.0:
                size = (max(1, round(mask.shape[1] * s)), max(1, round(mask.shape[0] * s)))
                mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
            if rng.random() < 0.08 and px >= 14:
                mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
            fmask: np.ndarray | None = mask.astype(np.float32) * (1.0 / 255.0)
            text_h, text_w = mask.shape
        else:
            fmask = None
            text_h, text_w = round(atlas.cap * s), round(ref_w * _u(rng, 0.4, 1.0))
        cell_h = text_h / _u(rng, 0.3, 0.78)
        cell_w = max(ref_w, text_w) / _u(rng, 0.4, 0.92)
        if rng.random() < 0.12:
            cell_w *= _u(rng, 1.3, 2.5)
        cell_w = max(cell_w, text_h * _u(rng, 0.8, 1.2))
        # Big crops cost time and add nothing once the text is large: cap the
        # render size by rendering closer to the final scale.
        area = cell_w * cell_h
        if area > _MAX_RENDER_AREA and k > 1.0:
            shrink = max(1.0 / k, math.sqrt(_MAX_RENDER_AREA / area))
            if fmask is not None:
                size = (max(1, round(text_w * shrink)), max(1, round(text_h * shrink)))
                fmask = cv2.resize(fmask, size, interpolation=cv2.INTER_AREA)
                text_h, text_w = fmask.shape
            cell_w, cell_h, k = cell_w * shrink, cell_h * shrink, k * shrink
        cw, ch = max(3, round(cell_w)), max(3, round(cell_h))
        look = self._screen_look(rng, look_name, text is None)
        # Horizontal alignment and padding like table CSS; vertical centring.
        free_x, free_y = cw - text_w, ch - text_h
        align = _pick(rng, (0.2, 0.75, 1.0))
        pad = _u(rng, 0.03, 0.25) * cw
        if align == 0:
            tx = min(pad, free_x / 2)
        elif align == 2:
            tx = max(free_x - pad, free_x / 2)
        else:
            tx = free_x / 2 + rng.normal(0, 0.03) * cw
        ty = free_y / 2 + rng.normal(0, 0.04) * ch
        tx = min(max(tx, 0.0), max(0.0, free_x))
        ty = min(max(ty, 0.0), max(0.0, free_y))
        return _render(rng, look, cw, ch, fmask, round(tx), round(ty), k)

    def _handwritten(self, rng: np.random.Generator, text: str | None) -> np.ndarray:
        ink_h = _log_uniform(rng, 14.0, 64.0)
        mask = None
        text_w = ink_h * self._widest * 0.6
        if text is not None:
            raw = self._mnist.fuse(rng, text)
            scale = ink_h / raw.shape[0]
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            size = (max(1, round(raw.shape[1] * scale)), max(2, round(raw.shape[0] * scale)))
            mask = cv2.resize(raw, size, interpolation=interp)
            if scale > 1.3 and rng.random() < 0.7:
                # Upscaled MNIST is soft; a scanned pen stroke has firmer edges.
                lo = _u(rng, 0.05, 0.2)
                mask = np.clip((mask - lo) * (1.0 / _u(rng, 0.35, 0.6)), 0.0, 1.0)
            if rng.random() < 0.7:
                mask = rotate_mask(mask, _u(rng, -4.0, 4.0))
            mask = trim_mask(mask)
            ink_h, text_w = mask.shape
        cell_h = ink_h / _u(rng, 0.42, 0.85)
        cell_w = max(text_w, ink_h * 0.6 * self._widest) / _u(rng, 0.45, 0.95)
        cw, ch = max(4, round(cell_w)), max(4, round(cell_h))
        look = _paper_look(rng, handwritten=True, ink_h=ink_h)
        free_x, free_y = cw - text_w, ch - ink_h
        tx = _u(rng, min(0, free_x), max(0, free_x))
        if rng.random() < 0.2:
            # Writing that runs over the cell's top or bottom rule.
            over = _u(rng, 0.0, 0.15) * ink_h
            ty = -over if rng.random() < 0.3 else free_y + over
        else:
            ty = free_y / 2 + rng.normal(0, 0.08) * ch
            ty = min(max(ty, 0.0), max(0.0, free_y))
        return _render(rng, look, cw, ch, mask, round(tx), round(ty), 1.0)

    def _pick_font(self, rng: np.random.Generator) -> Path | None:
        group = self._font_groups[int(rng.integers(len(self._font_groups)))]
        return group[int(rng.integers(len(group)))]

    def _screen_look(self, rng: np.random.Generator, name: str, empty: bool) -> _Look:
        if name == "paper":
            return _paper_look(rng, handwritten=False, ink_h=0.0)
        regions = np.empty((3, 3, 3), np.float32)
        rule_w = (1.0, 2.0, 3.0)[_pick(rng, (0.55, 0.88, 1.0))]
        rules: list[tuple[float, np.ndarray] | None] = [None] * 4
        if name in ("light", "zebra"):
            bg = _WHITE if rng.random() < 0.55 else fx.tint(rng, (232, 252), 5)
            regions[:] = bg
            if name == "zebra":
                other = fx.tint(rng, (218, 246), 10)
                if rng.random() < 0.5:
                    regions[1] = other
                else:
                    regions[0] = regions[2] = other
            ink = fx.tint(rng, (0, 90), 12) if rng.random() < 0.8 else fx.contrasting(rng, bg, 120)
            r = rng.random()
            if r < 0.5:
                colour = fx.tint(rng, (120, 225), 8)
            elif r < 0.72:
                colour = fx.tint(rng, (0, 60), 6)
            else:
                colour = fx.contrasting(rng, bg, 50)
            if name == "zebra":
                mode = _HORIZONTAL if rng.random() < 0.6 else _NONE
            else:
                mode = _pick(rng, (0.5, 0.75, 0.92, 1.0))
            rules = _rule_set(mode, rule_w, colour)
        elif name == "dark":
            bg = fx.tint(rng, (10, 62), 10)
            regions[:] = bg
            if rng.random() < 0.3:
                regions[0] = regions[2] = np.minimum(bg + _u(rng, 6, 20), 255)
            ink = (
                fx.tint(rng, (170, 255), 10) if rng.random() < 0.8 else fx.contrasting(rng, bg, 110)
            )
            colour = np.minimum(bg + _u(rng, 15, 60), 255)
            rules = _rule_set(_pick(rng, (0.4, 0.65, 1.0)), rule_w, colour)
        elif name == "roulette":
            for i in range(3):
                for j in range(3):
                    kind = _ROULETTE[_pick(rng, (0.47, 0.92, 1.0))]
                    regions[i, j] = fx.roulette_colour(rng, kind)
            if empty and rng.random() < 0.6:
                regions[1, 1] = fx.tint(rng, (195, 240), 4)
            ink = fx.tint(rng, (225, 255), 6)
            if rng.random() < 0.1:
                ink = np.array([255, 220 - _u(rng, 0, 30), 60], np.float32)
            r = rng.random()
            gap = (1.0, 2.0, 3.0, 4.0)[_pick(rng, (0.2, 0.6, 0.85, 1.0))]
            if r < 0.7:
                rules = _rule_set(_GRID, gap, fx.tint(rng, (225, 255), 4))
            elif r < 0.8:
                rules = _rule_set(_GRID, gap, fx.tint(rng, (20, 60), 4))
        else:
            bg = rng.uniform(0, 255, 3).astype(np.float32)
            regions[:] = bg
            if rng.random() < 0.3:
                regions[0] = regions[2] = np.clip(bg + rng.uniform(-25, 25, 3), 0, 255)
            ink = fx.contrasting(rng, bg, 95)
            if rng.random() < 0.5:
                rules = _rule_set(int(rng.integers(3)), rule_w, fx.contrasting(rng, bg, 40))
        look = _Look(regions=regions, ink=ink, rules=rules)
        if rng.random() < 0.3:
            look.jpeg = _jpeg_quality(rng)
        if rng.random() < 0.08:
            look.noise = _u(rng, 1.0, 4.0)
        return look


def upright_bars(X: np.ndarray) -> np.ndarray:
    """Which prepared images ``(n, h, w, 1)`` hold a lone upright bar.

    Such a bar is what a "1" becomes once scaled to fill the canvas. Empty
    synthetic cells come out like this far more often than real ones (a third of
    the empty cells the generator draws keep a stub of ruling, 2 of 51 empty
    cells on the dev screens do), and training on them as "empty" taught the
    network to read a lone "1" in tiny cells as empty.
    """
    ink = X[..., 0] > 0.3
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    h = ink.shape[1]
    tall = rows.sum(axis=1) >= 0.75 * (h - 4)  # the canvas less its padding
    # Ink columns, not the bounding box: a bar with a speck beside it is a bar.
    narrow = cols.sum(axis=1) <= 0.45 * rows.sum(axis=1)
    return np.asarray(tall & narrow)


def _group_fonts(fonts: list[Path]) -> list[list[Path | None]]:
    """Fonts grouped by folder, so a family with many files is not over-drawn."""
    if not fonts:
        return [[None]]
    groups: dict[Path, list[Path | None]] = {}
    for p in sorted(fonts):
        groups.setdefault(p.parent, []).append(p)
    return list(groups.values())


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return math.exp(_u(rng, math.log(lo), math.log(hi)))


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A uniform float; a third the cost of ``rng.uniform`` for one scalar."""
    return lo + (hi - lo) * rng.random()


def _pick(rng: np.random.Generator, cumulative: tuple[float, ...]) -> int:
    """Index drawn from cumulative probabilities (last one 1.0)."""
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def _jpeg_quality(rng: np.random.Generator) -> int:
    """JPEG quality 40-95, mostly in the upper half as web images are."""
    return int(40 + 55 * rng.random() ** 0.7)


def _rule_set(mode: int, width: float, colour: np.ndarray) -> list[tuple[float, np.ndarray] | None]:
    """Rules at top, bottom, left, right for a ruling mode (grid, horizontal, none, vertical)."""
    h = (width, colour) if mode in (_GRID, _HORIZONTAL) else None
    v = (width, colour) if mode in (_GRID, _VERTICAL) else None
    return [h, h, v, v]


def _paper_look(rng: np.random.Generator, *, handwritten: bool, ink_h: float) -> _Look:
    """Scanned paper with printed or ruled lines; pen, pencil or print ink."""
    r = rng.random()
    ink_alpha = 1.0
    if r < 0.45:
        ink = fx.tint(rng, (5, 45), 6)
    elif r < 0.7:
        ink = np.array([_u(rng, 10, 60), _u(rng, 20, 80), _u(rng, 110, 200)], np.float32)
    elif r < 0.85 or not handwritten:
        ink = fx.tint(rng, (45, 90), 5)
    else:
        ink = fx.tint(rng, (70, 130), 4)
        ink_alpha = _u(rng, 0.55, 0.85)
    c = rng.random()
    if c < 0.45:
        colour = fx.tint(rng, (60, 170), 5)
    elif c < 0.75:
        colour = fx.tint(rng, (10, 50), 4)
    else:
        colour = np.array([_u(rng, 60, 170), _u(rng, 110, 200), _u(rng, 190, 245)], np.float32)
    width = (1.0, 2.0, 3.0, 4.0)[_pick(rng, (0.35, 0.7, 0.9, 1.0))]
    look = _Look(
        regions=np.zeros((3, 3, 3), np.float32),
        ink=ink,
        paper=True,
        rules=_rule_set(_pick(rng, (0.75, 0.9, 1.0)), width, colour),
        rule_slope=float(rng.normal(0, 0.006)),
        ink_alpha=ink_alpha,
    )
    if rng.random() < 0.7:
        # Scanner blur; small writing cannot take as much of it and stay legible.
        top = 1.2 if ink_h <= 0 else min(1.2, 0.05 * ink_h)
        look.blur = _u(rng, 0.3, max(0.35, top))
    if rng.random() < 0.8:
        look.noise = _u(rng, 1.5, 7.0)
    if rng.random() < 0.5:
        look.jpeg = _jpeg_quality(rng)
    look.invert = handwritten and rng.random() < 0.04
    return look


def _render(
    rng: np.random.Generator,
    look: _Look,
    cw: int,
    ch: int,
    mask: np.ndarray | None,
    tx: int,
    ty: int,
    k: float,
) -> np.ndarray:
    """Paint one cell and its surroundings at render scale and cut the crop.

    ``(tx, ty)`` is the text mask's place relative to the cell's top-left, ``k``
    the render scale (the crop is scaled down by it at the end).
    """
    # The crop: the cell box with each side moved out (or in) by up to 15%.
    jx = rng.uniform(-0.15, 0.15, 2) * cw
    jy = rng.uniform(-0.15, 0.15, 2) * ch
    left, right = round(-jx[0]), cw + round(jx[1])
    top, bottom = round(-jy[0]), ch + round(jy[1])
    if mask is not None:
        # Cutting short must not cut into text that sits inside the cell.
        mh, mw = mask.shape
        left = min(left, max(0, tx - 1))
        right = max(right, min(cw, tx + mw + 1))
        top = min(top, max(0, ty - 1))
        bottom = max(bottom, min(ch, ty + mh + 1))
    width, height = max(3, right - left), max(3, bottom - top)
    cx0, cy0 = -left, -top  # the cell's top-left in crop coordinates
    cx1, cy1 = cx0 + cw, cy0 + ch

    if look.paper:
        img = fx.paper(rng, height, width)
    else:
        xs = (0, min(max(cx0, 0), width), min(max(cx1, 0), width), width)
        ys = (0, min(max(cy0, 0), height), min(max(cy1, 0), height), height)
        img = fx.fill_grid(xs, ys, look.regions)

    empty = mask is None
    for side, rule in enumerate(look.rules):
        if rule is None:
            continue
        w_f, colour = rule
        span = (0.0, 1.0)
        if empty and rng.random() < 0.15:
            a = _u(rng, 0.0, 0.6)
            span = (a, _u(rng, a + 0.2, 1.0))
        pos = (cy0, cy1, cx0, cx1)[side]
        _draw_rule(img, side >= 2, pos, max(1, round(w_f * k)), colour, span, look.rule_slope)

    if mask is not None:
        alpha = mask if look.ink_alpha == 1.0 else mask * look.ink_alpha
        fx.blend(img, alpha, look.ink, cx0 + tx, cy0 + ty)
    elif rng.random() < 0.12:
        _speck(rng, img, look.ink, (cx0, cy0, cx1, cy1), k)
    if empty and rng.random() < 0.05:
        # A stray rule fragment inside the crop (a misaligned grid).
        vertical = bool(rng.random() < 0.5)
        pos = int(rng.integers(0, width if vertical else height))
        spec = look.rules[2 if vertical else 0] or (1.0, fx.tint(rng, (60, 160), 5))
        a = _u(rng, 0.0, 0.5)
        _draw_rule(img, vertical, pos, max(1, round(k)), spec[1], (a, a + 0.5), 0.0)

    if k > 1.01 or k < 0.99:
        size = (max(3, round(width / k)), max(3, round(height / k)))
        interp = cv2.INTER_AREA if k > 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, size, interpolation=interp)
    if look.blur > 0:
        img = fx.gaussian_blur(img, look.blur)
    if look.noise > 0:
        fx.add_noise(rng, img, look.noise)
    out = fx.to_uint8(img)
    if look.invert:
        out = 255 - out
    if look.jpeg:
        out = fx.jpeg(out, look.jpeg)
    return out


def _draw_rule(
    img: np.ndarray,
    vertical: bool,
    pos: int,
    width: int,
    colour: np.ndarray,
    span: tuple[float, float],
    slope: float,
) -> None:
    """A rule of ``width`` centred on ``pos``, over ``span`` of the crop's length."""
    h, w = img.shape[:2]
    length = h if vertical else w
    a, b = round(span[0] * length), round(min(1.0, span[1]) * length)
    start = pos - width // 2
    if abs(slope) * length < 0.5:
        if vertical:
            img[a:b, max(0, start) : max(0, start + width)] = colour
        else:
            img[max(0, start) : max(0, start + width), a:b] = colour
        return
    # A rule slightly off the axis (scanned paper): anti-aliased line.
    m = np.zeros((h, w), np.uint8)
    shift = slope * length
    c = pos - 0.5 + (width % 2) * 0.5
    if vertical:
        p0, p1 = (c - shift / 2, a), (c + shift / 2, b)
    else:
        p0, p1 = (a, c - shift / 2), (b, c + shift / 2)
    s = 4  # cv2's sub-pixel shift bits
    cv2.line(
        m,
        (round(p0[0] * 16), round(p0[1] * 16)),
        (round(p1[0] * 16), round(p1[1] * 16)),
        255,
        width,
        cv2.LINE_AA,
        s,
    )
    fx.blend(img, m.astype(np.float32) * (1.0 / 255.0), colour)


def _speck(
    rng: np.random.Generator,
    img: np.ndarray,
    ink: np.ndarray,
    cell: tuple[int, int, int, int],
    k: float,
) -> None:
    """A dust speck or pen dot somewhere in the cell, a pixel or two across."""
    x0, y0, x1, y1 = cell
    h, w = img.shape[:2]
    x = int(rng.integers(max(0, x0), max(max(0, x0) + 1, min(w, x1))))
    y = int(rng.integers(max(0, y0), max(max(0, y0) + 1, min(h, y1))))
    r = max(1, round(_u(rng, 0.5, 1.5) * k))
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (x, y), r // 2 if r > 1 else 0, 255, -1, cv2.LINE_AA)
    fx.blend(img, m.astype(np.float32) * (1.0 / 255.0) * _u(rng, 0.5, 1.0), ink)
