"""Evidence maps: the fast OpenCV forms agree with their plain definitions."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from gridreader.grid.ink import _channel_max, box_outlines, colour_steps, measure_ink
from gridreader.imaging import to_gray
from gridreader.synth.tables import render_table


def test_channel_max_is_the_per_pixel_maximum() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert np.array_equal(_channel_max(img), img.max(axis=2))
    # A non-contiguous view (a column slice) gives the same as its copy.
    view = img[:, 5:40]
    assert np.array_equal(_channel_max(view), view.max(axis=2))
    gray = img[:, :, 0]
    assert _channel_max(gray) is gray


def test_colour_steps_finds_a_fill_edge_in_either_channel() -> None:
    img = np.full((40, 60, 3), 200, np.uint8)
    img[20:, :, 2] = 120  # only the third channel steps
    steps = colour_steps(img, horizontal=True)
    rows = np.flatnonzero(steps.any(axis=1))
    assert rows.size and rows.min() >= 17 and rows.max() <= 22
    assert steps[rows].all(axis=1).any()


def test_glyph_centres_are_those_of_the_glyph_mask() -> None:
    rng = np.random.default_rng(0)
    values: list[list[int | None]] = [[int(v) for v in rng.integers(0, 37, 6)] for _ in range(5)]
    img = render_table(values, style="ruled", seed=1).image
    maps = measure_ink(img, to_gray(img))
    _, _, stats, centres = cv2.connectedComponentsWithStats(maps.glyphs, connectivity=8)
    expected = centres[1:][stats[1:, cv2.CC_STAT_AREA] >= 4]
    assert len(expected) >= 30
    assert np.array_equal(_sorted_rows(maps.glyph_centres), _sorted_rows(expected))


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def test_box_outlines_hand_worked() -> None:
    """Each shape's answer is worked out by hand from what a box outline is: a
    component whose pixels nearly all lie on its own 2 px border band, at least
    about as wide as tall (so not a narrow "1") and at least 6 px tall."""
    mask = np.zeros((80, 200), np.uint8)
    shapes = {
        # name: (top-left pixel of the component, is it a box outline?)
        "hollow 1px box 29x19": ((2, 2), True),  # every pixel on the border
        "hollow 2px box 31x25": ((2, 40), True),  # still all within the 2 px band
        "5px ring 31x29": ((2, 80), False),  # 224 of 500 px on the band
        "filled square 20x15": ((40, 5), False),
        "narrow bar 3x23": ((35, 40), False),
        "hollow narrow 6x20, like a 1": ((40, 60), False),  # too narrow for its height
        "hollow flat box 20x5": ((40, 80), False),  # under 6 px tall
        "noise 30x20": ((45, 150), False),
    }
    for y0, y1, x0, x1, t in [(2, 21, 2, 31, 1), (2, 27, 40, 71, 2), (2, 31, 80, 111, 5)]:
        mask[y0:y1, x0:x1] = 1
        mask[y0 + t : y1 - t, x0 + t : x1 - t] = 0
    mask[40:55, 5:25] = 1
    mask[35:58, 40:43] = 1
    mask[40:60, 60:66] = 1
    mask[41:59, 61:65] = 0
    mask[40:45, 80:100] = 1
    mask[41:44, 81:99] = 0
    noise = np.random.default_rng(5).random((20, 30)) < 0.5
    noise[0] = True  # one connected component: a full top row joins the specks below it
    noise[:, 0] = True
    mask[45:65, 150:180] = noise
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    got = box_outlines(labels, stats)
    for name, ((y, x), want) in shapes.items():
        assert labels[y, x] > 0, name
        assert bool(got[labels[y, x]]) is want, name


@pytest.mark.parametrize(
    ("font", "px"),
    [("liberation/LiberationSerif-Regular.ttf", 16), ("dejavu/DejaVuSans.ttf", 13)],
)
def test_the_round_tops_of_two_digits_are_no_rule(font: str, px: int) -> None:
    # The tops of "2" and "8" side by side, taken with the pixel of wobble
    # allowed for jagged scanned rules, made a straight run as long as a
    # short rule's: cut from the outlines, "28" lost its top half and was no
    # number any more (a column lost on a never-seen page).
    path = Path("/usr/share/fonts/truetype") / font
    if not path.is_file():
        pytest.fail(f"{path} is missing: install fonts-liberation and fonts-dejavu-core")
    img = Image.new("RGB", (160, 60), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rectangle((10, 8, 150, 52), outline=(219, 219, 219))
    face = ImageFont.truetype(str(path), px)
    d.text((30, 30), "28", (54, 54, 54), face, "lm")
    d.text((90, 30), "13", (54, 54, 54), face, "lm")
    rgb = np.asarray(img).copy()
    gray = to_gray(rgb)
    maps = measure_ink(rgb, gray, 11.0)
    glyph_rows = np.flatnonzero(maps.glyphs[:, 25:60].any(axis=1))
    ink_rows = np.flatnonzero((gray[:, 25:60] < 200).any(axis=1))
    assert glyph_rows[-1] - glyph_rows[0] >= ink_rows[-1] - ink_rows[0] - 1
    # The table's own rules are still no glyph.
    assert not maps.glyphs[8].any() and not maps.glyphs[52].any()
    # A photographed picture keeps the cut with the wobble (no edge of it
    # is straight without): there the same runs still go.
    photo = measure_ink(rgb, gray, 11.0, photo=True)
    assert np.count_nonzero(photo.glyphs) < np.count_nonzero(maps.glyphs)
