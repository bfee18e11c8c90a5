"""Image loading (every format and mode, every bad input) and atomic writes."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from gridreader import imageio
from gridreader.errors import ImageLoadError, OutputError
from gridreader.imageio import atomic_path, is_image_path, load_image, write_atomic

H, W = 40, 56


def picture() -> np.ndarray:
    """A small RGB picture with flat areas of distinct colours (survives lossy codecs)."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, : W // 2] = (200, 30, 40)
    img[:, W // 2 :] = (20, 60, 220)
    img[: H // 2, :] = (250, 250, 250)
    return img


def save(img: Image.Image, path: Path, fmt: str, **kw: object) -> Path:
    img.save(path, format=fmt, **kw)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR (valid CRC) claims ``width x height`` RGB px, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def assert_refused(path: Path | str, fragment: str | None = None) -> str:
    with pytest.raises(ImageLoadError) as e:
        load_image(path)
    msg = str(e.value)
    assert str(path) in msg, msg
    assert "\n" not in msg
    if fragment:
        assert fragment in msg, msg
    return msg


# --- formats and modes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "suffix", "kw", "tol"),
    [
        ("PNG", ".png", {}, 0),
        ("JPEG", ".jpg", {"quality": 95}, 12),
        ("WEBP", ".webp", {"lossless": True}, 0),
        ("WEBP", ".webp", {"quality": 90}, 16),
        ("BMP", ".bmp", {}, 0),
        ("TIFF", ".tif", {}, 0),
    ],
    ids=["png", "jpeg", "webp-lossless", "webp-lossy", "bmp", "tiff"],
)
def test_formats_decode_to_rgb(
    tmp_path: Path, fmt: str, suffix: str, kw: dict[str, object], tol: int
) -> None:
    src = picture()
    path = save(Image.fromarray(src), tmp_path / f"a{suffix}", fmt, **kw)
    out = load_image(path)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    # Lossy codecs smear the colour edges; compare away from them.
    inner = (slice(4, H // 2 - 4), slice(4, W // 2 - 4))
    diff = np.abs(out.astype(int) - src.astype(int))
    assert diff[inner].max() <= tol
    assert diff[H // 2 + 4 : H - 4, W // 2 + 4 : W - 4].max() <= tol
    assert is_image_path(path)


def test_bytes_input_is_decoded(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(picture()).save(buf, format="PNG")
    assert np.array_equal(load_image(buf.getvalue()), picture())


def test_gray_becomes_three_equal_channels(tmp_path: Path) -> None:
    g = np.tile(np.arange(W, dtype=np.uint8) * 4, (H, 1))
    out = load_image(save(Image.fromarray(g, "L"), tmp_path / "g.png", "PNG"))
    assert out.shape == (H, W, 3)
    for ch in range(3):
        assert np.array_equal(out[:, :, ch], g)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[:, :, :3] = (10, 20, 30)
    rgba[:, : W // 2, 3] = 0  # transparent: white
    rgba[:, W // 2 :, 3] = 255  # opaque: the colour itself
    rgba[: H // 4, W // 2 :, 3] = 128  # half: halfway to white
    out = load_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "t.png", "PNG"))
    assert (out[:, : W // 2] == 255).all()
    assert (out[H // 4 :, W // 2 :] == (10, 20, 30)).all()
    half = out[0, W - 1].astype(int)
    assert np.all(
        np.abs(half - (np.array([10, 20, 30]) + np.array([245, 235, 225]) * 127 / 255)) <= 2
    )


def test_gray_alpha_is_composited_on_white(tmp_path: Path) -> None:
    la = np.zeros((H, W, 2), np.uint8)
    la[:, :, 0] = 0
    la[:, : W // 2, 1] = 0
    la[:, W // 2 :, 1] = 255
    out = load_image(save(Image.fromarray(la, "LA"), tmp_path / "la.png", "PNG"))
    assert (out[:, : W // 2] == 255).all()
    assert (out[:, W // 2 :] == 0).all()


def test_palette_image(tmp_path: Path) -> None:
    p = Image.fromarray(picture()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert p.mode == "P"
    out = load_image(save(p, tmp_path / "p.png", "PNG"))
    assert np.array_equal(out, np.asarray(p.convert("RGB")))


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    idx = np.zeros((H, W), np.uint8)
    idx[:, W // 2 :] = 1
    p = Image.fromarray(idx, "P")
    p.putpalette([0, 0, 0, 200, 0, 0] + [0] * (254 * 3))
    p.info["transparency"] = 0
    out = load_image(save(p, tmp_path / "pt.png", "PNG", transparency=0))
    assert (out[:, : W // 2] == 255).all()
    assert (out[:, W // 2 :] == (200, 0, 0)).all()


def test_16bit_gray_is_scaled_to_8bit(tmp_path: Path) -> None:
    a = np.zeros((H, W), np.uint16)
    a[:, W // 2 :] = 60000
    a[: H // 2, W // 2 :] = 30000
    im = Image.fromarray(a)
    assert im.mode.startswith("I;16")
    out = load_image(save(im, tmp_path / "deep.png", "PNG"))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert (out[:, : W // 2] == 0).all()
    assert (out[H // 2 :, W // 2 :] == 255).all()
    assert np.all(np.abs(out[: H // 2, W // 2 :].astype(int) - 127) <= 1)


def test_16bit_rgb_png(tmp_path: Path) -> None:
    # 16-bit RGB PNG written by hand (Pillow cannot write it): left black, right white.
    row = b"\x00" + b"".join(
        (b"\x00\x00" * 3) if x < W // 2 else (b"\xff\xff" * 3) for x in range(W)
    )
    raw = zlib.compress(row * H)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, 2, 0, 0, 0))
        + png_chunk(b"IDAT", raw)
        + png_chunk(b"IEND", b"")
    )
    path = tmp_path / "rgb48.png"
    path.write_bytes(data)
    out = load_image(path)
    assert out.shape == (H, W, 3)
    assert (out[:, : W // 2] == 0).all()
    assert (out[:, W // 2 :] == 255).all()


def _pillow_pixels(data: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    im.load()
    return imageio._to_rgb(im)


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize(
    "kw",
    [
        {"format": "JPEG", "quality": 95, "subsampling": 0},
        {"format": "JPEG", "quality": 60, "subsampling": 2},
        {"format": "JPEG", "quality": 75, "progressive": True},
    ],
    ids=["jpeg-444", "jpeg-420", "jpeg-progressive"],
)
def test_opencv_fast_path_gives_pillows_pixels(mode: str, kw: dict[str, object]) -> None:
    rng = np.random.default_rng(3)
    noisy = np.clip(picture().astype(int) + rng.integers(-40, 40, (H, W, 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).convert(mode).save(buf, **kw)  # type: ignore[arg-type]
    data = buf.getvalue()
    fast = imageio._decode_plain(Image.open(io.BytesIO(data)), data)
    assert fast is not None, "a plain JPEG should take the OpenCV path"
    assert np.array_equal(fast, _pillow_pixels(data))
    assert np.array_equal(load_image(data), fast)


def test_pngs_and_other_modes_are_left_to_pillow() -> None:
    for mode, fmt in (("RGB", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG")):
        buf = io.BytesIO()
        Image.fromarray(picture()).convert(mode).save(buf, format=fmt)
        data = buf.getvalue()
        assert imageio._decode_plain(Image.open(io.BytesIO(data)), data) is None, (mode, fmt)


# --- bad inputs ------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    assert_refused(p, "empty")


def test_truncated_png(tmp_path: Path) -> None:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, format="PNG")
    p = tmp_path / "cut.png"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert_refused(p)


def test_truncated_jpeg(tmp_path: Path) -> None:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert_refused(p)


def test_png_with_damaged_pixel_data_but_intact_end(tmp_path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)[:-6] + b"garbage!"
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )
    p = tmp_path / "damaged.png"
    p.write_bytes(data)
    assert_refused(p)


def test_text_file_named_png(tmp_path: Path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture\n" * 20)
    assert_refused(p, "not a readable image")


@pytest.mark.parametrize(("w", "h"), [(1, 1), (100, 31), (31, 100)])
def test_too_small(tmp_path: Path, w: int, h: int) -> None:
    p = save(Image.new("RGB", (w, h), "white"), tmp_path / f"s{w}x{h}.png", "PNG")
    assert_refused(p, f"{w}x{h}")


def test_smallest_allowed_side_is_read(tmp_path: Path) -> None:
    p = save(Image.new("RGB", (32, 32), "white"), tmp_path / "s32.png", "PNG")
    assert load_image(p).shape == (32, 32, 3)


def test_huge_header_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(png_header_only(100_000, 100_000))
    assert p.stat().st_size < 200
    decoded: list[object] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        decoded.append(self)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    t0 = time.perf_counter()
    msg = assert_refused(p, "100000x100000")
    assert time.perf_counter() - t0 < 1.0
    assert not decoded, "pixels were decoded before the size check"
    assert "limit" in msg


@pytest.mark.parametrize(("w", "h"), [(10_001, 64), (64, 10_001), (8_000, 8_000)])
def test_over_side_or_pixel_limit_is_refused(tmp_path: Path, w: int, h: int) -> None:
    p = tmp_path / f"big{w}x{h}.png"
    p.write_bytes(png_header_only(w, h))
    assert_refused(p, f"{w}x{h}")


def test_huge_header_allocates_no_memory(tmp_path: Path) -> None:
    # In a fresh process, so the peak RSS is this load's alone.
    p = tmp_path / "bomb.png"
    p.write_bytes(png_header_only(100_000, 100_000))
    code = (
        "import resource, sys, time\n"
        "from gridreader.imageio import load_image\n"
        "from gridreader.errors import ImageLoadError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    load_image(sys.argv[1])\n"
        "    print('LOADED')\n"
        "except ImageLoadError as e:\n"
        "    print('REFUSED', e)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print('GROWTH_KB', after - before, 'SECONDS', time.perf_counter() - t)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("REFUSED") and str(p) in lines[0]
    fields = lines[1].split()
    assert int(fields[1]) < 20_000, f"peak RSS grew by {fields[1]} KB"
    assert float(fields[3]) < 1.0


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "folder.png"
    d.mkdir()
    assert_refused(d)


def test_missing_file(tmp_path: Path) -> None:
    assert_refused(tmp_path / "nowhere.png", "cannot read")


def test_file_over_byte_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = save(Image.fromarray(picture()), tmp_path / "ok.png", "PNG")
    monkeypatch.setattr(imageio, "MAX_FILE_BYTES", 100)
    assert_refused(p, "limit")


def test_bytes_errors_use_the_given_name() -> None:
    with pytest.raises(ImageLoadError, match=r"^crop-17\.png: "):
        load_image(b"garbage bytes", name="crop-17.png")


def test_image_suffixes() -> None:
    for name in ("a.png", "a.JPG", "a.jpeg", "a.webp", "a.bmp", "a.tif", "a.TIFF"):
        assert is_image_path(Path(name)), name
    for name in ("a.csv", "a.json", "a", "a.png.txt", "a.gif"):
        assert not is_image_path(Path(name)), name


# --- atomic writes ---------------------------------------------------------------------


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_atomic_text_and_bytes(tmp_path: Path) -> None:
    write_atomic(tmp_path / "sub" / "a.txt", "héllo\n")
    write_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "sub" / "a.txt").read_bytes() == "héllo\n".encode()
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    write_atomic(tmp_path / "b.bin", b"new")
    assert (tmp_path / "b.bin").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.bin", "sub"]


def test_atomic_path_commits_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("1,2\n")
        assert not target.exists()
    assert target.read_text() == "1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_path_leaves_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_written_file_mode_follows_umask(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a.txt", "x")
    mode = (tmp_path / "a.txt").stat().st_mode & 0o777
    assert mode == 0o666 & ~current_umask()
    assert mode != 0o600


def test_written_file_mode_follows_a_changed_umask(tmp_path: Path) -> None:
    # A process may set its umask after importing the package (a daemon, a test runner).
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a.txt", "x")
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o640


def test_unwritable_target_raises_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("I am a file, not a folder")
    with pytest.raises(OutputError, match="file"):
        write_atomic(blocker / "x.csv", "1\n")
