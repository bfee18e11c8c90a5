"""Glyph groups ("tokens"): the numbers, and the words that are not numbers.

A token is a run of glyphs closer to each other than a space. What every
number table shares is its numbers, so the lattice search and the scoring of
candidate grids look at tokens, not at the style: a number 0-36 is one or two
glyphs no wider than about twice its height; words (headers, captions, card
titles, prose) have more glyphs or are wider.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from gridreader.grid.separators import runs
from gridreader.imaging import components


@dataclass(frozen=True)
class Token:
    """One glyph group, in work pixels.

    Attributes:
        box: ``(x0, y0, x1, y1)``, ends exclusive.
        glyphs: how many glyphs side by side (runs of inked columns; the
            inside of a thick stroke is told from a gap between glyphs only
            where the count decides whether the token is a word).
        number: shaped like a number of one or two digits.
        word: shaped like a printed word (more glyphs, or wider, than a
            number; no taller than a line of print). Tokens that are
            neither (handwriting, big titles, specks) count for no side.
        weight: stroke width in px (see :func:`stroke_weight`); bold
            print is about 1.3-1.8 times regular.
    """

    box: tuple[int, int, int, int]
    glyphs: int
    number: bool
    word: bool = False
    weight: float = 0.0

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0


# Digits of one number sit closer than a space (about 0.3 em, 0.4 of the digit
# height); a little less than that joins them and keeps words apart.
_JOIN = 0.3
# A number 0-36 is one or two glyphs; a word of three or more letters shows
# three or more unless its letters touch, and is then wider than two printed
# digits could be (at most about 1.3 em wide against 0.7 em high).
# Handwritten numbers are wide, but seldom three glyphs and that wide at once.
# Whatever its glyph count, a token 2.4 text heights wide is no printed number
# (two digits are under 1.9): a header word whose letters touch ("Even" in a
# tight face) was a number at 3.0 and became a table row; the dev bench's
# handwriting and the photo set's tallies read the same either way.
_WORD_GLYPHS = 3
_WORD_GLYPHS_MIN_WIDTH = 1.2
_WORD_WIDTH = 2.4
# A gap between two runs of outline columns that is ink over this share of
# the token's height throughout is the inside of a stroke.
_STEM = 0.8
# More glyph groups than a 2800 x 2000 page of small print holds.
_MAX_TOKENS = 6000


def find_tokens(glyphs: np.ndarray, text_h: float, gray: np.ndarray) -> list[Token]:
    """Group the glyph mask into tokens and tell numbers from words.

    Args:
        glyphs: uint8 0/1 mask of glyph outlines (:attr:`InkMaps.glyphs`).
        text_h: typical glyph height in px.
        gray: the picture's luminance, in the same frame.
    """
    gap = max(2, round(_JOIN * text_h))
    # Grown rightwards only: a component's right end reaches the next glyph
    # when the gap is under ``gap`` px; the grown part is taken off again below.
    joined = cv2.dilate(glyphs, np.ones((1, gap), np.uint8), anchor=(0, 0))
    _, labels, stats, _ = components(joined)
    # Growing sideways leaves heights as they were: what is too short or too
    # tall to be a number or a word (specks, rule stubs, big titles) is
    # dropped before the per-token work, which noise would make slow.
    h_all = stats[:, cv2.CC_STAT_HEIGHT]
    keep = np.flatnonzero((h_all >= 0.5 * text_h) & (h_all <= 1.6 * text_h))
    if keep.size > _MAX_TOKENS:
        # Texture or noise, not print: no token evidence (the structural
        # grid stands alone), and no seconds spent per picture.
        return []
    out = []
    for i in keep[keep > 0].tolist():
        x, y, w, h = (int(v) for v in stats[i, :4])
        piece = (labels[y : y + h, x : x + w] == i) & (glyphs[y : y + h, x : x + w] > 0)
        cols = piece.any(axis=0)
        inked = np.flatnonzero(cols)
        if inked.size == 0:
            continue
        x0, x1 = x + int(inked[0]), x + int(inked[-1]) + 1
        rows = np.flatnonzero(piece.any(axis=1))
        y0, y1 = y + int(rows[0]), y + int(rows[-1]) + 1
        tw, th = x1 - x0, y1 - y0
        count = len(runs(cols[inked[0] : inked[-1] + 1]))
        if count >= _WORD_GLYPHS and tw > _WORD_GLYPHS_MIN_WIDTH * text_h:
            # Only here can the insides of strokes make a number a word: the
            # extra threshold is spared on every other token.
            count = _glyph_count(cols[inked[0] : inked[-1] + 1], _ink_mask(gray, (x0, y0, x1, y1)))
        elif tw > _WORD_GLYPHS_MIN_WIDTH * text_h:
            # The outlines of letters a pixel apart touch, and a word of them
            # shows one run of outline columns; its print still shows the gaps.
            ink = _ink_mask(gray, (x0, y0, x1, y1))
            count = max(count, len(runs(np.asarray(ink.any(axis=0)))))
        wide = (count >= _WORD_GLYPHS and tw > _WORD_GLYPHS_MIN_WIDTH * text_h) or (
            tw > _WORD_WIDTH * text_h
        )
        number = not wide and 0.5 * text_h <= th <= 1.6 * text_h
        # Ascenders and descenders make a word at most ~1.3 digit heights tall.
        word = wide and 0.5 * text_h <= th <= 1.4 * text_h
        weight = stroke_weight(gray, (x0, y0, x1, y1))
        out.append(Token((x0, y0, x1, y1), count, number, word, weight))
    return out


def _glyph_count(cols: np.ndarray, ink: np.ndarray) -> int:
    """Glyphs side by side: runs of inked columns of the outline map.

    The outline map draws a thick stroke as its two edges: the inside of a
    "1" is a gap between two runs whose columns are all ink over
    :data:`_STEM` of the glyph's height. A gap between letters, even one
    blurred shut in small print (60% at most), or letters of bold print
    that touch in places, is not.
    """
    spans = runs(cols)
    full = ink.sum(axis=0) >= _STEM * ink.shape[0]
    return len(spans) - sum(1 for (_, a), (b, _) in itertools.pairwise(spans) if full[a:b].all())


def _ink_mask(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The print in ``box`` of ``gray`` as a 0/1 mask, either polarity: the
    side of an Otsu split that the ring of pixels just around the box (the
    ground) is mostly not on."""
    x0, y0, x1, y1 = box
    h, w = gray.shape
    a, b = max(0, y0 - 1), max(0, x0 - 1)
    patch = gray[a : min(h, y1 + 1), b : min(w, x1 + 1)]
    if patch.size == 0:
        return np.zeros((y1 - y0, x1 - x0), np.uint8)
    _, bright = cv2.threshold(patch, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ring = np.concatenate((bright[0], bright[-1], bright[:, 0], bright[:, -1]))
    ink = 1 - bright if 2 * int(ring.sum()) >= ring.size else bright
    return ink[y0 - a : y1 - a, x0 - b : x1 - b]


def stroke_weight(gray: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Stroke width in px of the print in ``box`` of ``gray``: its ink
    coverage over half its contour length.

    Coverage counts each pixel by how far it lies from the ground toward the
    print's darkest tenth, so anti-aliased edges weigh what they cover and
    a 1 px stroke weighs about 1, not the 2 a pixel mask gives it. The
    contours of the print's mask (counters included) run twice along every
    stroke whatever its width. An edge map would not do: it fills the small
    counters of an "8" and made a line of one-digit numbers look bold.
    """
    ink = _ink_mask(gray, box)
    x0, y0, x1, y1 = box
    patch = gray[y0:y1, x0:x1].astype(np.float32)
    on = ink > 0
    if patch.size == 0 or not on.any() or on.all():
        return 0.0
    ground = float(np.median(patch[~on]))
    values = patch[on]
    # The print's extreme tenth, toward whichever side it lies of the ground.
    full = float(np.percentile(values, 10 if values.mean() < ground else 90))
    if abs(full - ground) < 1.0:
        return 0.0
    cover = np.clip((patch - ground) / (full - ground), 0.0, 1.0)
    contours, _ = cv2.findContours(ink.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    length = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * float(cover.sum()) / max(length, 1.0)
