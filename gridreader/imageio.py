"""Reading images safely and writing outputs atomically."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gridreader.errors import ImageLoadError, OutputError, one_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MIN_SIDE = 32
MAX_SIDE = 10_000
MAX_PIXELS = 60_000_000
MAX_FILE_BYTES = 200 * 1024 * 1024

# We enforce our own (stricter) size limits before decoding; Pillow's bomb check
# would otherwise warn or raise with its own wording.
Image.MAX_IMAGE_PIXELS = None


def is_image_path(path: Path) -> bool:
    """Whether ``path`` has one of the image suffixes the pipeline reads."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(
    source: str | os.PathLike[str] | bytes, name: str | None = None, *, min_side: int = MIN_SIDE
) -> np.ndarray:
    """Decode an image file or bytes into an ``HxWx3`` uint8 RGB array.

    The header is checked before any pixel is decoded, so a small file claiming a
    huge image is refused cheaply. Transparency is composited onto white, which is
    what a browser shows behind a transparent screenshot.

    Args:
        source: a path, or the encoded bytes.
        name: the name to use in errors when ``source`` is bytes.
        min_side: smallest accepted width/height; whole tables need 32 px, a
            single cell crop can be much smaller.

    Raises:
        ImageLoadError: unreadable, truncated, too small or too large input.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    if isinstance(source, bytes):
        data = source
    else:
        try:
            size = os.path.getsize(source)
            if size > MAX_FILE_BYTES:
                raise ImageLoadError(
                    f"{label}: file is {size} bytes, over the {MAX_FILE_BYTES} limit"
                )
            with open(source, "rb") as f:
                data = f.read()
        except ImageLoadError:
            raise
        except OSError as e:
            raise ImageLoadError(f"{label}: cannot read file ({e.strerror or e})") from e
    if not data:
        raise ImageLoadError(f"{label}: file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            _check_size(label, w, h, min_side)
            fast = _decode_plain(im, data)
            if fast is not None:
                return fast
            im.load()
            arr = _to_rgb(im)
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        if isinstance(e, UnidentifiedImageError):
            # Pillow's message names its in-memory buffer, not the file.
            raise ImageLoadError(
                f"{label}: not a readable image (unknown or unsupported format)"
            ) from e
        raise ImageLoadError(f"{label}: corrupt image ({one_line(e, 160)})") from e
    except (MemoryError, Image.DecompressionBombError) as e:
        raise ImageLoadError(f"{label}: image too large to decode") from e
    return arr


def _check_size(label: str, w: int, h: int, min_side: int = MIN_SIDE) -> None:
    if w < min_side or h < min_side:
        raise ImageLoadError(f"{label}: image is {w}x{h} px, below the {min_side} px minimum side")
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise ImageLoadError(
            f"{label}: image claims {w}x{h} px, over the {MAX_SIDE} px / {MAX_PIXELS} pixel limit"
        )


_JPEG_END = b"\xff\xd9"


def _decode_plain(im: Image.Image, data: bytes) -> np.ndarray | None:
    """The RGB pixels of a complete RGB or gray JPEG, decoded by OpenCV, else
    ``None`` (Pillow decodes it, and reports any damage).

    OpenCV decodes JPEGs in about half Pillow's time, to the same pixels. PNGs
    stay with Pillow: OpenCV's reader inflates every byte of an oversized
    payload behind a plausible header (seconds of CPU for a small file), where
    Pillow stops at the last row the header promises.
    """
    # The end marker: a truncated file must fail, not decode in part.
    if im.format != "JPEG" or im.mode not in ("RGB", "L") or not data.endswith(_JPEG_END):
        return None
    import cv2

    # Orientation ignored, as Pillow does: pixels as stored.
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is None or bgr.shape[:2] != (im.height, im.width):
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        top = float(a.max()) or 1.0
        g = np.clip(a * (255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        g = ((a - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it into place.

    On any error the temp file is removed and ``path`` is left as it was, so a
    reader never sees a half-written output.

    Raises:
        OutputError: the file could not be written or renamed.
    """
    target = Path(path)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Created like any output file (0666 less the umask), unlike mkstemp's 0600.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from e
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(raw)


def remove_temp_files(folder: Path, *, recursive: bool = False, what: str = "cannot remove") -> int:
    """Remove the temp files ``atomic_path`` names (``.NAME.XXXX.tmp``) in ``folder``
    (and below it, if ``recursive``): a killed run cannot remove its own. Call it
    only where no other writer can be using them. Returns how many went.

    Raises:
        OutputError: one could not be removed.
    """
    if not folder.is_dir():
        return 0
    found = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    count = 0
    for p in found:
        if p.is_file():
            remove_file(p, what)
            count += 1
    return count


def remove_file(path: str | os.PathLike[str], what: str = "cannot remove") -> None:
    """Delete ``path`` if it exists.

    Raises:
        OutputError: it exists and could not be deleted (``what`` says why it mattered).
    """
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise OutputError(f"{path}: {what} ({e.strerror or e})") from e


def encode_png(img: np.ndarray) -> bytes:
    """Encode a gray or RGB uint8 array as PNG bytes."""
    import cv2

    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
    # Level 1: crops and strips are small, and the nightly run writes many.
    # OpenCV's encoder takes about half Pillow's time.
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OutputError(f"cannot encode a {img.shape} image as PNG")
    return buf.tobytes()
