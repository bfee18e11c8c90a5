"""Skew estimation: the angle that straightens a scan, and none for a screenshot."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gridreader.grid.rectify import estimate_skew
from gridreader.imaging import to_gray
from gridreader.synth.tables import render_table


def _values(seed: int) -> list[list[int | None]]:
    rng = np.random.default_rng(seed)
    return [
        [int(v) if rng.random() > 0.2 else None for v in rng.integers(0, 37, 6)] for _ in range(7)
    ]


def _turned(gray: np.ndarray, angle: float) -> np.ndarray:
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)


@pytest.mark.parametrize("angle", [-4.5, -2.0, -0.8, 1.2, 3.0, 6.0])
@pytest.mark.parametrize("style", ["ruled", "borderless"])
def test_skew_of_a_turned_table_is_found(angle: float, style: str) -> None:
    table = render_table(_values(int(10 * abs(angle))), style, seed=2, cell=(60, 34))
    gray = _turned(to_gray(table.image), angle)
    # The estimate undoes the turn (counter-clockwise positive, like OpenCV's).
    assert estimate_skew(gray) == pytest.approx(-angle, abs=0.25)


@pytest.mark.parametrize("tiny", [False, True])
@pytest.mark.parametrize("style", ["ruled", "zebra", "dark", "borderless"])
def test_a_straight_screenshot_is_left_straight(style: str, tiny: bool) -> None:
    table = render_table(_values(7), style, seed=4, tiny=tiny)
    assert estimate_skew(to_gray(table.image)) == 0.0
