"""``model.tflite`` from ``model.keras``: the conversion for LiteRT, and the
check that decides whether smaller weights may be served.

A quantised file is kept only if, on every cell of the check images, it gives
the same class as the float32 conversion and a confidence within
:data:`MAX_CONFIDENCE_CHANGE`; otherwise the float32 file is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridreader.errors import DataError
from gridreader.imageio import is_image_path, write_atomic
from gridreader.model import (
    CARD_FILE,
    MODELS_DIR,
    PRECISIONS,
    PREDICT_BATCH,
    TFLITE_FILE,
    default_threads,
    load_network,
    open_interpreter,
    run_interpreter,
    serving_entry,
    to_tflite,
)

MAX_CONFIDENCE_CHANGE = 0.01
DEV_BENCH = MODELS_DIR.parent / "data" / "bench" / "dev"
"""The default check images (the project's labelled dev bench, all styles)."""


@dataclass(frozen=True)
class QuantisationCheck:
    """How a quantised conversion compared with float32 on the check cells."""

    precision: str
    cells: int
    class_changes: int
    max_confidence_change: float

    @property
    def passed(self) -> bool:
        return (
            self.cells > 0
            and self.class_changes == 0
            and self.max_confidence_change <= MAX_CONFIDENCE_CHANGE
        )


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote."""

    path: Path
    precision: str
    bytes: int
    check: QuantisationCheck | None


def find_check_images(folders: Sequence[Path]) -> list[Path]:
    """Images in ``folders`` and their direct sub-folders, sorted.

    Raises:
        DataError: a folder is missing or holds no image.
    """
    images: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise DataError(f"{folder}: check folder not found")
        found = sorted(
            p for p in [*folder.iterdir(), *folder.glob("*/*")] if p.is_file() and is_image_path(p)
        )
        if not found:
            raise DataError(f"{folder}: no images to check the quantised model on")
        images += found
    return images


def check_inputs(images: Sequence[Path], input_size: tuple[int, int]) -> np.ndarray:
    """Every cell of ``images`` prepared for the network (images without a table are skipped)."""
    from gridreader.pipeline import Analysed, analyse_safely

    batches = [
        a.inputs for a in (analyse_safely(p, input_size) for p in images) if isinstance(a, Analysed)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, *input_size, 1), np.uint8)


def predict_tflite(
    data: bytes, inputs: np.ndarray, name: Path, batch: int = PREDICT_BATCH
) -> np.ndarray:
    """Class probabilities of a ``.tflite`` model's bytes on prepared crops."""
    from gridreader.preprocess import dequantise

    interpreter = open_interpreter(data, default_threads(), name)
    return np.concatenate(
        [
            run_interpreter(interpreter, dequantise(inputs[i : i + batch]))
            for i in range(0, len(inputs), batch)
        ]
    )


def compare_outputs(precision: str, exact: np.ndarray, quantised: np.ndarray) -> QuantisationCheck:
    """Class changes and the largest confidence change between two runs."""
    if len(exact) == 0:
        return QuantisationCheck(precision, 0, 0, 0.0)
    idx = exact.argmax(axis=1)
    rows = np.arange(len(idx))
    changes = int((quantised.argmax(axis=1) != idx).sum())
    drift = float(np.abs(quantised.max(axis=1) - exact[rows, idx]).max())
    return QuantisationCheck(precision, len(idx), changes, round(drift, 5))


def export_model(
    model_dir: Path,
    precision: str = "float32",
    check_folders: Sequence[Path] = (),
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Write ``model_dir/model.tflite`` from its ``model.keras``, and record it in the card.

    With a ``precision`` other than float32, the quantised conversion is served
    only if it passes the check on ``check_folders`` (default: the dev bench);
    otherwise float32 is written and the card says why.

    Raises:
        ModelError: unusable model folder, or the conversion failed.
        DataError: the check folders are missing or hold no images.
    """
    trainable = load_network(model_dir)
    card, network = dict(trainable.card), trainable.network
    exact = to_tflite(network)
    out, used, check = exact, "float32", None
    if precision != "float32":
        folders = list(check_folders) or [DEV_BENCH]
        images = find_check_images(folders)
        size = (int(card["input_size"][0]), int(card["input_size"][1]))
        inputs = check_inputs(images, size)
        candidate = to_tflite(network, precision)
        name = model_dir / TFLITE_FILE
        check = compare_outputs(
            precision,
            predict_tflite(exact, inputs, name),
            predict_tflite(candidate, inputs, name),
        )
        log(
            f"{precision}: {check.class_changes} of {check.cells} classes changed, "
            f"confidences moved by up to {check.max_confidence_change:.4f}"
        )
        if check.passed:
            out, used = candidate, precision
        else:
            log(f"{precision} changes the readings; serving float32")
    extra: dict[str, Any] = {}
    if check is not None:
        extra["quantisation_check"] = {
            "tried": check.precision,
            "images": [_shown(f) for f in (list(check_folders) or [DEV_BENCH])],
            "cells": check.cells,
            "class_changes": check.class_changes,
            "max_confidence_change": check.max_confidence_change,
            "rule": f"served only with no class change and confidences within {MAX_CONFIDENCE_CHANGE}",
            "passed": check.passed,
        }
    write_atomic(model_dir / TFLITE_FILE, out)
    card["serving"] = serving_entry(out, used, **extra)
    write_atomic(model_dir / CARD_FILE, json.dumps(card, indent=2) + "\n")
    log(f"wrote {model_dir / TFLITE_FILE} ({used}, {len(out):,} bytes)")
    return ExportResult(model_dir / TFLITE_FILE, used, len(out), check)


def _shown(folder: Path) -> str:
    # Cards travel with the repository: paths inside it are kept relative.
    try:
        return str(folder.resolve().relative_to(MODELS_DIR.parent))
    except ValueError:
        return str(folder)


__all__ = [
    "DEV_BENCH",
    "MAX_CONFIDENCE_CHANGE",
    "PRECISIONS",
    "ExportResult",
    "QuantisationCheck",
    "compare_outputs",
    "export_model",
    "find_check_images",
]
