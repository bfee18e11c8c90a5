"""Refusal: pictures without a number table get "no table found", real tables never do.

The 24 pictures: 8 photographs (scikit-image samples, public domain / CC0, see
``tests/data/photos/LICENSE.md``), 8 random-noise pictures and 8 dithered ones
(Floyd-Steinberg and ordered dithering of smooth random fields), all seeded. When
written, all 24 were refused.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from test_grid_cli import photo_like

from gridreader.cli import main
from gridreader.errors import NoTableError
from gridreader.grid import find_grid
from gridreader.grid.refuse import cell_evidence, check_cells
from gridreader.imageio import is_image_path, load_image

DATA = Path(__file__).resolve().parent / "data" / "photos"
BENCH = Path(__file__).resolve().parent.parent / "data" / "bench" / "dev"
SIZES = ((300, 400), (480, 640), (600, 800), (256, 256))


def noise_picture(k: int) -> np.ndarray:
    """Uniform colour, uniform gray, gaussian colour or binary noise."""
    rng = np.random.default_rng(100 + k)
    h, w = SIZES[k % 4]
    kind = k % 4
    if kind == 0:
        return rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    if kind == 1:
        return np.repeat(rng.integers(0, 256, (h, w, 1)), 3, 2).astype(np.uint8)
    if kind == 2:
        return np.clip(rng.normal(128, 60, (h, w, 3)), 0, 255).astype(np.uint8)
    return np.repeat((rng.random((h, w, 1)) < 0.5).astype(np.uint8) * 255, 3, 2)


def dithered_picture(k: int) -> np.ndarray:
    """A smooth random field, dithered to black and white."""
    rng = np.random.default_rng(200 + k)
    h, w = SIZES[k % 4]
    scale = (4, 8, 16, 2)[k % 4]
    coarse = rng.random((h // scale + 1, w // scale + 1)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    if k % 2 == 0:
        im = Image.fromarray(np.clip(field * 255, 0, 255).astype(np.uint8)).convert("1")
        bw = np.asarray(im, np.uint8) * 255
    else:
        bayer = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) / 16
        bw = ((field > np.tile(bayer, (h // 4 + 1, w // 4 + 1))[:h, :w]) * 255).astype(np.uint8)
    return np.repeat(bw[:, :, None], 3, 2)


def pictures() -> dict[str, np.ndarray]:
    out = {f"noise-{k}": noise_picture(k) for k in range(8)}
    out.update({f"dither-{k}": dithered_picture(k) for k in range(8)})
    out.update({p.stem: load_image(p) for p in sorted(DATA.glob("*.jpg"))})
    return out


def test_pictures_without_a_table_are_refused() -> None:
    pics = pictures()
    assert len(pics) == 24
    found = {}
    for name, img in pics.items():
        with contextlib.suppress(NoTableError):
            found[name] = find_grid(img).shape
    # The target is 23 of 24; all 24 were refused when written.
    assert len(found) <= 1, f"read as tables: {found}"


@pytest.mark.parametrize("name", ["astronaut", "grass", "gravel"])
def test_a_photo_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = DATA / f"{name}.jpg"
    code = main(["grid", "--json", str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and str(path) in err and "no table" in err


def test_no_dev_bench_table_is_refused() -> None:
    images = sorted(
        p for d in ("screens", "scans") for p in (BENCH / d).iterdir() if is_image_path(p)
    )
    assert len(images) == 70
    refused = []
    for p in images:
        try:
            find_grid(load_image(p))
        except NoTableError as e:
            refused.append(f"{p.name}: {e}")
    assert not refused


def _cells(
    values: list[list[str]], cell: int = 40, size: int = 22
) -> tuple[np.ndarray, list[int], list[int]]:
    rows, cols = len(values), len(values[0])
    img = np.full((rows * cell, cols * cell), 255, np.uint8)
    for r, row in enumerate(values):
        for c, text in enumerate(row):
            if text:
                cv2.putText(
                    img,
                    text,
                    (c * cell + 8, r * cell + 28),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    size / 30,
                    0,
                    2,
                )
    return img, [r * cell for r in range(rows + 1)], [c * cell for c in range(cols + 1)]


def test_cells_of_numbers_are_glyphs_and_noise_is_crowded() -> None:
    img, ys, xs = _cells([["1", "22", ""], ["7", "", "36"]])
    ev = cell_evidence(img, ys, xs)
    assert (ev.cells, ev.blank, ev.glyphs) == (6, 2, 4)
    check_cells(img, ys, xs)
    noise = np.random.default_rng(0).integers(0, 256, img.shape).astype(np.uint8)
    assert cell_evidence(noise, ys, xs).messy == 6
    with pytest.raises(NoTableError, match="crowded"):
        check_cells(noise, ys, xs)


def test_blank_cells_and_marks_of_every_size_are_refused() -> None:
    img, ys, xs = _cells([["", "", ""], ["", "5", ""]])
    with pytest.raises(NoTableError, match="1 of 6 cells hold a glyph"):
        check_cells(img, ys, xs)
    mixed = np.full((80, 160), 255, np.uint8)
    # (A mark under a tenth of its cell is a speck, no glyph: the smallest is 10 px of 80.)
    for k, h in enumerate((10, 18, 34, 52)):
        cv2.rectangle(mixed, (k * 40 + 15, 40 - h // 2), (k * 40 + 22, 40 + h // 2), 0, -1)
    with pytest.raises(NoTableError, match="not one type size"):
        check_cells(mixed, [0, 80], [0, 40, 80, 120, 160])


def test_specks_and_dashes_are_no_glyphs_and_tiny_marks_no_print() -> None:
    # Thin dashes (a thick line's broken edge in a bent photo) and specks
    # under a tenth of the cell leave it blank, not a glyph of odd height.
    img, ys, xs = _cells([["1", "22", ""], ["7", "", "36"]])
    cv2.line(img, (88, 20), (103, 20), 0, 1)
    cv2.rectangle(img, (48, 58), (59, 60), 0, -1)
    ev = cell_evidence(img, ys, xs)
    assert (ev.blank, ev.glyphs) == (2, 4)
    check_cells(img, ys, xs)
    # Marks 2 px tall in every cell are no print, however regular.
    tiny = np.full((4 * 12, 5 * 20), 255, np.uint8)
    for r in range(4):
        for c in range(5):
            cv2.rectangle(tiny, (c * 20 + 8, r * 12 + 5), (c * 20 + 10, r * 12 + 6), 0, -1)
    ys, xs = [r * 12 for r in range(5)], [c * 20 for c in range(6)]
    with pytest.raises(NoTableError, match="too small"):
        check_cells(tiny, ys, xs)


def test_a_single_line_must_be_mostly_numbers() -> None:
    # Two numbers in a row of ten: a strip of texture with two number-like
    # patches, not a table. Six of ten: a table of one row.
    sparse, ys, xs = _cells([["3", "", "", "", "17", "", "", "", "", ""]])
    with pytest.raises(NoTableError, match="2 of 10 cells hold a glyph"):
        check_cells(sparse, ys, xs)
    dense, ys, xs = _cells([["3", "", "25", "8", "17", "", "", "30", "1", ""]])
    check_cells(dense, ys, xs)
    # Two rows of the same sparse pattern: a lattice vouches for them.
    two, ys, xs = _cells([["3", "", "", "", "17"], ["", "", "9", "", ""]])
    check_cells(two, ys, xs)


def test_cells_filled_by_badges_hold_glyphs() -> None:
    # A pill that fills most of its cell is one blob touching the inner
    # box's sides; the number inside it is what the cell holds.
    values = [["7", "23", "0", "36"], ["14", "5", "31", "9"], ["26", "3", "12", "29"]]
    img = np.full((3 * 40, 4 * 60), 255, np.uint8)
    for r, row in enumerate(values):
        for c, text in enumerate(row):
            x, y = c * 60, r * 40
            cv2.rectangle(img, (x + 8, y + 7), (x + 52, y + 33), 90, -1)
            cv2.putText(img, text, (x + 18, y + 27), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 255, 2)
    ys, xs = [r * 40 for r in range(4)], [c * 60 for c in range(5)]
    assert cell_evidence(img, ys, xs).glyphs == 12
    check_cells(img, ys, xs)


def _faint(values: list[list[str]], cell: int = 40) -> tuple[np.ndarray, list[int], list[int]]:
    """Thin grey print on paper, softened the way a dim photo softens it: the
    strokes' cores lie under 48 levels (the fixed ink step) off the paper."""
    img, ys, xs = _cells(values, cell)
    thin = np.full_like(img, 255)
    for r, row in enumerate(values):
        for c, text in enumerate(row):
            if text:
                org = (c * cell + 8, r * cell + 28)
                cv2.putText(thin, text, org, cv2.FONT_HERSHEY_SIMPLEX, 22 / 30, 0, 1)
    faint = 250 - (255 - thin.astype(np.float32)) * (60 / 255)
    return cv2.GaussianBlur(faint, (0, 0), 1.0).round().astype(np.uint8), ys, xs


