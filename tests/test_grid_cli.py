"""``gridreader grid``: JSON lines, overlays, and one-line errors for every bad input."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from gridreader.cli import main
from gridreader.imageio import load_image
from gridreader.synth.tables import render_table

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def photo_like(seed: int, w: int = 400, h: int = 300) -> np.ndarray:
    """Smooth colour blobs with sensor noise: a picture with no table in it."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8, w // 8, 3)).astype(np.uint8)
    img = cv2.GaussianBlur(cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 3)
    return np.clip(img.astype(int) + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def write_png(path: Path, img: np.ndarray) -> Path:
    Image.fromarray(img).save(path)
    return path


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, tuple[int, int]]]:
    """Two good tables on disk, with their shapes."""
    d = tmp_path_factory.mktemp("grid-cli")
    out = {}
    for name, style, shape, seed in (
        ("ruled", "ruled", (4, 5), 1),
        ("roulette", "roulette", (3, 6), 0),
    ):
        values = [[(r * 7 + c * 3 + seed) % 37 for c in range(shape[1])] for r in range(shape[0])]
        t = render_table(values, style, seed=seed, font=FONT, line_width=2)
        out[name] = (write_png(d / f"{name}.png", t.image), shape)
    return out


def make_bad_inputs(d: Path) -> dict[str, Path]:
    """Every kind of input that must be refused with a one-line message."""
    d.mkdir(parents=True, exist_ok=True)
    bad: dict[str, Path] = {}
    bad["empty"] = d / "empty.png"
    bad["empty"].write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(photo_like(0)).save(buf, format="PNG")
    bad["truncated"] = d / "truncated.png"
    bad["truncated"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    bad["text"] = d / "text.png"
    bad["text"].write_text("not an image\n")
    bad["1x1"] = write_png(d / "one.png", np.zeros((1, 1, 3), np.uint8))
    bad["31x100"] = write_png(d / "thin.png", np.full((31, 100, 3), 255, np.uint8))
    bad["huge"] = d / "huge.png"
    bad["huge"].write_bytes(huge_png_header())
    bad["dir"] = d / "folder.png"
    bad["dir"].mkdir()
    bad["missing"] = d / "missing.png"
    bad["blank"] = write_png(d / "blank.png", np.full((300, 400, 3), 255, np.uint8))
    return bad


def run_grid(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["grid", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lines(
    capsys: pytest.CaptureFixture[str], tables: dict[str, tuple[Path, tuple[int, int]]]
) -> None:
    paths = [str(p) for p, _ in tables.values()]
    code, out, err = run_grid(capsys, "--json", *paths)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    for line, (path, shape) in zip(lines, tables.values(), strict=True):
        obj = json.loads(line)
        assert set(obj) == {"image", "rows", "cols", "cells"}
        assert obj["image"] == str(path)
        assert (obj["rows"], obj["cols"]) == shape
        assert len(obj["cells"]) == shape[0] * shape[1]
        h, w = load_image(path).shape[:2]
        expected = [(r, c) for r in range(shape[0]) for c in range(shape[1])]
        assert [(cell["row"], cell["col"]) for cell in obj["cells"]] == expected
        for cell in obj["cells"]:
            x0, y0, x1, y1 = cell["box"]
            assert all(isinstance(v, int) for v in cell["box"])
            assert 0 <= x0 < x1 <= w + 1 and 0 <= y0 < y1 <= h + 1


def test_plain_output(
    capsys: pytest.CaptureFixture[str], tables: dict[str, tuple[Path, tuple[int, int]]]
) -> None:
    path, (rows, cols) = tables["ruled"]
    code, out, _ = run_grid(capsys, str(path))
    assert code == 0
    assert out.strip() == f"{path}: {rows} rows x {cols} cols (structured)"


def test_overlay(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tables: dict[str, tuple[Path, tuple[int, int]]],
) -> None:
    overlay = tmp_path / "overlay"
    paths = [p for p, _ in tables.values()]
    code, _, err = run_grid(capsys, "--overlay", str(overlay), *map(str, paths))
    assert code == 0, err
    assert sorted(p.name for p in overlay.iterdir()) == sorted(
        f"{p.stem}.overlay.png" for p in paths
    )
    for p in paths:
        src = load_image(p)
        drawn = load_image(overlay / f"{p.stem}.overlay.png")
        assert drawn.shape == src.shape
        # The cells are outlined: the overlay differs from the input.
        assert (drawn != src).any(axis=2).mean() > 0.01


def test_bad_inputs_each_get_one_line_and_the_good_ones_are_still_read(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tables: dict[str, tuple[Path, tuple[int, int]]],
) -> None:
    bad = make_bad_inputs(tmp_path / "bad")
    good = [p for p, _ in tables.values()]
    # Good images first, in the middle and last.
    args = [good[0], *list(bad.values())[:5], good[1], *list(bad.values())[5:], good[0]]
    overlay = tmp_path / "ov"
    code, out, err = run_grid(capsys, "--json", "--overlay", str(overlay), *map(str, args))
    assert code == 1
    assert "Traceback" not in err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["image"] for r in records] == [str(good[0]), str(good[1]), str(good[0])]
    err_lines = err.splitlines()
    assert len(err_lines) == len(bad), err
    for kind, path in bad.items():
        mine = [line for line in err_lines if str(path) in line]
        assert len(mine) == 1, f"{kind}: {err}"
        assert mine[0].startswith("gridreader grid: error: ")
    assert sorted(p.name for p in overlay.iterdir()) == sorted(
        {f"{p.stem}.overlay.png" for p in good}
    )


@pytest.mark.parametrize(
    "kind", ["empty", "truncated", "text", "1x1", "31x100", "huge", "dir", "missing", "blank"]
)
def test_each_bad_input_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = make_bad_inputs(tmp_path)[kind]
    code, out, err = run_grid(capsys, "--json", str(path))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize(
    "kind",
    [
        "white-noise",
        "photo-0",
        "photo-1",
        "photo-2",
        "photo-3",
    ],
)
def test_picture_without_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    if kind == "white-noise":
        img = np.random.default_rng(0).integers(0, 256, (300, 400, 3)).astype(np.uint8)
    else:
        img = photo_like(int(kind.split("-")[1]))
    path = write_png(tmp_path / f"{kind}.png", img)
    code, out, err = run_grid(capsys, "--json", str(path))
    assert (code, out) == (1, ""), f"found a table: {out[:200]}"
    assert err.count("\n") == 1 and str(path) in err and "no table" in err


def test_no_images_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_grid(capsys)
    assert code == 2
    assert "error" in err


def test_a_reader_that_goes_away_gets_no_traceback() -> None:
    # `gridreader grid *.png | head -0`: the pipe closes before the first line.
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    images = sorted(str(p) for p in (root / "data" / "samples").glob("*.png"))
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gridreader", "grid", *images],
            stdout=write,
            stderr=subprocess.PIPE,
            cwd=root,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 141
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr
