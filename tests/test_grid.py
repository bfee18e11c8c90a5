"""Grid finding on synthetic tables of known geometry, and on golden images.

Every case is drawn by the test with exact cell boxes: either by
``gridreader.synth.tables.render_table`` (fixed seeds and a fixed font, so the
pictures do not depend on the fonts a machine has) or by :func:`draw_table` below,
which gives exact control over rule width and colour. A case passes when
``find_grid`` gets the shape right and every truth cell's detected box overlaps it
with IoU >= 0.5.

Cases known to fail are kept as strict xfails: they document what the grid
finder cannot do yet, and turn into failures the day they start passing, so the
mark is removed with the fix.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from gridreader.errors import NoTableError
from gridreader.grid import cell_boxes, find_grid
from gridreader.imageio import load_image
from gridreader.synth.tables import render_table
from gridreader.types import Box

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
MNIST = Path(__file__).resolve().parent.parent / "data" / "mnist" / "mnist-digits.npz"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
MIN_IOU = 0.5

Table = tuple[np.ndarray, list[list[Box]]]


# --- helpers ---------------------------------------------------------------------------


def iou(a: Box | list[int], b: Box | list[int]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def grid_problems(image: np.ndarray, truth: list[list[Box]] | list[list[list[int]]]) -> list[str]:
    """What is wrong with the grid found in ``image`` (empty when it is right)."""
    rows, cols = len(truth), len(truth[0])
    try:
        grid = find_grid(image)
    except NoTableError as e:
        return [f"no table found ({e})"]
    if grid.shape != (rows, cols):
        return [f"shape {grid.shape}, expected {(rows, cols)}"]
    found = {(c.row, c.col): c.box for c in cell_boxes(grid)}
    bad = []
    for r in range(rows):
        for c in range(cols):
            v = iou(found[(r, c)], truth[r][c])
            if v < MIN_IOU:
                bad.append(
                    f"cell ({r},{c}) IoU {v:.2f}: found {found[(r, c)]}, truth {truth[r][c]}"
                )
    return bad


def table_values(
    seed: int, rows: int, cols: int, top: int = 36, empty: float = 0.1
) -> list[list[int | None]]:
    """A seeded table of ints ``0..top`` with about ``empty`` of the cells empty."""
    rng = np.random.default_rng(1000 + seed)
    out: list[list[int | None]] = []
    for _ in range(rows):
        row: list[int | None] = [
            None if rng.random() < empty else int(rng.integers(0, top + 1)) for _ in range(cols)
        ]
        out.append(row)
    # Keep at least one number per row and column so "empty" is a choice of the case.
    for r in range(rows):
        if all(v is None for v in out[r]):
            out[r][r % cols] = r
    for c in range(cols):
        if all(out[r][c] is None for r in range(rows)):
            out[c % rows][c] = c
    return out


def draw_table(
    values: list[list[int | None]],
    *,
    cell: tuple[int, int] = (60, 30),
    px: int = 16,
    line_width: int = 1,
    rule: tuple[int, int, int] = (0, 0, 0),
    rules: str = "all",
    page: tuple[int, int, int] = (255, 255, 255),
    ink: tuple[int, int, int] = (20, 20, 20),
    margin: int = 24,
    font: Path = FONT,
) -> Table:
    """A table drawn exactly: rules centred on the cell edges, numbers centred.

    Args:
        rules: ``all`` (every edge), ``inner`` (no outer border), ``h`` (horizontal
            rules only) or ``none``.
    """
    rows, cols = len(values), len(values[0])
    cw, ch = cell
    w, h = cols * cw + 2 * margin, rows * ch + 2 * margin
    img = Image.new("RGB", (w, h), page)
    d = ImageDraw.Draw(img)
    xs = [margin + c * cw for c in range(cols + 1)]
    ys = [margin + r * ch for r in range(rows + 1)]
    lw, lo = line_width, line_width // 2
    if rules != "none":
        hy = ys if rules in ("all", "h") else ys[1:-1]
        for y in hy:
            d.rectangle((xs[0] - lo, y - lo, xs[-1] - lo + lw - 1, y - lo + lw - 1), fill=rule)
    if rules in ("all", "inner"):
        vx = xs if rules == "all" else xs[1:-1]
        for x in vx:
            d.rectangle((x - lo, ys[0] - lo, x - lo + lw - 1, ys[-1] - lo + lw - 1), fill=rule)
    f = ImageFont.truetype(str(font), px)
    for r, row in enumerate(values):
        for c, v in enumerate(row):
            if v is not None:
                d.text(((xs[c] + xs[c + 1]) / 2, (ys[r] + ys[r + 1]) / 2), str(v), ink, f, "mm")
    boxes = [[(xs[c], ys[r], xs[c + 1], ys[r + 1]) for c in range(cols)] for r in range(rows)]
    return np.asarray(img), boxes


@functools.lru_cache(maxsize=1)
def _mnist_test() -> tuple[np.ndarray, np.ndarray]:
    from gridreader.synth.mnist import load_mnist

    if not MNIST.is_file():
        pytest.fail(f"{MNIST} is missing: it ships with the project (data/mnist/)")
    data = load_mnist(MNIST)
    return data.x_test, data.y_test


def synth(values: list[list[int | None]], style: str, **kw: object) -> Table:
    """``render_table`` with the fixed font; MNIST handwriting for ``scan``."""
    if style == "scan" and "mnist" not in kw:
        kw["mnist"] = _mnist_test()
    kw.setdefault("font", FONT)
    t = render_table(values, style, **kw)  # type: ignore[arg-type]
    return t.image, t.boxes


# --- the cases -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One synthetic table; ``fails`` says why it is a known failure (None: must pass)."""

    id: str
    make: Callable[[], Table]
    fails: str | None = None


