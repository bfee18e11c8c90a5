"""Evidence maps: the fast OpenCV forms agree with their plain definitions."""

from __future__ import annotations

import cv2
import numpy as np

from gridreader.grid.ink import _channel_max, box_outlines, colour_steps, measure_ink
from gridreader.preprocess import to_gray
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


def test_box_outlines_match_their_definition() -> None:
    # A hollow box, a thick ring, a filled square, a narrow bar and noise.
    mask = np.zeros((60, 120), np.uint8)
    cv2.rectangle(mask, (2, 2), (30, 20), 1, 1)
    cv2.rectangle(mask, (40, 2), (70, 30), 1, 5)
    mask[40:55, 5:25] = 1
    mask[35:58, 80:83] = 1
    rng = np.random.default_rng(5)
    mask[40:60, 90:120] = rng.random((20, 30)) < 0.5
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    got = box_outlines(labels, stats)
    for i in range(1, stats.shape[0]):
        x, y, w, h, area = stats[i]
        ys, xs = np.nonzero(labels == i)
        on_border = (xs <= x + 1) | (xs >= x + w - 2) | (ys <= y + 1) | (ys >= y + h - 2)
        expected = w >= 0.6 * h and h >= 6 and on_border.sum() / area > 0.85
        assert got[i] == expected, i
    assert got[labels[2, 2]] and not got[labels[45, 10]] and not got[labels[40, 81]]
