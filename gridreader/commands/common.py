"""Argument types shared by the verbs."""

from __future__ import annotations

import argparse


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


def unit_float(text: str) -> float:
    """A number between 0 and 1."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {v}")
    return v