def _empty_row(values: list[list[int | None]], r: int) -> list[list[int | None]]:
    out = [list(row) for row in values]
    out[r] = [None] * len(out[r])
    return out


V = table_values
CASES: list[Case] = [
    # ruled, drawn exactly
    Case("ruled-1px-black", lambda: draw_table(V(1, 5, 6))),
    Case("ruled-3px-black", lambda: draw_table(V(2, 6, 8), cell=(56, 32), line_width=3)),
    Case("ruled-1px-blue", lambda: draw_table(V(3, 4, 7), rule=(40, 90, 200))),
    Case(
        "ruled-2px-red-cream",
        lambda: draw_table(V(4, 7, 5), line_width=2, rule=(200, 40, 40), page=(250, 244, 228)),
    ),
    Case("ruled-3px-grey", lambda: draw_table(V(5, 5, 5), line_width=3, rule=(150, 150, 150))),
    Case("ruled-1px-faint", lambda: draw_table(V(6, 8, 6), rule=(205, 205, 205))),
    Case("ruled-1px-inner-only", lambda: draw_table(V(7, 6, 7), rules="inner")),
    Case("ruled-1px-sparse", lambda: draw_table(V(8, 6, 6, empty=0.45))),
    Case("ruled-1px-empty-inner-row", lambda: draw_table(_empty_row(V(9, 6, 6), 2))),
    Case(
        "ruled-3px-empty-inner-row",
        lambda: draw_table(_empty_row(V(10, 7, 5), 3), cell=(64, 34), line_width=3),
    ),
    Case("ruled-1px-4digit", lambda: draw_table(V(11, 5, 5, top=9999), cell=(80, 30))),
    # ruled, from render_table
    Case("synth-ruled-1px-s0", lambda: synth(V(12, 6, 7), "ruled", seed=0, line_width=1)),
    Case("synth-ruled-3px-s1", lambda: synth(V(13, 5, 9), "ruled", seed=1, line_width=3)),
    Case("synth-ruled-2px-s2", lambda: synth(V(14, 9, 5), "ruled", seed=2, line_width=2)),
    Case(
        "synth-ruled-empty-inner-row",
        lambda: synth(_empty_row(V(15, 6, 6), 3), "ruled", seed=3, line_width=1),
    ),
    # roulette: red / black / green pockets, white gaps or none
    Case("roulette-gap2-s0", lambda: synth(V(16, 5, 8, empty=0), "roulette", seed=0, line_width=2)),
    Case("roulette-gap4-s1", lambda: synth(V(17, 4, 6, empty=0), "roulette", seed=1, line_width=4)),
    Case(
        "roulette-gap1-s2", lambda: synth(V(18, 6, 12, empty=0), "roulette", seed=2, line_width=1)
    ),
    Case(
        "roulette-nogap-s3", lambda: synth(V(19, 5, 7, empty=0), "roulette", seed=3, line_width=0)
    ),
    Case(
        "roulette-nogap-s4", lambda: synth(V(20, 4, 9, empty=0), "roulette", seed=4, line_width=0)
    ),
    Case("roulette-gap3-empty", lambda: synth(V(21, 5, 6, empty=0.2), "roulette", seed=5)),
    # dark (30, 30, 30) gaps: every seed below 12 that draws them, 2 px gaps, 5x8
    *(
        Case(
            f"roulette-darkgap-s{s}",
            functools.partial(synth, V(70 + s, 5, 8, empty=0), "roulette", seed=s, line_width=2),
        )
        for s in (2, 3, 4, 10)
    ),
    # zebra: tinted alternate rows, horizontal rules at most
    Case("zebra-s0", lambda: synth(V(22, 6, 6), "zebra", seed=0)),
    Case("zebra-s1", lambda: synth(V(23, 8, 5), "zebra", seed=1)),
    Case("zebra-s2", lambda: synth(V(24, 5, 9), "zebra", seed=2)),
    Case("zebra-s3", lambda: synth(V(25, 10, 4), "zebra", seed=3)),
    Case("zebra-hrules-drawn", lambda: draw_table(V(26, 6, 6), rules="h", rule=(200, 200, 200))),
    # borderless: whitespace only
    Case("borderless-s0", lambda: synth(V(27, 6, 6), "borderless", seed=0)),
    Case("borderless-left-s1", lambda: synth(V(28, 5, 8), "borderless", seed=1, align="left")),
    Case("borderless-right-s2", lambda: synth(V(29, 7, 5), "borderless", seed=2, align="right")),
    Case("borderless-drawn", lambda: draw_table(V(30, 5, 7), rules="none", cell=(56, 30))),
    # dark theme
    Case("dark-s0", lambda: synth(V(31, 6, 6), "dark", seed=0)),
    Case("dark-s1", lambda: synth(V(32, 5, 8), "dark", seed=1)),
    Case("dark-s2", lambda: synth(V(33, 8, 5), "dark", seed=2)),
    Case(
        "dark-drawn-1px",
        lambda: draw_table(V(34, 5, 6), rule=(70, 74, 84), page=(24, 26, 32), ink=(230, 230, 230)),
    ),
    # skewed scans with MNIST handwriting
    Case("scan-plus3", lambda: synth(V(35, 6, 6), "scan", seed=0, angle=3.0)),
    Case("scan-minus3", lambda: synth(V(36, 5, 7), "scan", seed=1, angle=-3.0)),
    Case("scan-plus4", lambda: synth(V(37, 6, 5), "scan", seed=2, angle=4.0)),
    Case("scan-minus4", lambda: synth(V(38, 7, 6), "scan", seed=3, angle=-4.0)),
    Case("scan-plus5", lambda: synth(V(39, 5, 6), "scan", seed=4, angle=5.0)),
    Case("scan-minus5", lambda: synth(V(40, 6, 7), "scan", seed=5, angle=-5.0)),
    # tiny screen text (15x8 px cells, 6 px digits)
    Case("tiny-ruled", lambda: synth(V(41, 8, 10), "ruled", seed=0, tiny=True)),
    Case("tiny-zebra", lambda: synth(V(42, 10, 8), "zebra", seed=1, tiny=True)),
    Case("tiny-borderless", lambda: synth(V(43, 8, 8), "borderless", seed=2, tiny=True)),
    Case("tiny-dark", lambda: synth(V(44, 8, 8), "dark", seed=3, tiny=True)),
    Case("tiny-drawn-8px-ruled", lambda: draw_table(V(60, 8, 9), cell=(18, 11), px=8, margin=12)),
    Case(
        "tiny-drawn-8px-dark",
        lambda: draw_table(
            V(61, 8, 9),
            cell=(18, 11),
            px=8,
            margin=12,
            rule=(70, 74, 84),
            page=(24, 26, 32),
            ink=(230, 230, 230),
        ),
    ),
    Case(
        "tiny-drawn-9px-borderless",
        lambda: draw_table(V(62, 8, 9), cell=(22, 14), px=9, margin=12, rules="none"),
    ),
    Case(
        "tiny-drawn-10px-zebra-rules",
        lambda: draw_table(V(63, 8, 9), cell=(24, 14), px=10, margin=12, rules="h"),
    ),
    # huge text: 80 px digits
    Case("huge-ruled-80px", lambda: draw_table(V(45, 4, 5), cell=(200, 130), px=80, line_width=3)),
    Case(
        "huge-borderless-80px",
        lambda: draw_table(V(46, 3, 4), cell=(200, 130), px=80, rules="none"),
    ),
    Case("huge-synth-ruled", lambda: synth(V(47, 4, 4), "ruled", seed=4, cell=(200, 125))),
    # a full page: title, paragraph with numbers, footer
    Case("page-ruled", lambda: synth(V(48, 6, 6), "ruled", seed=0, page=True, line_width=1)),
    Case("page-zebra", lambda: synth(V(49, 7, 5), "zebra", seed=1, page=True)),
    Case("page-borderless", lambda: synth(V(50, 5, 6), "borderless", seed=2, page=True)),
    Case("page-dark", lambda: synth(V(51, 6, 7), "dark", seed=3, page=True)),
    Case("page-roulette", lambda: synth(V(52, 4, 8, empty=0), "roulette", seed=4, page=True)),
    # from a sweep of render_table's own random layouts (30 seeds x 6 styles: 172 right)
    Case("sweep-zebra-s14", lambda: synth(V(514, 4, 10), "zebra", seed=14)),
    Case("sweep-borderless-s23", lambda: synth(V(523, 3, 9), "borderless", seed=23)),
    Case("sweep-scan-s28", lambda: synth(V(528, 8, 10), "scan", seed=28)),
    Case("sweep-ruled-s14", lambda: synth(V(514, 4, 10), "ruled", seed=14)),
    # compression
    Case("jpeg-ruled-q60", lambda: synth(V(53, 6, 6), "ruled", seed=5, jpeg_quality=60)),
    Case("jpeg-borderless-q70", lambda: synth(V(54, 5, 7), "borderless", seed=6, jpeg_quality=70)),
]

