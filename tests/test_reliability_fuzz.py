"""Fuzzing the image loader and the grid finder with hypothesis.

Every input goes through ``analyse_image`` (load, find the grid, rectify, cut and
prepare the cells): exactly what a batch worker runs on a file. Whatever the
bytes, only the project's own errors may come out, each a one-line message
naming the file, and no call may take longer than ``BOUND_S``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gridreader.errors import GridReaderError
from gridreader.imageio import load_image
from gridreader.pipeline import Analysed, analyse_image
from gridreader.preprocess import INPUT_SIZE
from gridreader.synth.tables import render_table

BOUND_S = 5.0
FUZZ = settings(
    deadline=timedelta(seconds=BOUND_S),
    database=None,  # no .hypothesis/ folder in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


@dataclass
class Fuzzer:
    """Runs inputs through the analysis and counts them by kind."""

    work: Path
    counts: dict[str, int]

    def analyse(self, data: bytes, kind: str) -> Analysed | GridReaderError:
        """Run a worker's whole analysis on ``data`` written to a file; return the
        result or the project error it raised. Any other exception fails the test."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        path = self.work / f"{kind}.img"
        path.write_bytes(data)
        t0 = time.monotonic()
        try:
            result: Analysed | GridReaderError = analyse_image(path, INPUT_SIZE)
        except GridReaderError as e:
            result = e
        elapsed = time.monotonic() - t0
        assert elapsed < BOUND_S, f"{kind}: {len(data)} bytes took {elapsed:.1f} s"
        if isinstance(result, GridReaderError):
            message = str(result)
            assert message and "\n" not in message, repr(message)
            assert str(path) in message, message
        else:
            rows, cols = result.grid.rows, result.grid.cols
            assert result.inputs.shape[0] == len(result.boxes) == rows * cols
            assert np.isfinite(result.inputs).all()
        return result


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory, fuzz_counts: dict[str, int]) -> Fuzzer:
    return Fuzzer(tmp_path_factory.mktemp("fuzz"), fuzz_counts)


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def table_picture() -> Image.Image:
    values: list[list[int | None]] = [[(r * 5 + c) % 37 for c in range(5)] for r in range(4)]
    return Image.fromarray(render_table(values, "ruled", seed=3, cell=(48, 26)).image)


_TABLE = table_picture()
VALID = {
    "png": encode(_TABLE, "PNG"),
    "png-interlaced": encode(_TABLE.convert("L"), "PNG", interlace=1),
    "jpeg": encode(_TABLE, "JPEG", quality=85),
    "jpeg-progressive": encode(_TABLE, "JPEG", quality=70, progressive=True),
    "webp": encode(_TABLE, "WEBP", quality=80),
    "bmp": encode(_TABLE, "BMP"),
    "tiff": encode(_TABLE, "TIFF", compression="tiff_lzw"),
    "gif": encode(_TABLE.convert("P"), "GIF"),
}
MAGIC = (
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x10\x00\x00WEBPVP8 ",
)


@settings(FUZZ, max_examples=35)
@given(prefix=st.sampled_from(MAGIC), body=st.binary(max_size=2048))
def test_random_bytes_give_only_project_errors(fuzzer: Fuzzer, prefix: bytes, body: bytes) -> None:
    fuzzer.analyse(prefix + body, "random-bytes")


@settings(FUZZ, max_examples=40)
@given(fmt=st.sampled_from(sorted(VALID)), cut=st.floats(0.0, 0.999))
def test_truncated_files_give_only_project_errors(fuzzer: Fuzzer, fmt: str, cut: float) -> None:
    data = VALID[fmt]
    part = data[: int(len(data) * cut)]
    result = fuzzer.analyse(part, "truncated")
    if not isinstance(result, GridReaderError):
        # Only a cut in the trailer (checksum, end marker) may still load, and
        # then as the whole picture: never silently as a partly blank one.
        assert np.array_equal(load_image(part), load_image(data))


@settings(FUZZ, max_examples=25)
@given(
    fmt=st.sampled_from(sorted(VALID)),
    flips=st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_corrupted_files_give_only_project_errors(
    fuzzer: Fuzzer, fmt: str, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(VALID[fmt])
    for where, value in flips:
        data[int(len(data) * where)] = value
    fuzzer.analyse(bytes(data), "corrupted")


EXTREME_SIZES = ((32, 4000), (4000, 32), (32, 32), (31, 500), (33, 33), (40, 2400), (2400, 40))


def picture(kind: str, h: int, w: int, seed: int) -> np.ndarray:
    """A synthetic picture: flat, noise, or random rectangles and lines."""
    rng = np.random.default_rng(seed)
    if kind == "black":
        return np.zeros((h, w, 3), np.uint8)
    if kind == "white":
        return np.full((h, w, 3), 255, np.uint8)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "gradient":
        ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
        return np.broadcast_to(ramp, (h, w, 3)).astype(np.uint8)
    img = np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
    for _ in range(int(rng.integers(1, 40))):
        colour = rng.integers(0, 256, 3)
        if kind == "lines":
            if rng.random() < 0.5:
                y = int(rng.integers(0, h))
                img[y : y + int(rng.integers(1, 4)), :] = colour
            else:
                x = int(rng.integers(0, w))
                img[:, x : x + int(rng.integers(1, 4))] = colour
        else:
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            y1, x1 = y0 + int(rng.integers(1, h + 1)), x0 + int(rng.integers(1, w + 1))
            img[y0:y1, x0:x1] = colour
    return img


@settings(FUZZ, max_examples=50)
@given(
    kind=st.sampled_from(("black", "white", "noise", "gradient", "rects", "lines")),
    size=st.one_of(
        st.sampled_from(EXTREME_SIZES),
        st.tuples(st.integers(32, 900), st.integers(32, 900)),
    ),
    mode=st.sampled_from(("RGB", "L", "RGBA", "P", "1", "I;16", "CMYK")),
    seed=st.integers(0, 2**16),
)
def test_synthetic_pictures_give_a_table_or_a_project_error(
    fuzzer: Fuzzer, kind: str, size: tuple[int, int], mode: str, seed: int
) -> None:
    h, w = size
    img = Image.fromarray(picture(kind, h, w, seed))
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    elif mode != "RGB":
        img = img.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    result = fuzzer.analyse(encode(img, fmt), f"picture-{kind}")
    if min(h, w) < 32:
        assert isinstance(result, GridReaderError)
        assert "minimum side" in str(result)
    if kind in ("black", "white"):
        assert isinstance(result, GridReaderError), "a flat picture holds no table"


@pytest.mark.parametrize("size", [(32, 4000), (4000, 32)])
@pytest.mark.parametrize("kind", ["black", "white", "noise", "rects", "lines"])
def test_extreme_aspect_ratios_give_a_table_or_a_project_error(
    fuzzer: Fuzzer, kind: str, size: tuple[int, int]
) -> None:
    h, w = size
    result = fuzzer.analyse(encode(Image.fromarray(picture(kind, h, w, 7)), "PNG"), "extreme")
    if kind in ("black", "white"):
        assert isinstance(result, GridReaderError)


def test_a_real_table_survives_the_fuzz_harness(fuzzer: Fuzzer) -> None:
    # The harness itself must be able to tell a table from an error.
    result = fuzzer.analyse(VALID["png"], "control")
    assert isinstance(result, Analysed)
    assert (result.grid.rows, result.grid.cols) == (4, 5)