def test_faint_thin_print_is_whole_glyphs() -> None:
    # At a fixed ink step of 48 levels none of these strokes counted as ink
    # (a little less faint, only their darkest specks: a few marks of random
    # heights, "not one type size"), and the table was refused; cut at half
    # the cell's own contrast, each number is whole.
    values = [["1", "22", "", "7"], ["", "36", "4", "19"], ["8", "", "30", "5"]]
    img, ys, xs = _faint(values)
    ev = cell_evidence(img, ys, xs)
    assert (ev.blank, ev.glyphs) == (3, 9)
    heights = np.asarray(ev.heights)
    assert heights.std() / heights.mean() < 0.1
    check_cells(img, ys, xs)


def test_patches_lighter_and_darker_than_their_cell_are_refused() -> None:
    # A number's strokes all lie on one side of its ground; a photograph's
    # patches of one size lie on both (a dark and a light blob per cell).
    img = np.full((3 * 40, 4 * 40), 128, np.uint8)
    for r in range(3):
        for c in range(4):
            x, y = c * 40, r * 40
            cv2.rectangle(img, (x + 12, y + 10), (x + 17, y + 29), 40, -1)
            cv2.rectangle(img, (x + 22, y + 10), (x + 27, y + 29), 220, -1)
    ys, xs = [r * 40 for r in range(4)], [c * 40 for c in range(5)]
    ev = cell_evidence(img, ys, xs)
    assert ev.glyphs == 12 and max(ev.purity) < 0.2
    with pytest.raises(NoTableError, match="lighter and darker"):
        check_cells(img, ys, xs)
    # The same blobs all dark: print of one type size.
    img[img == 220] = 40
    check_cells(img, ys, xs)


