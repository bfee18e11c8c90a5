"""Tests of the synthetic data package: MNIST loading, fonts, cell crops, tables."""

from __future__ import annotations

import gzip
import shutil
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ImageFont

from gridreader.classes import parse_classes
from gridreader.errors import DataError
from gridreader.preprocess import prepare_crop
from gridreader.synth import fonts as fontmod
from gridreader.synth.cells import CellSynth, upright_bars
from gridreader.synth.fonts import compose_number, find_fonts, glyph_atlas, looks_like_digits
from gridreader.synth.mnist import load_mnist
from gridreader.synth.tables import STYLES, TINY_CELL, render_table

CLASSES = parse_classes("0-36")


def fake_mnist(per_class: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like digits drawn with OpenCV's Hershey font: 28x28, white on black."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for d in range(10):
        for _ in range(per_class):
            img = np.zeros((28, 28), np.uint8)
            org = (7 + int(rng.integers(-1, 2)), 22 + int(rng.integers(-1, 2)))
            cv2.putText(img, str(d), org, cv2.FONT_HERSHEY_SIMPLEX, 0.75, 255, 2, cv2.LINE_AA)
            xs.append(img)
            ys.append(d)
    return np.stack(xs), np.array(ys, np.uint8)


# --- MNIST loading -----------------------------------------------------------


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def write_idx_set(folder: Path, x_tr, y_tr, x_te, y_te, gz: bool = True) -> None:
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", x_tr, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", y_tr, gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", x_te, gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", y_te, gz)


def write_csv(path: Path, x: np.ndarray, y: np.ndarray, header: bool) -> None:
    lines = []
    if header:
        lines.append(",".join(["label"] + [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)]))
    for img, label in zip(x, y, strict=True):
        lines.append(",".join([str(int(label))] + [str(int(v)) for v in img.ravel()]))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def small_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = fake_mnist(per_class=2)
    return x[:14], y[:14], x[14:], y[14:]


def assert_same(data, x_tr, y_tr, x_te, y_te) -> None:
    for got, want in ((data.x_train, x_tr), (data.y_train, y_tr), (data.x_test, x_te)):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(data.y_test, y_te)


def test_load_npz_round_trip(tmp_path, small_mnist):
    path = tmp_path / "mnist.npz"
    x_tr, y_tr, x_te, y_te = small_mnist
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    assert_same(load_mnist(str(path)), *small_mnist)


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_folder_and_file(tmp_path, small_mnist, gz):
    write_idx_set(tmp_path, *small_mnist, gz=gz)
    assert_same(load_mnist(tmp_path), *small_mnist)
    one = next(tmp_path.glob("train-labels*"))
    assert_same(load_mnist(one), *small_mnist)


@pytest.mark.parametrize("header", [True, False])
def test_load_csv_file_is_train_only(tmp_path, small_mnist, header):
    x_tr, y_tr, _, _ = small_mnist
    path = tmp_path / "mnist_train.csv"
    write_csv(path, x_tr, y_tr, header)
    data = load_mnist(path)
    np.testing.assert_array_equal(data.x_train, x_tr)
    np.testing.assert_array_equal(data.y_train, y_tr)
    assert data.x_test.shape == (0, 28, 28) and data.y_test.shape == (0,)


def test_load_csv_folder(tmp_path, small_mnist):
    x_tr, y_tr, x_te, y_te = small_mnist
    write_csv(tmp_path / "mnist_train.csv", x_tr, y_tr, header=True)
    write_csv(tmp_path / "mnist_test.csv", x_te, y_te, header=False)
    assert_same(load_mnist(tmp_path), *small_mnist)


def test_keras_download_failure_is_data_error(monkeypatch):
    def fail():
        raise OSError("network unreachable")

    fake = types.SimpleNamespace(
        datasets=types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=fail))
    )
    monkeypatch.setitem(sys.modules, "keras", fake)
    with pytest.raises(DataError, match="--mnist PATH"):
        load_mnist(None)


