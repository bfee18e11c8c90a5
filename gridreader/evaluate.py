"""``gridreader eval``: the project's benchmark.

Runs the real main job (image files to CSVs, review queue included) over a
folder with truth tables, then scores the CSVs the way
``data/bench/score.py`` does and times the run.
"""

from __future__ import annotations

import csv
import json
import resource
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gridreader.batch import list_images, output_stems, run_batch
from gridreader.errors import UsageError
from gridreader.formats.report import read_report
from gridreader.formats.tables import table_path
from gridreader.host import machine
from gridreader.model import Classifier
from gridreader.pipeline import WorkerPool
from gridreader.types import Shape


@dataclass(frozen=True)
class StyleScore:
    """Scores of one style of table."""

    tables: int
    cells: int
    cell_accuracy: float
    table_exact: float
    shape_accuracy: float


@dataclass(frozen=True)
class EvalResult:
    """Everything ``gridreader eval`` measures."""

    folder: str
    model: str
    tables: int
    cells: int
    cell_accuracy: float
    table_exact: float
    shape_accuracy: float
    failed_images: int
    box_recall: float | None
    per_style: dict[str, StyleScore]
    confusions: list[tuple[str, str, int]]
    seconds: float
    cells_per_second: float
    ms_per_image: float
    peak_rss_mb: float
    workers: int
    machine: str
    mistakes: list[dict[str, Any]] = field(default_factory=list)
    startup_seconds: float | None = None
    """Loading the model and starting the workers, before the timed run."""
    precision: str = "float32"
    """What the served network's weights are stored in (``model.tflite``, see its card)."""
    runtime: str = ""
    """The runtime that ran the network, e.g. ``LiteRT 2.3.0 (XNNPACK, 2 threads)``."""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["confusions"] = [{"truth": t, "predicted": p, "count": n} for t, p, n in self.confusions]
        return d


@dataclass
class _Tally:
    """Running counts over tables (of one style, or all)."""

    tables: int = 0
    cells: int = 0
    right: int = 0
    exact: int = 0
    shapes: int = 0

    def add(self, cells: int, right: int, same_shape: bool) -> None:
        """Count one table: its truth cells, those read right, whether its shape was."""
        self.tables += 1
        self.cells += cells
        self.right += right
        self.exact += right == cells
        self.shapes += same_shape

    def score(self) -> StyleScore:
        return StyleScore(
            self.tables,
            self.cells,
            round(self.right / max(self.cells, 1), 5),
            round(self.exact / self.tables, 4),
            round(self.shapes / self.tables, 4),
        )


def _wrong_cells(image: str, pred: list[list[str]], truth: list[list[str]]) -> list[dict[str, Any]]:
    """The cells of a table of the right shape that were read wrong, in reading order."""
    return [
        {"image": image, "row": r, "col": c, "truth": b, "predicted": a}
        for r, (prow, trow) in enumerate(zip(pred, truth, strict=True))
        for c, (a, b) in enumerate(zip(prow, trow, strict=True))
        if a != b
    ]


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [[_norm(c) for c in row] for row in csv.reader(f) if row]


def _norm(v: str) -> str:
    v = v.strip()
    try:
        return str(int(float(v))) if v else ""
    except ValueError:
        return v


def _found_boxes(out_dir: Path) -> dict[str, list[list[int]]]:
    """Detected cell boxes per image file name, from the batch report."""
    return {
        Path(rec["image"]).name: [c["box"] for c in rec.get("cells", [])]
        for rec in read_report(out_dir, missing_ok=True)
    }