@pytest.mark.parametrize("first", [6, 20])
def test_photo_like_pictures_beyond_the_tuned_seeds_are_refused(first: int) -> None:
    # Seeds 0-5 are the ones the refusal rules were checked on while they
    # were written; 6-33 were read as tables 8 times before ink purity.
    found = {}
    for seed in range(first, first + 14):
        with contextlib.suppress(NoTableError):
            found[seed] = find_grid(photo_like(seed)).shape
    assert not found, f"read as tables: {found}"


_PROSE = (
    "The wheel was spun 294 times today and 34 came up most often.",
    "Results are updated every 5 minutes; see table 12 for the week.",
    "Since 304 March the table has paid out 2 times.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",
)


@pytest.mark.parametrize("lines", [1, 3, 8])
def test_a_page_of_prose_is_refused(lines: int) -> None:
    # Sentences with numbers in them, under a heading: no table. (Each used
    # to be read as a one-row "table" of word pieces.)
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    img = Image.new("RGB", (900, 320), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.text((20, 20), "Results", (20, 20, 20), ImageFont.truetype(str(font), 32))
    for i in range(lines):
        d.text((20, 80 + 26 * i), _PROSE[i % 4], (40, 40, 40), ImageFont.truetype(str(font), 16))
    with pytest.raises(NoTableError, match="no table found"):
        find_grid(np.asarray(img))


def test_the_photo_licences_are_noted() -> None:
    note = (DATA / "LICENSE.md").read_text(encoding="utf-8")
    photos = sorted(DATA.glob("*.jpg"))
    assert len(photos) == 8
    for p in photos:
        assert p.name in note