def bad_sources(tmp_path: Path, small) -> list[tuple[Path, str]]:
    x_tr, y_tr, x_te, y_te = small
    out = []
    p = tmp_path / "keys.npz"
    np.savez(p, x_train=x_tr, y_train=y_tr)
    out.append((p, "missing arrays"))
    p = tmp_path / "labels.npz"
    np.savez(p, x_train=x_tr, y_train=y_tr + 5, x_test=x_te, y_test=y_te)
    out.append((p, "y_train values"))
    p = tmp_path / "shape.npz"
    np.savez(p, x_train=x_tr[:, :20, :20], y_train=y_tr, x_test=x_te, y_test=y_te)
    out.append((p, "shape"))
    p = tmp_path / "count.npz"
    np.savez(p, x_train=x_tr, y_train=y_tr[:-1], x_test=x_te, y_test=y_te)
    out.append((p, "match the images"))
    p = tmp_path / "garbage.npz"
    p.write_bytes(b"not a zip")
    out.append((p, "cannot read"))
    d = tmp_path / "badmagic"
    d.mkdir()
    write_idx_set(d, *small, gz=False)
    (d / "train-images-idx3-ubyte").write_bytes(b"\x08\x00\x00\x03" + b"\x00" * 20)
    out.append((d, "magic"))
    d = tmp_path / "truncated"
    d.mkdir()
    write_idx_set(d, *small, gz=True)
    raw = gzip.decompress((d / "t10k-images-idx3-ubyte.gz").read_bytes())
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-10]))
    out.append((d, "IDX data"))
    d = tmp_path / "partial"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", x_tr, True)
    out.append((d, "missing IDX files"))
    d = tmp_path / "emptydir"
    d.mkdir()
    out.append((d, "neither"))
    p = tmp_path / "cols.csv"
    p.write_text("1,2,3\n4,5,6\n")
    out.append((p, "fields"))
    p = tmp_path / "text.csv"
    write_csv(p, x_tr[:2], y_tr[:2], header=False)
    first, second = p.read_text().splitlines()
    p.write_text(first + "\n" + second.replace(",0,", ",zz,", 1) + "\n")
    out.append((p, "non-numeric"))
    out.append((tmp_path / "nope.npz", "does not exist"))
    p = tmp_path / "image.png"
    p.write_bytes(b"\x89PNG")
    out.append((p, "not an MNIST"))
    return out


def test_bad_sources_raise_data_error_naming_the_file(tmp_path, small_mnist):
    for path, words in bad_sources(tmp_path, small_mnist):
        with pytest.raises(DataError, match=words) as info:
            load_mnist(path)
        assert path.name in str(info.value) or str(path) in str(info.value)


# --- fonts -------------------------------------------------------------------


def test_find_fonts_finds_digit_fonts():
    fonts = find_fonts()
    assert fonts, "no system font renders digits"
    assert fonts == sorted(fonts)
    assert len(set(fonts)) == len(fonts)
    for p in fonts:
        assert p.is_file() and p.suffix.lower() in (".ttf", ".otf", ".ttc")
    assert find_fonts() == fonts  # cached scan, same answer


def test_find_fonts_skips_broken_and_duplicate_files(tmp_path):
    real = find_fonts()[0]
    shutil.copy(real, tmp_path / real.name)
    shutil.copy(real, tmp_path / f"copy-{real.name}")
    (tmp_path / "broken.ttf").write_bytes(b"\x00\x01\x00\x00 not really a font")
    (tmp_path / "readme.txt").write_text("fonts")
    found = find_fonts([tmp_path])
    assert len(found) == 1 and found[0].parent == tmp_path.resolve()
    assert find_fonts([tmp_path / "missing"]) == []


def test_find_fonts_exclude_holds_out_families():
    fonts = find_fonts()
    family = fontmod.font_family(fonts[0])
    kept = find_fonts(exclude=[family.upper()])
    assert fonts[0] not in kept
    assert all(family.lower() not in fontmod.font_family(p).lower() for p in kept)


def test_digit_check_rejects_symbols_and_accepts_digits():
    face = ImageFont.load_default(32)
    digits = [fontmod.render_glyph(face, ch) for ch in "0123456789"]
    assert looks_like_digits(digits)
    letters = [fontmod.render_glyph(face, ch) for ch in "abcdefghij"]
    assert not looks_like_digits(letters)
    assert not looks_like_digits([digits[0]] * 10)
    assert not looks_like_digits([*digits[:9], np.zeros_like(digits[0])])
    assert not looks_like_digits(digits, missing=digits[3])


def test_compose_number_lays_digits_side_by_side():
    atlas = glyph_atlas(find_fonts()[0], 24)
    one, two = compose_number(atlas, "3"), compose_number(atlas, "36")
    assert one.dtype == np.uint8 and one.max() > 200
    assert two.shape[1] > 1.6 * one.shape[1]
    assert abs(two.shape[0] - one.shape[0]) <= 2


# --- cell crops --------------------------------------------------------------


@pytest.fixture(scope="module")
def synth_inputs() -> tuple[np.ndarray, np.ndarray, list[Path]]:
    x, y = fake_mnist(per_class=8)
    return x, y, find_fonts()[:12]