# Cases the grid finder gets wrong today, and what it finds instead.
KNOWN_FAILURES: dict[str, str] = {
    "tiny-ruled": "15x8 px ruled cells: inner rule segments between crossings taken for glyphs",
    "tiny-dark": "6 px digits, dark theme: a 1x4 table found instead of 8x8",
}


def _param(case: Case) -> object:
    reason = case.fails or KNOWN_FAILURES.get(case.id)
    # raises=AssertionError: a wrong grid is the expected failure; a crash is not.
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


@functools.cache
def build(case_id: str) -> Table:
    """The case's picture and truth boxes (each drawn once per session)."""
    return next(c for c in CASES if c.id == case_id).make()


@pytest.fixture(autouse=True, scope="module")
def _font_present() -> None:
    if not FONT.is_file():
        pytest.fail(f"{FONT} is missing: install fonts-dejavu-core (make sysdeps-test)")


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_grid_on_synthetic_table(case: Case) -> None:
    image, truth = build(case.id)
    problems = grid_problems(image, truth)
    assert not problems, f"{case.id}: " + "; ".join(problems[:5])


# --- golden images ---------------------------------------------------------------------


def _golden_items() -> list[str]:
    index = GOLDEN / "index.json"
    if not index.is_file():
        return []
    return sorted(json.loads(index.read_text(encoding="utf-8")))


