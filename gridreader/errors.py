"""The project's exceptions.

Every failure a user can cause or meet is one of these. The CLI turns them into a
one-line message and an exit code; nothing below ``main`` prints or exits.
"""

from __future__ import annotations


class GridReaderError(Exception):
    """Base class of every error this project raises on purpose."""


class UsageError(GridReaderError):
    """The command was called wrongly (missing input folder, bad option value)."""


class ImageLoadError(GridReaderError):
    """An input image cannot be read, is too small, too large, or corrupt."""


class NoTableError(GridReaderError):
    """An image was read, but no table was found in it."""


class ModelError(GridReaderError):
    """A model file or model card is missing, unreadable or inconsistent."""


class DataError(GridReaderError):
    """Training or label data is missing or malformed."""


class ConfigError(GridReaderError):
    """A configuration file is missing, malformed, or has a bad key."""


class OutputError(GridReaderError):
    """An output could not be written (disk full, permissions, ...)."""


class CaptureError(GridReaderError):
    """A web capture failed: unreachable page, failed login, missing selector."""


class LabelError(GridReaderError):
    """A label is invalid, or the label store cannot be used."""


class LockedError(GridReaderError):
    """Another run holds the lock."""


def one_line(e: BaseException, limit: int | None = 200, text: str | None = None) -> str:
    """The first line of ``text`` (default: ``str(e)``), or the exception's type
    name when it is blank; at most ``limit`` characters (``None``: any), for
    one-line messages."""
    text = str(e) if text is None else text
    line = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return line[:limit]


class ClusterError(GridReaderError):
    """A Dask cluster cannot be reached, has no workers, or lost the work."""