def test_cellsynth_same_seed_same_crops(synth_inputs):
    x, y, fonts = synth_inputs
    a_crops, a_y = CellSynth(CLASSES, x, y, fonts, seed=3).sample(60)
    b_crops, b_y = CellSynth(CLASSES, x, y, fonts, seed=3).sample(60)
    c_crops, _ = CellSynth(CLASSES, x, y, fonts, seed=4).sample(60)
    np.testing.assert_array_equal(a_y, b_y)
    assert all(np.array_equal(a, b) for a, b in zip(a_crops, b_crops, strict=True))
    assert not all(
        a.shape == c.shape and np.array_equal(a, c) for a, c in zip(a_crops, c_crops, strict=True)
    )


def test_cellsynth_2000_crops_shapes_and_balance(synth_inputs):
    x, y, fonts = synth_inputs
    synth = CellSynth(CLASSES, x, y, fonts, seed=0, empty_share=0.14)
    crops, labels = synth.sample(2000)
    assert len(crops) == 2000 and labels.shape == (2000,)
    for c in crops:
        assert c.dtype == np.uint8 and c.ndim == 3 and c.shape[2] == 3
        assert c.shape[0] >= 3 and c.shape[1] >= 3
    counts = np.bincount(labels, minlength=len(CLASSES))
    assert len(counts) == len(CLASSES)
    assert 0.10 < counts[-1] / 2000 < 0.18
    assert counts[:-1].min() >= 25  # ~46 expected per number
    sizes = np.array([c.shape[0] for c in crops])
    assert sizes.min() <= 12 and sizes.max() >= 80  # tiny and huge cells both occur


def test_prepared_crops_empty_vs_ink(synth_inputs):
    x, y, fonts = synth_inputs
    synth = CellSynth(CLASSES, x, y, fonts, seed=1, empty_share=0.5)
    X, labels = synth.sample_prepared(300)
    assert X.shape == (300, 32, 48, 1) and X.dtype == np.float32
    assert X.min() >= 0.0 and X.max() <= 1.0
    blank = X.reshape(300, -1).max(axis=1) == 0
    empty = labels == len(CLASSES) - 1
    assert 0.4 < empty.mean() < 0.6
    assert blank[empty].mean() > 0.6
    assert not blank[~empty].any()  # drop_blank replaced unreadable numbers
    raw, raw_labels = CellSynth(CLASSES, x, y, fonts, seed=1, empty_share=0.5).sample_prepared(
        300, (24, 24), drop_blank=False
    )
    assert raw.shape == (300, 24, 24, 1)
    raw_blank = raw.reshape(300, -1).max(axis=1) == 0
    assert raw_blank[raw_labels != len(CLASSES) - 1].mean() < 0.08


def test_upright_bars_are_what_a_lone_one_becomes():
    canvas = np.zeros((4, 32, 48, 1), np.float32)
    canvas[0, 2:30, 22:26] = 1.0  # a bare "1" (or a stub of ruling)
    canvas[1, 2:30, 12:36] = 1.0  # a "0"-wide blob
    canvas[1, 6:26, 16:32] = 0.0
    canvas[2, 14:18, 2:46] = 1.0  # a horizontal rule stub
    canvas[3, 2:30, 6:9] = 1.0  # a bar with a speck far beside it is still a bar
    canvas[3, 20:22, 40:42] = 1.0
    assert upright_bars(canvas).tolist() == [True, False, False, True]


def test_empty_cells_never_train_as_upright_bars(synth_inputs):
    x, y, fonts = synth_inputs
    empty = len(CLASSES) - 1
    raw, raw_labels = CellSynth(CLASSES, x, y, fonts, seed=6, empty_share=0.9).sample_prepared(
        600, drop_blank=False
    )
    # The generator does draw them (ruling stubs in empty cells) ...
    assert upright_bars(raw)[raw_labels == empty].sum() >= 5
    X, labels = CellSynth(CLASSES, x, y, fonts, seed=6, empty_share=0.9).sample_prepared(600)
    # ... and they are replaced, while numbers that look like bars (a "1") stay.
    assert not upright_bars(X)[labels == empty].any()
    assert (labels == empty).mean() > 0.8


def test_handwritten_and_printed_only(synth_inputs):
    x, y, fonts = synth_inputs
    for share in (0.0, 1.0):
        synth = CellSynth(CLASSES, x, y, fonts, seed=2, handwritten_share=share, empty_share=0.0)
        crops, labels = synth.sample(40)
        assert (labels < len(CLASSES) - 1).all()
        inked = [prepare_crop(c).max() > 0 for c in crops]
        assert np.mean(inked) > 0.9


