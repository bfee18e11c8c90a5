"""Argument types shared by the verbs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridreader.cluster import ClusterSpec

from gridreader.types import Shape, parse_shape


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {v}")
    return v


def worker_count(text: str) -> int:
    """``auto`` (one per available core, at most 8) or an integer of at least 1."""
    if text == "auto":
        from gridreader.pipeline import default_workers

        return default_workers()
    return positive_int(text)


def add_workers_option(p: argparse.ArgumentParser) -> None:
    """``--workers``: processes finding grids, ``auto`` by default."""
    p.add_argument(
        "--workers",
        type=worker_count,
        default="auto",
        help="processes finding grids: a number, or auto (one per core, the default)",
    )


def cluster_spec(text: str) -> ClusterSpec:
    """``local:N`` or a Dask scheduler's address (see :func:`gridreader.cluster.parse_cluster`)."""
    from gridreader.cluster import parse_cluster
    from gridreader.errors import UsageError

    try:
        return parse_cluster(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_cluster_option(p: argparse.ArgumentParser) -> None:
    """``--cluster``: run on a Dask cluster instead of this machine's processes."""
    p.add_argument(
        "--cluster",
        type=cluster_spec,
        default=None,
        metavar="ADDRESS",
        help="read on a Dask cluster: tcp://HOST:8786 (a running scheduler) or local:N "
        "(N worker processes here); the workers must see the input and model paths",
    )


def unit_float(text: str) -> float:
    """A number between 0 and 1."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {v}")
    return v


def shape_hint(text: str) -> Shape:
    """``ROWSxCOLS``, e.g. ``8x15``."""
    try:
        return parse_shape(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_shape_option(p: argparse.ArgumentParser) -> None:
    """``--shape ROWSxCOLS``: the table's known shape."""
    p.add_argument(
        "--shape",
        type=shape_hint,
        default=None,
        metavar="ROWSxCOLS",
        help="the table has this many rows and columns: find that grid or fail the image",
    )
