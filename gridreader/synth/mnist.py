"""Loading MNIST digits from a keras ``.npz``, IDX files or CSV files.

Whatever the source, the result is the keras layout: ``28x28`` uint8 images,
white ink on black, and uint8 labels ``0..9``.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridreader.errors import DataError

SIDE = 28
_IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_CSV_NAMES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}
# IDX type codes -> numpy big-endian dtypes.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True, eq=False)
class MnistData:
    """MNIST digits, keras layout: images ``(N, 28, 28)`` uint8 white on black."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_mnist(source: str | os.PathLike[str] | None = None) -> MnistData:
    """Load MNIST from a file or folder, or download it with keras.

    Args:
        source: a keras-layout ``.npz``; a folder holding the four IDX files
            (gzipped or not), or the path of one of them; a label-first CSV file
            (train only, empty test) or a folder holding ``mnist_train.csv`` and
            ``mnist_test.csv``. ``None`` downloads through keras.

    Raises:
        DataError: the source is missing, of an unknown kind, or malformed.
    """
    if source is None:
        return _load_keras()
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: MNIST source does not exist")
    if path.is_dir():
        return _load_dir(path)
    name = path.name.lower()
    if name.endswith(".npz"):
        return _load_npz(path)
    if name.endswith((".csv", ".csv.gz")):
        x, y = _read_csv(path)
        return _checked(path, x, y, np.zeros((0, SIDE, SIDE), np.uint8), np.zeros(0, np.uint8))
    if "idx" in name and "ubyte" in name:
        return _load_dir(path.parent)
    raise DataError(f"{path}: not an MNIST .npz, IDX or CSV file")


def _load_keras() -> MnistData:
    try:
        import keras

        (x_tr, y_tr), (x_te, y_te) = keras.datasets.mnist.load_data()
    except Exception as e:
        raise DataError(
            f"cannot download MNIST through keras ({type(e).__name__}: {e}); "
            "pass --mnist PATH to a local .npz, IDX or CSV copy"
        ) from None
    return _checked(Path("keras:mnist.npz"), x_tr, y_tr, x_te, y_te)


def _load_npz(path: Path) -> MnistData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _IDX_NAMES if k not in npz.files]
            if missing:
                raise DataError(f"{path}: missing arrays {', '.join(missing)}")
            arrays = {k: npz[k] for k in _IDX_NAMES}
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: cannot read .npz ({type(e).__name__}: {e})") from None
    return _checked(path, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])


def _load_dir(folder: Path) -> MnistData:
    idx = {key: _find_idx(folder, stem) for key, stem in _IDX_NAMES.items()}
    if all(p is not None for p in idx.values()):
        arrays = {key: _read_idx(p) for key, p in idx.items() if p is not None}
        return _checked(
            folder, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]
        )
    train, test = folder / _CSV_NAMES["train"], folder / _CSV_NAMES["test"]
    if train.is_file():
        x_tr, y_tr = _read_csv(train)
        if test.is_file():
            x_te, y_te = _read_csv(test)
        else:
            x_te, y_te = np.zeros((0, SIDE, SIDE), np.uint8), np.zeros(0, np.uint8)
        return _checked(folder, x_tr, y_tr, x_te, y_te)
    found = [k for k, p in idx.items() if p is not None]
    if found:
        missing = [_IDX_NAMES[k] for k in _IDX_NAMES if k not in found]
        raise DataError(f"{folder}: missing IDX files {', '.join(missing)}")
    raise DataError(f"{folder}: holds neither the MNIST IDX files nor {_CSV_NAMES['train']}")


def _find_idx(folder: Path, stem: str) -> Path | None:
    # Some mirrors write "train-images.idx3-ubyte"; accept both spellings.
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in (".gz", ""):
            p = folder / f"{name}{suffix}"
            if p.is_file():
                return p
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file: magic ``0 0 type ndim``, big-endian int32 dims, data."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype = _IDX_DTYPES.get(raw[2])
    ndim = raw[3]
    if dtype is None or ndim == 0:
        raise DataError(f"{path}: not an IDX file (type 0x{raw[2]:02x}, {ndim} dims)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header is truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    count = int(np.prod(dims))
    if len(raw) != header + count * dtype.itemsize:
        raise DataError(
            f"{path}: IDX data is {len(raw) - header} bytes, dims {dims} need "
            f"{count * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype, count, header).reshape(dims)


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a label-first CSV (``label,pix0..pix783``), with or without header."""
    import pandas as pd

    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt") as f:
            text = f.read()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    first = text.split("\n", 1)[0].split(",", 1)[0].strip().strip('"')
    has_header = not first.lstrip("-").isdigit()
    try:
        frame = pd.read_csv(io.StringIO(text), header=0 if has_header else None)
    except Exception as e:
        raise DataError(f"{path}: cannot parse CSV ({type(e).__name__}: {e})") from None
    if frame.shape[1] != 1 + SIDE * SIDE:
        raise DataError(f"{path}: CSV rows have {frame.shape[1]} fields, need {1 + SIDE * SIDE}")
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: CSV holds non-numeric values") from None
    if np.isnan(values).any():
        raise DataError(f"{path}: CSV has empty fields")
    return values[:, 1:].reshape(-1, SIDE, SIDE), values[:, 0]


def _checked(
    source: Path, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray
) -> MnistData:
    if len(x_tr) == 0:
        raise DataError(f"{source}: no training digits")
    return MnistData(
        x_train=_as_images(source, "x_train", x_tr),
        y_train=_as_labels(source, "y_train", y_tr, len(x_tr)),
        x_test=_as_images(source, "x_test", x_te),
        y_test=_as_labels(source, "y_test", y_te, len(x_te)),
    )


def _as_uint8(source: Path, key: str, a: np.ndarray, top: int) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iuf":
        raise DataError(f"{source}: {key} has dtype {a.dtype}, need integers")
    if a.size == 0:
        return a.astype(np.uint8)
    if a.dtype.kind == "f" and not np.array_equal(a, np.round(a)):
        raise DataError(f"{source}: {key} holds non-integer values")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0 or hi > top:
        raise DataError(f"{source}: {key} values span {lo:g}..{hi:g}, need 0..{top}")
    return np.ascontiguousarray(a, dtype=np.uint8)


def _as_images(source: Path, key: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == SIDE * SIDE:
        x = x.reshape(-1, SIDE, SIDE)
    if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{source}: {key} has shape {x.shape}, need (N, {SIDE}, {SIDE})")
    return _as_uint8(source, key, x, 255)


def _as_labels(source: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{source}: {key} has shape {y.shape}, need ({n},) to match the images")
    return _as_uint8(source, key, y, 9)
