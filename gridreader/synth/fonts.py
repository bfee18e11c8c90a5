"""Finding digit-capable fonts, and fast digit rendering from cached glyph atlases."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

DIGITS = "0123456789"
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
_CHECK_PX = 32
# A codepoint no font maps: FreeType draws the font's missing-glyph (.notdef) for it.
_MISSING = "\uffff"

AnyFont = ImageFont.FreeTypeFont | ImageFont.ImageFont


def system_font_dirs() -> tuple[Path, ...]:
    """The folders searched when :func:`find_fonts` gets no ``dirs``."""
    home = Path(os.path.expanduser("~"))
    return (
        Path("/usr/share/fonts"),
        Path("/usr/local/share/fonts"),
        home / ".fonts",
        home / ".local" / "share" / "fonts",
    )


def find_fonts(
    dirs: Sequence[str | os.PathLike[str]] | None = None, exclude: Iterable[str] = ()
) -> list[Path]:
    """Font files under ``dirs`` that draw the digits 0-9 as ten distinct glyphs.

    Symbol, dingbat, emoji and CJK-only faces are dropped, and so are faces that
    repeat an already-found family and style (the same face packaged twice). The
    scan of each folder set is cached for the process.

    Args:
        dirs: folders to search recursively; the system font folders when ``None``.
        exclude: case-insensitive substrings; a font whose family name or file
            name contains one is left out (to hold out faces for testing).

    Returns:
        Sorted paths; empty when no usable font exists (then use
        :func:`load_font` with ``None``, Pillow's bundled face).
    """
    roots = tuple(str(Path(d).expanduser()) for d in (system_font_dirs() if dirs is None else dirs))
    needles = tuple(e.lower() for e in exclude if e)
    return [
        Path(path)
        for path, family in _scan_fonts(roots)
        if not any(n in family.lower() or n in Path(path).name.lower() for n in needles)
    ]


def font_family(path: Path | None) -> str:
    """The family name a font file declares (``"Pillow default"`` for ``None``)."""
    if path is None:
        return "Pillow default"
    font = load_font(path, _CHECK_PX)
    if isinstance(font, ImageFont.FreeTypeFont):
        return str(font.getname()[0] or path.stem)
    return path.stem


@functools.lru_cache(maxsize=16)
def _scan_fonts(roots: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    files: set[Path] = set()
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            continue
        for p in base.rglob("*"):
            if p.suffix.lower() in FONT_SUFFIXES and p.is_file():
                files.add(p.resolve())
    found: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for path in sorted(files):
        names = _digit_font_names(path)
        if names is None or names in seen:
            continue
        seen.add(names)
        found.append((str(path), names[0]))
    return tuple(found)


def _digit_font_names(path: Path) -> tuple[str, str] | None:
    """``(family, style)`` of a font that draws ten distinct digits, else ``None``."""
    try:
        font = ImageFont.truetype(str(path), _CHECK_PX)
        missing = render_glyph(font, _MISSING)
        digits = [render_glyph(font, ch) for ch in DIGITS]
    except (OSError, ValueError):
        return None
    if not looks_like_digits(digits, missing):
        return None
    family, style = font.getname()
    return (family or path.stem), (style or "")


def looks_like_digits(glyphs: Sequence[np.ndarray], missing: np.ndarray | None = None) -> bool:
    """Whether ten rendered glyphs (from :func:`render_glyph`) are the digits 0-9.

    They must all have ink, differ from each other and from the font's
    missing-glyph box, have about the same height, and most of them must look
    more like their own digit than like any other.
    """
    if len(glyphs) != len(DIGITS):
        return False
    if any(int(g.max()) < 128 for g in glyphs):
        return False
    if missing is not None and any(np.array_equal(g, missing) for g in glyphs):
        return False
    if len({g.tobytes() for g in glyphs}) < len(DIGITS):
        return False
    heights = [int(np.ptp(np.flatnonzero(g.max(axis=1) >= 128))) + 1 for g in glyphs]
    # Digits of a text face are all about the cap height; symbol faces vary wildly.
    if min(heights) < 0.4 * max(heights):
        return False
    # Dingbat faces map the digit codes to ten distinct symbols.
    scores = np.stack([_shape_vector(g) for g in glyphs]) @ _reference_shapes().T
    return int((scores.argmax(axis=1) == np.arange(len(DIGITS))).sum()) >= 3


@functools.lru_cache(maxsize=1)
def _reference_shapes() -> np.ndarray:
    ref = ImageFont.load_default(_CHECK_PX)
    return np.stack([_shape_vector(render_glyph(ref, ch)) for ch in DIGITS])


def _shape_vector(img: np.ndarray) -> np.ndarray:
    """A glyph's ink box scaled to 12x16, zero-mean, unit-norm."""
    ys, xs = np.nonzero(img >= 96)
    box = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    v = cv2.resize(box, (12, 16), interpolation=cv2.INTER_AREA).ravel()
    v -= v.mean()
    return v / (float(np.linalg.norm(v)) + 1e-6)


def render_glyph(font: AnyFont, ch: str) -> np.ndarray:
    """One character at the font's size on a black canvas, for the digit check."""
    img = Image.new("L", (3 * _CHECK_PX, 2 * _CHECK_PX))
    ImageDraw.Draw(img).text(
        (_CHECK_PX // 2, int(1.4 * _CHECK_PX)), ch, font=font, fill=255, anchor="ls"
    )
    return np.asarray(img)


@functools.lru_cache(maxsize=2048)
def load_font(path: Path | None, px: int) -> AnyFont:
    """A font at ``px`` pixels; ``None`` is Pillow's bundled (FreeType) face."""
    if path is None:
        return ImageFont.load_default(px)
    return ImageFont.truetype(str(path), px)


@dataclass(frozen=True, eq=False)
class GlyphAtlas:
    """The ten digits of one font at one pixel size, as alpha masks.

    Attributes:
        px: font size in pixels.
        glyphs: uint8 alpha per digit, cropped to the glyph's box.
        left: x of each glyph's box relative to the pen position.
        top: y of each glyph's box relative to the baseline (negative is above).
        advance: horizontal advance of each digit in pixels.
        cap: height of the tallest digit in pixels.
    """

    px: int
    glyphs: tuple[np.ndarray, ...]
    left: tuple[int, ...]
    top: tuple[int, ...]
    advance: tuple[float, ...]
    cap: int


@functools.lru_cache(maxsize=8192)
def glyph_atlas(path: Path | None, px: int) -> GlyphAtlas:
    """The cached :class:`GlyphAtlas` of a font at ``px`` pixels."""
    font = load_font(path, px)
    glyphs, left, top, advance = [], [], [], []
    for ch in DIGITS:
        glyph, (x0, y0) = _render_mask(font, ch)
        glyphs.append(glyph)
        left.append(x0)
        top.append(y0)
        advance.append(float(font.getlength(ch)))
    cap = max(-t for t in top)
    return GlyphAtlas(px, tuple(glyphs), tuple(left), tuple(top), tuple(advance), max(1, cap))


def _render_mask(font: AnyFont, ch: str) -> tuple[np.ndarray, tuple[int, int]]:
    """A glyph's uint8 mask and its top-left relative to pen and baseline."""
    if isinstance(font, ImageFont.FreeTypeFont):
        try:
            # One FreeType call instead of a bbox query plus a draw: atlas
            # building is the generator's main cold-start cost.
            core, (x0, y0) = font.getmask2(ch, mode="L", anchor="ls")
            return np.asarray(Image.Image()._new(core)), (int(x0), int(y0))
        except (AttributeError, TypeError):
            pass
    x0, y0, x1, y1 = (int(v) for v in font.getbbox(ch, anchor="ls"))
    img = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)))
    ImageDraw.Draw(img).text((-x0, -y0), ch, font=font, fill=255, anchor="ls")
    return np.asarray(img), (x0, y0)


def compose_number(atlas: GlyphAtlas, text: str, tracking: float = 0.0) -> np.ndarray:
    """Lay out a digit string from an atlas into one tight uint8 alpha mask.

    Args:
        atlas: the font and size to use.
        text: digits only.
        tracking: extra space between digits, as a fraction of the pixel size
            (negative tightens).
    """
    idx = [DIGITS.index(ch) for ch in text]
    pens, pen = [], 0.0
    for i in idx:
        pens.append(pen)
        pen += atlas.advance[i] + tracking * atlas.px
    xs = [round(p) + atlas.left[i] for p, i in zip(pens, idx, strict=True)]
    ys = [atlas.top[i] for i in idx]
    x0 = min(xs)
    y0 = min(ys)
    x1 = max(x + atlas.glyphs[i].shape[1] for x, i in zip(xs, idx, strict=True))
    y1 = max(y + atlas.glyphs[i].shape[0] for y, i in zip(ys, idx, strict=True))
    out = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for x, y, i in zip(xs, ys, idx, strict=True):
        g = atlas.glyphs[i]
        view = out[y - y0 : y - y0 + g.shape[0], x - x0 : x - x0 + g.shape[1]]
        np.maximum(view, g, out=view)
    return out