def test_golden_set_is_present() -> None:
    items = _golden_items()
    assert len(items) >= 4, f"{GOLDEN}/index.json should list the golden images"
    for name in items:
        assert (GOLDEN / name).is_file(), f"golden image {name} is missing"


@pytest.mark.parametrize("name", _golden_items())
def test_grid_on_golden_image(name: str) -> None:
    meta = json.loads((GOLDEN / "index.json").read_text(encoding="utf-8"))[name]
    image = load_image(GOLDEN / name)
    assert (len(meta["boxes"]), len(meta["boxes"][0])) == (meta["rows"], meta["cols"])
    problems = grid_problems(image, meta["boxes"])
    assert not problems, f"{name}: " + "; ".join(problems[:5])


# --- big pages: the search runs in a window around the table ----------------------------


def on_big_page(table: Table, size: tuple[int, int], at: tuple[int, int], seed: int) -> Table:
    """Paste a table onto a big page under a title and a paragraph of numbers."""
    img, boxes = table
    w, h = size
    page = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(page)
    f = ImageFont.truetype(str(FONT), 18)
    rng = np.random.default_rng(seed)
    d.text((40, 30), "Results of the evening", (10, 10, 10), ImageFont.truetype(str(FONT), 30))
    for i in range(4):
        words = " ".join(str(int(v)) for v in rng.integers(0, 37, 18))
        d.text((40, 90 + 28 * i), f"Draws {words}", (40, 40, 40), f)
    page.paste(Image.fromarray(img), at)
    ox, oy = at
    moved = [[(x0 + ox, y0 + oy, x1 + ox, y1 + oy) for x0, y0, x1, y1 in row] for row in boxes]
    return np.asarray(page), moved