def test_cellsynth_other_class_sets_and_default_font(synth_inputs):
    x, y, _ = synth_inputs
    classes = parse_classes("5,100-102")
    synth = CellSynth(classes, x, y, [], seed=0)  # no fonts: Pillow's bundled face
    crops, labels = synth.sample(50)
    assert set(labels.tolist()) <= set(range(len(classes)))
    assert len(crops) == 50
    X, none = synth.sample_prepared(0)
    assert X.shape == (0, 32, 48, 1) and none.shape == (0,)
    with pytest.raises(DataError):
        synth.sample(-1)
    with pytest.raises(DataError):
        CellSynth(("1", "2"), x, y, [], seed=0)
    with pytest.raises(DataError):
        CellSynth(CLASSES, x, y, [], seed=0, empty_share=1.5)
    with pytest.raises(DataError):
        CellSynth(CLASSES, x[y != 7], y[y != 7], [], seed=0)


# --- tables ------------------------------------------------------------------


def table_values(rows: int, cols: int, seed: int = 0) -> list[list[int | None]]:
    rng = np.random.default_rng(seed)
    return [
        [None if rng.random() < 0.15 else int(rng.integers(0, 37)) for _ in range(cols)]
        for _ in range(rows)
    ]


@pytest.mark.parametrize("style", STYLES)
def test_render_table_each_style(style):
    values = table_values(4, 6, seed=len(style))
    x, y = fake_mnist(per_class=3)
    mnist = (x, y) if style == "scan" else None
    t = render_table(values, style, seed=5, mnist=mnist)
    h, w = t.image.shape[:2]
    assert t.image.dtype == np.uint8 and t.image.shape[2] == 3
    assert t.values == values and t.values is not values
    assert len(t.boxes) == 4 and all(len(row) == 6 for row in t.boxes)
    for row in t.boxes:
        for x0, y0, x1, y1 in row:
            assert all(isinstance(v, int) for v in (x0, y0, x1, y1))
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # Cells are laid out left to right, top to bottom.
    assert t.boxes[0][0][0] < t.boxes[0][1][0] and t.boxes[0][0][1] < t.boxes[1][0][1]


def test_ruled_boxes_run_between_rule_centres():
    values = table_values(3, 4, seed=1)
    t = render_table(values, "ruled", seed=2, cell=(40, 24), line_width=1, align="center")
    img = t.image.astype(int)
    x0, y0, x1, y1 = t.boxes[1][1]
    assert (x1 - x0, y1 - y0) == (40, 24)
    page = img[y0 + 2, x0 + 2]
    # The box's left column and top row lie on the rules; one pixel in is page.
    assert np.abs(img[y0 + 12, x0] - page).sum() > 30
    assert np.abs(img[y0, x0 + 5] - page).sum() > 30
    assert np.abs(img[y0 + 12, x0 + 1] - page).sum() < 10
    assert t.boxes[1][2][0] == x1 and t.boxes[2][1][1] == y1


def test_roulette_cells_take_their_pocket_colour():
    values = [[0, 1, 2, None]]
    t = render_table(values, "roulette", seed=0, cell=(40, 30), line_width=2)
    colours = [t.image[b[1] + 3, b[0] + 3].astype(int) for b in t.boxes[0]]
    green, red, black, empty = colours
    assert green[1] > green[0] + 60
    assert red[0] > red[1] + 120
    assert black.max() < 70
    assert empty.min() > 180


def test_scan_angle_tilts_boxes_and_page_tiny_options():
    values = table_values(3, 5, seed=4)
    tilted = render_table(values, "scan", seed=1, angle=4.0)
    first, last = tilted.boxes[0][0], tilted.boxes[0][-1]
    assert last[1] < first[1]  # counter-clockwise: the row rises to the right
    assert tilted.angle == 4.0
    plain = render_table(values, "ruled", seed=1)
    paged = render_table(values, "ruled", seed=1, page=True)
    assert paged.image.shape[0] > plain.image.shape[0] + 100
    tiny = render_table(values, "zebra", seed=1, tiny=True)
    assert {(b[2] - b[0], b[3] - b[1]) for row in tiny.boxes for b in row} == {TINY_CELL}


def test_render_table_rejects_bad_input():
    with pytest.raises(DataError):
        render_table([[1, 2], [3]], "ruled")
    with pytest.raises(DataError):
        render_table([[1, 10000]], "ruled")
    with pytest.raises(DataError):
        render_table([[1]], "neon")
    with pytest.raises(DataError):
        render_table([[1]], "ruled", angle=2.0)
    with pytest.raises(DataError):
        render_table([], "ruled")
