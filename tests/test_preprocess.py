"""The one crop-preprocessing function, ``prepare_crop``, on crops drawn by the test."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from gridreader.imaging import components, quantile_u8, to_gray, unwrap_badge
from gridreader.preprocess import (
    INPUT_SIZE,
    _joined_components,
    dequantise,
    prepare_batch,
    prepare_crop,
    quantise,
)

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def cell(
    text: str,
    size: tuple[int, int] = (64, 40),
    px: int = 24,
    ink: tuple[int, int, int] = (20, 20, 20),
    paper: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """An RGB cell ``size`` (w, h) with ``text`` centred."""
    if not FONT.is_file():
        pytest.fail(f"{FONT} is missing: install fonts-dejavu-core (make sysdeps-test)")
    img = Image.new("RGB", size, paper)
    if text:
        d = ImageDraw.Draw(img)
        d.text((size[0] / 2, size[1] / 2), text, ink, ImageFont.truetype(str(FONT), px), "mm")
    return np.asarray(img).copy()


def with_rules(crop: np.ndarray, colour: int = 0, width: int = 1) -> np.ndarray:
    out = crop.copy()
    out[:width] = out[-width:] = colour
    out[:, :width] = out[:, -width:] = colour
    return out


def ink_runs(columns: np.ndarray) -> int:
    """How many separate runs of inked columns."""
    padded = np.concatenate([[False], columns, [False]])
    return int(np.count_nonzero(padded[1:] & ~padded[:-1]))


def test_output_shape_range_and_blank_cells() -> None:
    x = prepare_crop(cell("27"))
    assert x.shape == INPUT_SIZE and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() == pytest.approx(1.0)
    assert not prepare_crop(cell("")).any()
    assert not prepare_crop(np.zeros((2, 40, 3), np.uint8)).any()  # too small to hold text
    # Noise far below text contrast is no ink.
    rng = np.random.default_rng(0)
    noisy = np.clip(220 + rng.normal(0, 3, (40, 64, 3)), 0, 255).astype(np.uint8)
    assert not prepare_crop(noisy).any()


def test_polarity_and_colour_are_removed() -> None:
    dark_on_light = prepare_crop(cell("35"))
    light_on_dark = prepare_crop(cell("35", ink=(240, 240, 240), paper=(25, 25, 30)))
    white_on_red = prepare_crop(cell("35", ink=(255, 255, 255), paper=(200, 30, 30)))
    for other in (light_on_dark, white_on_red):
        assert np.abs(other - dark_on_light).mean() < 0.03


def badge(
    text: str, fill: tuple[int, int, int], round_: bool = False, small_bold: bool = False
) -> np.ndarray:
    """A 90x60 white cell holding a filled pill (or circle) with ``text`` in
    white, as framework CSS draws number badges; ``small_bold``: a 22x16 pill
    of bold 12 px digits, which fill much of it (a page zoomed out)."""
    img = Image.new("RGB", (90, 60), (255, 255, 255))
    d = ImageDraw.Draw(img)
    if small_bold:
        d.rounded_rectangle((34, 22, 56, 38), radius=8, fill=fill)
        font = ImageFont.truetype(str(FONT.with_name("DejaVuSans-Bold.ttf")), 12)
    else:
        box = (32, 17, 58, 43) if round_ else (24, 18, 66, 42)
        d.rounded_rectangle(box, radius=13, fill=fill)
        font = ImageFont.truetype(str(FONT), 14)
    d.text((45, 30), text, (255, 255, 255), font, "mm")
    return np.asarray(img).copy()


@pytest.mark.parametrize("fill", [(220, 53, 69), (13, 110, 253), (33, 37, 41), (25, 135, 84)])
def test_a_badge_is_read_as_its_digits_not_as_a_blob(fill: tuple[int, int, int]) -> None:
    # The oracle is the same number as plain text: a badge must prepare like
    # it, not like the solid oval the pill is against the white cell (a "0").
    bold = FONT.with_name("DejaVuSans-Bold.ttf")
    for text, round_ in (("35", False), ("7", True), ("12", False)):
        plain = prepare_crop(cell(text, px=14))
        inside = prepare_crop(badge(text, fill, round_))
        blob = prepare_crop(badge("", fill, round_))
        assert np.abs(inside - plain).mean() < 0.06, (text, fill)
        assert np.abs(inside - blob).mean() > 0.25, (text, fill)
    for text in ("28", "36"):
        img = Image.new("RGB", (40, 24), (255, 255, 255))
        ImageDraw.Draw(img).text((20, 12), text, (0, 0, 0), ImageFont.truetype(str(bold), 12), "mm")
        plain = prepare_crop(np.asarray(img).copy())
        inside = prepare_crop(badge(text, fill, small_bold=True))
        blob = prepare_crop(badge("", fill, small_bold=True))
        # 12 px bold on a colour anti-aliases differently: a looser match.
        assert np.abs(inside - plain).mean() < 0.1, (text, fill)
        assert np.abs(inside - blob).mean() > 0.25, (text, fill)


@pytest.mark.parametrize("text", ["0", "10", "8", "28", "30"])
def test_bold_and_round_glyphs_are_not_badges(text: str) -> None:
    # Solid, round glyphs look most like a badge: their counters must stay
    # holes. The oracle: the middle of a "0" or "8" prepared crop is dark,
    # and the output still spans the glyphs' whole width.
    bold = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    img = Image.new("RGB", (40, 28), (255, 255, 255))
    ImageDraw.Draw(img).text((20, 14), text, (0, 0, 0), ImageFont.truetype(str(bold), 20), "mm")
    x = prepare_crop(np.asarray(img).copy())
    cols = np.flatnonzero(x.max(axis=0) > 0.5)
    h, w = INPUT_SIZE
    assert cols.size and (cols[-1] - cols[0]) > 0.5 * w * min(1, len(text) / 2)
    last = x[:, cols[-1] - (cols[-1] - cols[0]) // (2 * len(text))]
    # Down the middle of the last glyph: ink, counter (dark), ink.
    assert last[h // 2 - 2 : h // 2 + 3].min() < 0.3


def test_a_number_in_a_roomy_cell_is_ink() -> None:
    # A 14 px "32" in an 86x300 px cell is under half a percent of its pixels,
    # where the contrast used to be measured, so the cell came out blank.
    roomy = prepare_crop(cell("32", size=(300, 86), px=14, ink=(88, 88, 88)))
    tight = prepare_crop(cell("32", size=(40, 24), px=14, ink=(88, 88, 88)))
    assert np.abs(roomy - tight).mean() < 0.05
    # Paper grain in a roomy cell is still no ink.
    rng = np.random.default_rng(1)
    grain = np.clip(200 + rng.normal(0, 8, (86, 300, 3)), 0, 255).astype(np.uint8)
    assert not prepare_crop(grain).any()


@pytest.mark.parametrize(
    ("text", "size", "px", "ink"),
    [
        # A thin "1" in a roomy cell of a theme with big padding: about 15
        # strong pixels, which the 24 once asked for were not.
        ("1", (80, 83), 12, (33, 37, 41)),
        ("7", (80, 83), 12, (33, 37, 41)),
        # Small light grey digits in a wide cell (a muted theme, scaled down).
        ("8", (141, 25), 7, (185, 185, 185)),
        ("4", (141, 25), 7, (185, 185, 185)),
        ("1", (141, 25), 7, (185, 185, 185)),
    ],
)
def test_a_thin_or_light_number_in_a_roomy_cell_is_ink(
    text: str, size: tuple[int, int], px: int, ink: tuple[int, int, int]
) -> None:
    roomy = prepare_crop(cell(text, size=size, px=px, ink=ink))
    tight = prepare_crop(cell(text, size=(24, 18), px=px, ink=ink))
    assert roomy.max() > 0.5
    # Once found, the number fills the input as it does from a tight cell.
    assert np.corrcoef(roomy.ravel(), tight.ravel())[0, 1] > 0.8


def test_specks_and_grain_in_a_roomy_cell_are_no_ink() -> None:
    # A dot or a speck of dust, however dark, is no number (too small a mark).
    for shape in ((25, 141), (83, 80)):
        dot = np.full(shape, 255, np.uint8)
        cv2.circle(dot, (shape[1] // 2, shape[0] // 2), 1, 40, -1)
        assert not prepare_crop(dot).any(), shape
    # Paper grain with a few darker grains: the flat-ground allowance for
    # faint screen text does not apply to it.
    rng = np.random.default_rng(3)
    grain = np.clip(200 + rng.normal(0, 6, (83, 80)), 0, 255).astype(np.uint8)
    grain[rng.integers(0, 83, 6), rng.integers(0, 80, 6)] = 150
    assert not prepare_crop(grain).any()


def test_a_faint_rule_does_not_outweigh_a_small_number_in_a_wide_cell() -> None:
    # A 518 px wide table cell with a 14 px number and the light row rule
    # along its top: the rule, too faint to be erased with the edges, was
    # the crop's largest component and the digits fell under a share of it.
    plain = cell("36", size=(518, 47), px=13, ink=(59, 67, 81))
    ruled = plain.copy()
    ruled[:2] = 221
    want, got = prepare_crop(plain), prepare_crop(ruled)
    assert want.any()
    # The rule still sets a stronger contrast (bolder strokes); the digits
    # fill the same box.
    assert np.corrcoef(want.ravel(), got.ravel())[0, 1] > 0.9


def test_a_single_thin_digit_in_a_big_pill_is_read_from_inside() -> None:
    # A "1" is under 2% of a big pill's area; its height marks it as a digit.
    img = Image.new("RGB", (146, 80), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((30, 7, 102, 73), radius=4, fill=(0, 120, 231))
    d.text((66, 40), "1", (255, 255, 255), ImageFont.truetype(str(FONT), 26), "mm")
    gray = to_gray(np.asarray(img).copy())
    inside = unwrap_badge(gray)
    assert inside is not gray and inside.shape == (67, 73)
    plain = prepare_crop(cell("1", px=26))
    assert np.abs(prepare_crop(inside) - plain).mean() < 0.06
    # A solid pill with a speck of noise in it is still no badge with a number.
    blank = Image.new("RGB", (146, 80), (255, 255, 255))
    ImageDraw.Draw(blank).rounded_rectangle((30, 7, 102, 73), radius=4, fill=(0, 120, 231))
    speckled = to_gray(np.asarray(blank).copy())
    speckled[38:41, 60:63] = 255
    assert unwrap_badge(speckled) is speckled


@pytest.mark.parametrize(
    ("text", "size", "box", "fill"),
    [
        # Left-aligned badges, the grid's column edge along their left side.
        ("13", (145, 82), (-6, 2, 100, 80), (0, 120, 231)),
        ("3", (145, 82), (-6, 2, 100, 80), (0, 120, 231)),
        # Badges as wide as their column, the ground above and below them.
        ("34", (40, 66), (-6, 12, 45, 54), (52, 58, 64)),
    ],
)
def test_a_badge_over_most_of_its_cell_is_read_from_inside(
    text: str, size: tuple[int, int], box: tuple[int, int, int, int], fill: tuple[int, int, int]
) -> None:
    # The badge, cut by the crop's edges, is most of the crop and its colour
    # the median; the white ground beside it is what differs.
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle(box, radius=6, fill=fill)
    d.text(
        ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
        text,
        (255, 255, 255),
        ImageFont.truetype(str(FONT), 22),
        "mm",
    )
    plain = prepare_crop(cell(text, px=22))
    got = prepare_crop(np.asarray(img).copy())
    assert np.abs(got - plain).mean() < 0.06


def test_a_thick_ruled_frame_is_no_ground_around_a_badge() -> None:
    # A scanned cell: paper inside a thick dark frame that a stroke touches.
    # The frame is a broad share of a small crop, but the paper inside it
    # reaches no edge: the cell is read as it is, not as a badge.
    img = Image.new("L", (69, 69), 235)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 68, 68), outline=60, width=6)
    d.line((14, 20, 10, 60), fill=40, width=5)
    d.text((44, 38), "2", 40, ImageFont.truetype(str(FONT), 36), "mm")
    gray = np.asarray(img).copy()
    assert unwrap_badge(gray) is gray


@pytest.mark.parametrize("text", ["1", "4", "34"])
def test_a_narrow_boxed_number_is_read_from_inside(text: str) -> None:
    # A keyboard-key or label style box around one digit is taller than
    # wide, like a glyph; it fills its box square-cornered, which no glyph does.
    img = Image.new("RGB", (104, 79), (255, 255, 255))
    d = ImageDraw.Draw(img)
    w = 22 if len(text) == 1 else 30
    d.rounded_rectangle((8, 22, 8 + w, 56), radius=4, fill=(53, 60, 73))
    d.text((8 + w / 2, 39), text, (255, 255, 255), ImageFont.truetype(str(FONT), 13), "mm")
    plain = prepare_crop(cell(text, px=13))
    boxed = prepare_crop(np.asarray(img).copy())
    assert np.abs(boxed - plain).mean() < 0.06
    # An oval as narrow (a bold "0", a handwritten loop) is still a glyph.
    oval = Image.new("RGB", (104, 79), (255, 255, 255))
    ImageDraw.Draw(oval).ellipse((8, 22, 8 + w, 56), fill=(53, 60, 73))
    assert prepare_crop(np.asarray(oval).copy()).max() > 0.5
    gray = to_gray(np.asarray(oval).copy())
    assert unwrap_badge(gray) is gray


def test_the_curled_end_of_a_sketchy_border_is_no_ink() -> None:
    # A hand-drawn theme's cell outline ends in a short flat stroke near the
    # top corner, clear of the cell's sides: it used to stretch the ink box
    # and squash the digits into its bottom half.
    plain = prepare_crop(cell("31", size=(52, 43), px=18))
    curled = cell("31", size=(52, 43), px=18)
    curled[3:5, 30:44] = 40
    assert np.abs(prepare_crop(curled) - plain).mean() < 0.02
    # A "7" keeps its bar: it is joined to the stroke.
    seven = prepare_crop(cell("7", size=(52, 43), px=28))
    assert seven[: INPUT_SIZE[0] // 3].max() > 0.5


def test_ruling_along_the_edges_is_erased() -> None:
    plain = prepare_crop(cell("8"))
    for colour, width in ((0, 1), (0, 2), (150, 1)):
        ruled = prepare_crop(with_rules(cell("8"), colour, width))
        assert np.abs(ruled - plain).mean() < 0.02, (colour, width)
    assert not prepare_crop(with_rules(cell(""), 0, 2)).any()


def test_a_three_pixel_rule_in_a_small_cell_is_erased() -> None:
    # A 22 px scan cell whose top rule is 3 px of gray: once grown for drift
    # it covers five rows, and it used to pass for the bar of a glyph. Joined
    # to the side rules, it is not a lone fragment either.
    plain = prepare_crop(cell("0", size=(34, 22), px=16, paper=(235, 235, 235)))
    ruled = cell("0", size=(34, 22), px=16, paper=(235, 235, 235))
    ruled[:3] = 95
    ruled[:, :2] = ruled[:, -2:] = 90
    assert np.abs(prepare_crop(ruled) - plain).mean() < 0.02


def test_rule_stubs_entering_from_a_side_are_dropped() -> None:
    # A skewed cut: the rule above the cell runs along the top edge for half
    # the width and leaves the crop there; another runs down the right edge.
    plain = prepare_crop(cell("18"))
    stubbed = cell("18")
    stubbed[1:3, :30] = 90
    stubbed[15:, -2:] = 90
    assert np.abs(prepare_crop(stubbed) - plain).mean() < 0.02


def test_a_one_against_the_side_is_kept() -> None:
    # Thin, upright and touching the left edge, but not reaching the top or
    # bottom: a digit, not a rule.
    crop = cell("", size=(40, 40))
    crop[8:32, 0:3] = 20
    assert (prepare_crop(crop) > 0.5).sum() > 50


def test_size_and_position_are_removed() -> None:
    small = prepare_crop(cell("14", size=(40, 24), px=12)) > 0.3
    big = prepare_crop(cell("14", size=(160, 100), px=60)) > 0.3
    left = prepare_crop(cell("14", size=(160, 100), px=60)[:, :110]) > 0.3
    # Stroke widths differ with the font size; where the ink is does not.
    for other in (small, left):
        assert (other & big).sum() / (other | big).sum() > 0.45
    for x in (small, big):
        rows = np.flatnonzero(x.any(axis=1))
        assert rows[-1] - rows[0] + 1 >= 0.7 * INPUT_SIZE[0]  # scaled to fill the height


def test_a_one_broken_into_pieces_is_kept() -> None:
    # A "16" whose "1" is a pencil stroke that broke up at the ink threshold:
    # each piece alone is far smaller than the "6".
    crop = cell("6", size=(70, 60), px=40)
    crop[10:50, 16:19] = 120
    crop[16::6, 16:19] = 255  # one-pixel breaks every 6 px
    with_one = prepare_crop(crop).max(axis=0) > 0.3
    six_alone = prepare_crop(cell("6", size=(70, 60), px=40)).max(axis=0) > 0.3
    # The "1" is kept: a second run of ink columns, left of the "6".
    assert ink_runs(six_alone) == 1
    assert ink_runs(with_one) == 2


def test_joined_components_match_opencv_when_nothing_joins() -> None:
    mask = np.zeros((30, 40), np.uint8)
    mask[2:10, 3:8] = 1
    mask[15:25, 20:22] = 1
    mask[5:7, 30:38] = 1
    n, labels, stats = _joined_components(mask)
    n0, labels0, stats0, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    assert n == n0 == 4
    np.testing.assert_array_equal(labels, labels0)
    np.testing.assert_array_equal(stats, stats0)


def test_joined_components_group_pieces_a_pixel_apart() -> None:
    mask = np.zeros((30, 40), np.uint8)
    mask[2:8, 10:12] = 1
    mask[9:15, 10:12] = 1  # one empty row below the first piece
    mask[20:26, 30:33] = 1  # far away
    n, labels, stats = _joined_components(mask)
    assert n == 3
    a = labels[2, 10]
    assert labels[14, 10] == a and labels[20, 30] not in (0, a)
    assert stats[a].tolist() == [10, 2, 2, 13, 24]  # left, top, width, height, area
    assert (labels > 0).sum() == mask.sum()  # only the mask's own pixels are labelled


def test_prepare_batch_stacks_prepare_crop() -> None:
    crops = [cell("3"), cell(""), cell("36", ink=(250, 250, 250), paper=(10, 10, 10))]
    batch = prepare_batch(crops)
    assert batch.shape == (3, *INPUT_SIZE, 1)
    for i, c in enumerate(crops):
        # Rounded to the uint8 steps the crops travel in, and nothing else.
        np.testing.assert_array_equal(quantise(batch[i, :, :, 0]), quantise(prepare_crop(c)))
        assert np.abs(batch[i, :, :, 0] - prepare_crop(c)).max() <= 0.5 / 255 + 1e-7
    assert np.array_equal(dequantise(quantise(batch)), batch)


def test_quantise_round_trip() -> None:
    batch = prepare_batch([cell("3"), cell("17"), cell("")])
    q = quantise(batch)
    assert q.dtype == np.uint8 and q.shape == batch.shape
    back = dequantise(q)
    assert back.dtype == np.float32
    assert np.abs(back - batch).max() <= 0.5 / 255 + 1e-7
    assert np.array_equal(quantise(back), q)
    assert dequantise(batch) is batch  # float input passes through untouched


def quantile_by_counting(img: np.ndarray, q: float) -> int:
    """Reference: try every value in turn, counting the pixels that do not exceed it."""
    for v in range(256):
        if np.count_nonzero(img <= v) >= q * img.size:
            return v
    raise ValueError(f"q={q} is above 1")


def test_quantile_u8_hand_worked() -> None:
    img = np.array([[10, 20, 30, 40, 50], [60, 70, 80, 90, 100]], np.uint8)
    # Ten pixels: the q quantile is the smallest value with >= 10q pixels at or below it.
    cases = {0.0: 0, 0.1: 10, 0.15: 20, 0.5: 50, 0.51: 60, 0.9: 90, 1.0: 100}
    for q, want in cases.items():
        assert quantile_u8(img, q) == want, q
    flat = np.full((1000, 1000), 7, np.uint8)  # a page: the thresholded-count path
    flat[0, :10] = 200
    assert [quantile_u8(flat, q) for q in (0.0, 0.5, 0.99999, 0.999995, 1.0)] == [0, 7, 7, 200, 200]


@pytest.mark.parametrize("seed", range(9))
def test_quantile_u8_matches_counting(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Crop-sized and bigger (histogram) and pages (thresholded counts) alike.
    shape = [(37, 53), (120, 160), (300, 400)][seed % 3]
    img = rng.integers(0, rng.integers(1, 256), size=shape, dtype=np.uint8)
    img[: seed * 3] = 255  # a block of saturated ink, as on a dark rule
    for q in (0.0, 0.1, 0.5, 0.9, 0.995, 0.997, 1.0):
        assert quantile_u8(img, q) == quantile_by_counting(img, q), q


@pytest.mark.parametrize("density", [0.05, 0.3, 0.6])
def test_components_are_opencvs_default_components(density: float) -> None:
    rng = np.random.default_rng(int(density * 100))
    for shape in [(1, 1), (7, 300), (200, 3), (123, 211)]:
        mask = (rng.random(shape) < density).astype(np.uint8)
        got = components(mask)
        want = cv2.connectedComponentsWithStats(mask, connectivity=8)
        assert got[0] == want[0]
        for a, b in zip(got[1:], want[1:], strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_small_badge_speckled_by_jpeg_is_still_a_badge() -> None:
    # A 20 px circle of white 9 px digits, saved as a quality-60 JPEG (a
    # screenshot stored small): its ground is speckled by a fifth of the
    # digits' contrast, and was taken for hand-drawn ink, so the network
    # read the circle as a "0". On a rendered page's flat ground the fill
    # may be speckled by a fifth of the digits' contrast. Noise of that size
    # in a plain solid circle is still no number.
    font = ImageFont.truetype(str(FONT), 9)
    for fill in ((118, 118, 118), (23, 121, 186)):
        img = Image.new("RGB", (56, 44), (255, 255, 255))
        d = ImageDraw.Draw(img)
        d.ellipse((18, 12, 38, 32), fill=fill)
        d.text((28, 22), "25", (255, 255, 255), font, "mm")
        ok, jpg = cv2.imencode(".jpg", np.asarray(img)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
        assert ok
        gray = to_gray(cv2.imdecode(jpg, cv2.IMREAD_COLOR)[:, :, ::-1].copy())
        inside = unwrap_badge(gray)
        assert inside is not gray and inside.shape[0] <= 22, fill
        # On grainy paper (a photograph: a heavy hand-drawn "0" is such a
        # blob) the fill is held to the strict flatness, and it is no badge.
        grain = np.random.default_rng(1).normal(0, 4, gray.shape)
        paper = np.where(gray > 200, np.clip(gray + grain, 0, 255), gray).astype(np.uint8)
        assert unwrap_badge(paper) is paper, fill
    rng = np.random.default_rng(5)
    solid = np.full((44, 56), 255, np.uint8)
    cv2.circle(solid, (28, 22), 10, 118, -1)
    noisy = np.clip(solid + (solid < 200) * rng.normal(0, 12, solid.shape), 0, 255)
    noisy = noisy.astype(np.uint8)
    assert unwrap_badge(noisy) is noisy