BIG_PAGES = {
    "ruled": lambda: on_big_page(draw_table(V(80, 6, 7)), (2200, 1500), (900, 600), 80),
    "zebra": lambda: on_big_page(synth(V(81, 7, 5), "zebra", seed=1), (1800, 1400), (300, 700), 81),
    "roulette": lambda: on_big_page(
        synth(V(82, 4, 9, empty=0), "roulette", seed=4), (2000, 1200), (1200, 900), 82
    ),
    "borderless-drawn": lambda: on_big_page(
        draw_table(V(83, 5, 6), rules="none", cell=(56, 30)), (1600, 1200), (700, 500), 83
    ),
}


@pytest.mark.parametrize("style", sorted(BIG_PAGES))
def test_big_page_is_searched_in_a_window(style: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import gridreader.grid.find as grid_mod

    used: list[bool] = []
    real = grid_mod._find_in_window

    def spy(*args: object) -> object:
        found = real(*args)  # type: ignore[arg-type]
        used.append(found is not None)
        return found

    monkeypatch.setattr(grid_mod, "_find_in_window", spy)
    image, truth = BIG_PAGES[style]()
    assert grid_problems(image, truth) == []
    if style.startswith("borderless"):
        # Whitespace alone cannot be told from paragraphs on the small probe.
        assert used == [], "a borderless table should be searched on the whole page"
    else:
        assert used == [True], "the table should have been found in a window around it"


def test_window_cutting_through_the_table_is_refused() -> None:
    import gridreader.grid.find as grid_mod

    image, truth = on_big_page(draw_table(V(84, 8, 6)), (1800, 1300), (600, 500), 84)
    # The window ends three rows into the table: the grid reaches its cut side.
    x0, y0, x1 = truth[0][0][0] - 200, truth[0][0][1] - 200, truth[0][-1][2] + 200
    assert grid_mod._find_in_window(image, (x0, y0, x1, truth[3][0][3]), 1.0) is None
    # With room around the whole table it is found, at the right place.
    y1 = truth[-1][0][3] + 200
    grid = grid_mod._find_in_window(image, (x0, y0, x1, y1), 1.0)
    assert grid is not None and grid.shape == (8, 6)
    assert (
        abs(grid.row_edges[0] - truth[0][0][1]) <= 2
        and abs(grid.col_edges[0] - truth[0][0][0]) <= 2
    )


def test_gray_pictures_are_analysed_as_one_channel() -> None:
    from gridreader.imaging import squeeze_gray

    rng = np.random.default_rng(5)
    colour = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    assert squeeze_gray(colour) is colour
    gray = np.repeat(colour[:, :, :1], 3, axis=2)
    one = squeeze_gray(gray)
    assert one.ndim == 2 and np.array_equal(one, gray[:, :, 0])
    # A single coloured pixel off the quick sample still makes it colour.
    tinted = gray.copy()
    tinted[7, 9, 2] ^= 1
    assert squeeze_gray(tinted) is tinted


@pytest.mark.parametrize("case_id", ["scan-plus3", "ruled-3px-grey", "zebra-s0"])
def test_one_channel_gives_the_grid_three_would(
    case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridreader.grid import find

    img = next(c for c in CASES if c.id == case_id).make()[0]
    gray = np.repeat(img.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    fast = find_grid(gray)
    monkeypatch.setattr(find, "squeeze_gray", lambda image: image)
    slow = find_grid(gray)
    assert (fast.row_edges, fast.col_edges) == (slow.row_edges, slow.col_edges)
    assert np.array_equal(fast.to_image, slow.to_image)


@pytest.mark.parametrize(
    ("pitch", "col_w", "px"), [(2.5, 90, 18), (3.5, 90, 18), (4.5, 90, 18), (6.0, 380, 14)]
)
def test_rows_far_apart_without_rules_are_one_table(pitch: float, col_w: int, px: int) -> None:
    # Generous CSS padding puts borderless rows several text heights apart:
    # each row is then a block of ink of its own, and the table is only the
    # lattice the numbers form (it was read as its first row alone). In the
    # roomiest cells a number is under 1% of the cell's pixels and must still
    # count as a glyph, not a blank cell (the grid was refused).
    rows, cols = 9, 5
    row_h = round(pitch * px)
    img = Image.new("RGB", (cols * col_w + 60, rows * row_h + 60), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), px)
    rng = np.random.default_rng(int(pitch * 10))
    for r in range(rows):
        for c in range(cols):
            xy = (30 + c * col_w + 8, 30 + r * row_h + row_h // 2)
            d.text(xy, str(int(rng.integers(0, 37))), (90, 90, 90), font, "lm")
    grid = find_grid(np.asarray(img))
    assert grid.shape == (rows, cols)


def test_rows_grown_beyond_the_structure_stay_on_their_text() -> None:
    # Only the two tinted rows are structure (42 px); the eight plain rows
    # below are 44 px. Grown at the tinted rows' pitch they drifted 2 px a
    # row, until the last row's box lost its number (read as empty).
    cols, px = 6, 16
    heights = [42, 42] + [44] * 8
    tops = np.cumsum([30, *heights])
    img = Image.new("RGB", (cols * 70 + 60, int(tops[-1]) + 30), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), px)
    for r, (top, bottom) in enumerate(itertools.pairwise(tops)):
        if r < 2:
            d.rectangle((30, int(top), 30 + cols * 70, int(bottom) - 1), fill=(230, 80, 60))
        for c in range(cols):
            xy = (30 + c * 70 + 35, (top + bottom) / 2)
            d.text(xy, str((r * 5 + c * 3) % 37), (20, 20, 20), font, "mm")
    grid = find_grid(np.asarray(img))
    assert grid.shape == (len(heights), cols)
    assert max(abs(a - b) for a, b in zip(grid.row_edges, tops, strict=True)) <= 3


def test_numbers_in_pills_are_one_column_each() -> None:
    # A pill's straight top and bottom edges are taken for rules; its round
    # ends stay as two arcs beside every number, taller than the digits and
    # twice as many. The table's digit height must still be the digits'.
    rows, cols, px = 8, 6, 14
    img = Image.new("RGB", (cols * 80 + 40, rows * 46 + 40), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT.with_name("DejaVuSans-Bold.ttf")), px)
    fills = [(13, 110, 253), (220, 53, 69), (25, 135, 84), (33, 37, 41)]
    for r in range(rows):
        for c in range(cols):
            cx, cy = 20 + c * 80 + 40, 20 + r * 46 + 23
            text = str((r * 7 + c * 11) % 37)
            half = 9 + 5 * len(text)
            d.rounded_rectangle(
                (cx - half, cy - 10, cx + half, cy + 10), radius=10, fill=fills[(r + c) % 4]
            )
            d.text((cx, cy), text, (255, 255, 255), font, "mm")
    assert find_grid(np.asarray(img)).shape == (rows, cols)


def test_letter_spaced_numbers_under_a_header_line() -> None:
    # CSS letter-spacing parts the two digits of a number by a third of their
    # height: a column of such numbers must stay one column. The header line
    # of words above the borderless body is no table of its own.
    rows, cols, px = 7, 8, 18
    img = Image.new("RGB", (cols * 110 + 40, rows * 50 + 90), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), px)
    for c in range(cols):
        d.text((20 + c * 110, 30), ("SPIN", "HIGH", "LOW", "ODD")[c % 4], (90, 90, 90), font)
    for r in range(rows):
        for c in range(cols):
            x = 20 + c * 110
            for ch in str((r * 13 + c * 7) % 37):
                d.text((x, 90 + r * 50), ch, (90, 90, 90), font)
                x += int(d.textlength(ch, font=font)) + 4
    assert find_grid(np.asarray(img)).shape == (rows, cols)