def _box_hits(truth: list[list[list[float]]], found: list[list[int]]) -> tuple[int, int]:
    """How many truth cells have a detected box with IoU >= 0.5."""
    cells = [b for row in truth for b in row]
    if not found:
        return 0, len(cells)
    f = np.asarray(found, float)
    hits = 0
    for x0, y0, x1, y1 in cells:
        iw = np.clip(np.minimum(f[:, 2], x1) - np.maximum(f[:, 0], x0), 0, None)
        ih = np.clip(np.minimum(f[:, 3], y1) - np.maximum(f[:, 1], y0), 0, None)
        inter = iw * ih
        union = (x1 - x0) * (y1 - y0) + (f[:, 2] - f[:, 0]) * (f[:, 3] - f[:, 1]) - inter
        hits += bool((inter / np.maximum(union, 1e-9)).max() >= 0.5)
    return hits, len(cells)


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def evaluate(
    folder: Path,
    classifier: Classifier,
    workers: int = 1,
    pool: WorkerPool | None = None,
    shape: Shape | None = None,
) -> EvalResult:
    """Benchmark ``classifier`` on every image in ``folder`` with a truth CSV.

    The timed run goes from the image files to the written CSVs and review
    queue; workers in ``pool`` were started beforehand, so their start-up is
    not timed (without one, ``workers`` processes are started inside the run).
    ``shape`` is passed to the grid finder as a hint for every image.

    Raises:
        UsageError: the folder has no image with a truth table beside it.
    """
    images = [p for p in list_images(folder) if p.with_suffix(".csv").is_file()]
    if not images:
        raise UsageError(f"{folder}: no images with a truth NAME.csv beside them")
    with tempfile.TemporaryDirectory(prefix="gridreader-eval-") as tmp:
        work, out = Path(tmp) / "in", Path(tmp) / "out"
        work.mkdir()
        for p in images:
            (work / p.name).symlink_to(p.resolve())
        summary = run_batch(
            work,
            out,
            classifier,
            force=True,
            shape=shape,
            workers=workers,
            pool=pool,
            progress=False,
        )
        stems = output_stems(sorted(work.iterdir(), key=lambda q: q.name))
        per: dict[str, _Tally] = {}
        overall = _Tally()
        confusions: Counter[tuple[str, str]] = Counter()
        mistakes: list[dict[str, Any]] = []
        boxes_found = boxes_total = 0
        found = _found_boxes(out)
        for p in images:
            truth = _read_csv(p.with_suffix(".csv"))
            meta = p.with_suffix(".boxes.json")
            meta_json = json.loads(meta.read_text()) if meta.is_file() else {}
            style = meta_json.get("style", "?")
            if "boxes" in meta_json:
                hit, n_boxes = _box_hits(meta_json["boxes"], found.get((work / p.name).name, []))
                boxes_found += hit
                boxes_total += n_boxes
            n = sum(len(r) for r in truth)
            pred_path = table_path(out, stems[work / p.name])
            pred = _read_csv(pred_path) if pred_path.is_file() else None
            same_shape = (
                pred is not None
                and len(pred) == len(truth)
                and all(len(a) == len(b) for a, b in zip(pred, truth, strict=False))
            )
            wrong = _wrong_cells(p.name, pred, truth) if same_shape and pred is not None else []
            for m in wrong:
                confusions[(m["truth"] or "empty", m["predicted"] or "empty")] += 1
            mistakes += wrong
            right = n - len(wrong) if same_shape else 0
            per.setdefault(style, _Tally()).add(n, right, same_shape)
            overall.add(n, right, same_shape)
    cells_read = summary.cells
    return EvalResult(
        folder=str(folder),
        model=classifier.name,
        tables=len(images),
        cells=overall.cells,
        cell_accuracy=overall.score().cell_accuracy,
        table_exact=overall.score().table_exact,
        shape_accuracy=overall.score().shape_accuracy,
        box_recall=round(boxes_found / boxes_total, 5) if boxes_total else None,
        failed_images=summary.failed,
        per_style={k: v.score() for k, v in sorted(per.items())},
        confusions=[(t, p, n) for (t, p), n in confusions.most_common(10)],
        seconds=round(summary.seconds, 3),
        cells_per_second=round(cells_read / max(summary.seconds, 1e-9), 1),
        ms_per_image=round(1000 * summary.seconds / len(images), 1),
        peak_rss_mb=round(_peak_rss_mb(), 1),
        workers=workers,
        machine=machine(),
        precision=classifier.precision,
        runtime=classifier.runtime,
        mistakes=mistakes[:200],
    )


def format_result(r: EvalResult) -> str:
    """A short human-readable report."""
    lines = [
        f"{r.folder}  (model {r.model}, {r.tables} tables, {r.cells} cells, {r.workers} worker(s))",
        f"  cell accuracy   {r.cell_accuracy:.4%}",
        f"  tables exact    {r.table_exact:.2%}",
        f"  shapes right    {r.shape_accuracy:.2%}   failed images: {r.failed_images}",
        *(
            [f"  cells found     {r.box_recall:.2%} of truth cells have a box with IoU >= 0.5"]
            if r.box_recall is not None
            else []
        ),
        "  per style:",
    ]
    for k, s in r.per_style.items():
        lines.append(
            f"    {k:11s} {s.tables:3d} tables  cells {s.cell_accuracy:.4%}  exact {s.table_exact:.2%}"
            f"  shape {s.shape_accuracy:.2%}"
        )
    if r.confusions:
        lines.append("  most frequent confusions (truth -> predicted):")
        lines.extend(f"    {t:>5s} -> {p:<5s} x{n}" for t, p, n in r.confusions)
    lines.append(
        f"  throughput      {r.cells_per_second:.0f} cells/s, {r.ms_per_image:.1f} ms/image "
        f"({r.seconds:.2f} s), peak RSS {r.peak_rss_mb:.0f} MB"
    )
    if r.startup_seconds is not None:
        lines.append(
            f"  start-up        {r.startup_seconds:.2f} s (model load, workers), not timed above"
        )
    lines.append(f"  machine         {r.machine}")
    lines.append(f"  network         {r.runtime}, {r.precision} weights")
    return "\n".join(lines)
