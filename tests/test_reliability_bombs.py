"""Decompression bombs: small files that claim or unpack to huge pictures.

The loader reads the header first and refuses a picture over its size limits
before decoding a pixel, so such a file costs milliseconds and no memory; a
payload that unpacks to more than its header claims is never unpacked past it.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gridreader.errors import ImageLoadError
from gridreader.imageio import MAX_PIXELS, MAX_SIDE, load_image


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes, colour_type: int = 0) -> bytes:
    """A PNG with the given header and (already compressed) pixel stream; 8-bit."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@functools.cache
def zeros_zlib(n: int, block: int = 1 << 22) -> bytes:
    """A valid zlib stream of ``n`` zero bytes, made without compressing them all:
    a fully flushed deflate block of zeros repeats byte for byte."""
    zero = bytes(block)
    full, rest = divmod(n, block)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    c_end = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = c_end.compress(bytes(rest)) + c_end.flush()
    adler = 1
    for _ in range(full):
        adler = zlib.adler32(zero, adler)
    adler = zlib.adler32(bytes(rest), adler)
    return b"\x78\xda" + body * full + tail + struct.pack(">I", adler)


def patched_jpeg(width: int, height: int) -> bytes:
    """A valid small JPEG whose frame header (SOF0) claims ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 200, 200)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def patched_bmp(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="BMP")
    data = bytearray(buf.getvalue())
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def patched_gif(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("P", (64, 64)).save(buf, format="GIF")
    data = bytearray(buf.getvalue())
    struct.pack_into("<HH", data, 6, width, height)  # logical screen
    image = data.index(b"\x2c")  # image descriptor
    struct.pack_into("<HH", data, image + 5, width, height)
    return bytes(data)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """Files that must be refused from their header alone."""
    huge = 30_000
    return {
        "png-60000x60000-tiny-payload": png(60_000, 60_000, zlib.compress(bytes(1000))),
        # The payload really unpacks to 30000 x 30000 px (900 MB) from < 1 MB.
        "png-30000x30000-zlib-bomb": png(huge, huge, zeros_zlib(huge * (huge + 1))),
        "png-9000x9000-over-pixel-limit": png(9_000, 9_000, zlib.compress(bytes(1000))),
        "png-rgba-65535x65535": png(65_535, 65_535, zlib.compress(bytes(100)), colour_type=6),
        "jpeg-60000x60000": patched_jpeg(60_000, 60_000),
        "bmp-60000x60000": patched_bmp(60_000, 60_000),
        "gif-65535x65535": patched_gif(65_535, 65_535),
    }


def test_the_bombs_are_what_they_claim(bombs: dict[str, bytes]) -> None:
    for name, data in bombs.items():
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        assert w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS, name
        assert len(data) < 1_000_000, name
    assert len(bombs["png-30000x30000-zlib-bomb"]) > 500_000  # a real payload, not a stub


@pytest.mark.parametrize(
    "name",
    [
        "png-60000x60000-tiny-payload",
        "png-30000x30000-zlib-bomb",
        "png-9000x9000-over-pixel-limit",
        "png-rgba-65535x65535",
        "jpeg-60000x60000",
        "bmp-60000x60000",
        "gif-65535x65535",
    ],
)
def test_a_bomb_is_refused_from_its_header(
    bombs: dict[str, bytes], name: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{name}.img"
    path.write_bytes(bombs[name])
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(ImageLoadError) as caught:
            load_image(path)
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert str(path) in message and "over the" in message and "\n" not in message, message
    assert elapsed < 1.0, f"{name}: {elapsed:.2f} s"
    # The file itself (< 1 MB) is read; no pixel buffer is ever allocated.
    assert peak < len(bombs[name]) + 4_000_000, f"{name}: peak {peak} bytes"


def test_a_payload_larger_than_its_header_is_not_unpacked_past_it(tmp_path: Path) -> None:
    # A plausible 2000 x 2000 header over a 30000 x 30000 payload: the decoder
    # stops at 2000 x 2000, so memory follows the header, not the payload.
    side, huge = 2000, 30_000
    path = tmp_path / "plausible-header.png"
    path.write_bytes(png(side, side, zeros_zlib(huge * (huge + 1))))
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        image = load_image(path)
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image.shape == (side, side, 3)
    assert not image.any()  # the zero bytes decode to black
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert peak < 4 * side * side * 3, f"peak {peak} bytes"


_MEASURE = """
import json, resource, sys, time
from gridreader.errors import ImageLoadError
from gridreader.imageio import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = {}
for path in sys.argv[1:]:
    t0 = time.monotonic()
    try:
        shape = list(load_image(path).shape)
    except ImageLoadError as e:
        shape = None
    results[path] = [shape, time.monotonic() - t0]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kb": after - before, "results": results}))
"""


def test_bombs_do_not_grow_the_process(bombs: dict[str, bytes], tmp_path: Path) -> None:
    # tracemalloc does not see Pillow's own buffers; the peak resident size of
    # a fresh process does.
    paths = []
    for name, data in bombs.items():
        paths.append(tmp_path / f"{name}.img")
        paths[-1].write_bytes(data)
    plausible = tmp_path / "plausible-header.png"
    plausible.write_bytes(png(2000, 2000, zeros_zlib(30_000 * 30_001)))
    paths.append(plausible)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    measured = json.loads(out.stdout)
    results = measured["results"]
    assert all(results[str(p)][0] is None for p in paths[:-1]), results
    assert results[str(plausible)][0] == [2000, 2000, 3]
    assert all(seconds < 1.0 for _, seconds in results.values()), results
    # A 30000 x 30000 decode would need 900 MB at least; 2000 x 2000 RGB is 12 MB.
    assert measured["grew_kb"] < 100_000, measured


def test_zeros_zlib_is_a_valid_stream() -> None:
    data = zeros_zlib(10 * (1 << 22) + 123, block=1 << 22)
    out = zlib.decompress(data)
    assert len(out) == 10 * (1 << 22) + 123 and not np.frombuffer(out, np.uint8).any()
