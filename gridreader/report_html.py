"""``OUT/report.html``: one page that shows what a batch run read.

The page is built from ``report.jsonl`` (so images skipped as up to date are
on it too) by a pure function, :func:`render_report`, and opens from disk with
no server: no scripts, no external styles, thumbnails as small JPEG files in
``OUT/report/thumbs/`` loaded lazily. Long runs stay fast to open: each entry
is laid out only when scrolled near (``content-visibility``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from gridreader.errors import GridReaderError, OutputError
from gridreader.formats.report import read_report
from gridreader.formats.review import REVIEW_DIR
from gridreader.imageio import load_image, remove_file, write_atomic

REPORT_PAGE = "report.html"
THUMBS = Path("report") / "thumbs"
THUMB_SIDE = 360
"""Thumbnails fit in this many pixels each way: a table's layout, not its digits."""
HIST_BINS = 20

_GRID_RGB = (0, 110, 230)


@dataclass(frozen=True)
class PageEntry:
    """One image on the page: its ``report.jsonl`` record, output stem and thumbnail."""

    record: Mapping[str, Any]
    stem: str
    thumb: str | None = None
    """Path of the thumbnail relative to the page, or ``None`` when there is none."""


def needs_review(confidence: float, below: float) -> bool:
    """The review queue's rule: a cell goes to review when its recorded
    confidence (4 decimals, as in ``report.jsonl``) is under ``below``; ``below``
    of 1 or more sends every cell (a confidence of exactly 1.0 included)."""
    return round(confidence, 4) < below or below >= 1.0


# -- the page ---------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232b;background:#f4f6f8}
header{background:#fff;padding:16px 24px;border-bottom:1px solid #d5dbe1}
h1{font-size:20px;margin:0 0 6px}h2{font-size:15px;margin:0 0 8px}
.counts{display:flex;gap:24px;flex-wrap:wrap;margin:8px 0}
.counts div{font-size:13px;color:#4a5561}.counts b{display:block;font-size:22px;color:#1d232b}
.meta{color:#4a5561;margin:4px 0}
#histogram{margin-top:8px}#histogram svg{display:block}
#failures{background:#fff3f2;border:1px solid #f1b7b2;margin:16px 24px;padding:12px 16px}
#failures li{margin:2px 0}
main{padding:0 24px 24px}
article{background:#fff;border:1px solid #d5dbe1;border-radius:6px;margin:16px 0;padding:12px 16px;
  display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap;
  content-visibility:auto;contain-intrinsic-size:auto 320px}
article.failed{border-color:#e0867d}
article .head{flex-basis:100%}
article .sub{color:#4a5561;font-weight:normal;margin-left:8px}
img.thumb{max-width:360px;max-height:360px;border:1px solid #d5dbe1}
.nothumb{width:160px;padding:24px 0;text-align:center;color:#8a949e;border:1px dashed #c3cbd3}
table.cells{border-collapse:collapse;font:12px/1.2 ui-monospace,monospace}
table.cells td{border:1px solid #dde2e7;min-width:22px;height:18px;padding:1px 4px;text-align:right}
table.cells td.low{background:#ffd9d4;border-color:#e0867d;font-weight:bold}
.error{color:#b3261e;margin:0}
""".strip()


def render_report(
    entries: Sequence[PageEntry],
    review_below: float,
    *,
    title: str,
    review_href: str = "review/",
) -> str:
    """The whole page for ``entries``, in their order.

    Cells under ``review_below`` (the same rule as the review queue, see
    :func:`needs_review`) are highlighted and show their confidence on hover;
    every piece of text from the records is escaped.
    """
    ok = [e for e in entries if e.record.get("status") == "ok"]
    failed = [e for e in entries if e.record.get("status") != "ok"]
    confidences = [float(c["confidence"]) for e in ok for c in e.record.get("cells", [])]
    n_review = sum(needs_review(c, review_below) for c in confidences)
    parts = [
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        # No icon to fetch: a page opened from disk asks for nothing.
        "<link rel='icon' href='data:,'>",
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<header><h1>{escape(title)}</h1>",
        "<div class='counts'>",
        _count("images", len(entries)),
        _count("cells", len(confidences)),
        _count("cells to review", n_review),
        _count("failures", len(failed)),
        "</div>",
        f"<p class='meta'>Cells under confidence {review_below:g} are highlighted "
        f"(hover for the confidence) and sent to the "
        f"<a id='review-link' href='{escape(review_href)}'>review folder</a>."
        + _models(entries)
        + "</p>",
        f"<div id='histogram'>{_histogram(confidences, review_below)}</div></header>",
    ]
    if failed:
        parts.append(f"<section id='failures'><h2>Failures ({len(failed)})</h2><ul>")
        parts += [
            f"<li><a href='#img-{i}'>{escape(_name(e))}</a>: "
            f"{escape(str(e.record.get('error') or 'failed'))}</li>"
            for i, e in enumerate(entries)
            if e.record.get("status") != "ok"
        ]
        parts.append("</ul></section>")
    parts.append("<main>")
    parts += [_entry(i, e, review_below) for i, e in enumerate(entries)]
    parts.append("</main></body></html>\n")
    return "".join(parts)


def _models(entries: Sequence[PageEntry]) -> str:
    names = sorted({str(e.record["model"]) for e in entries if e.record.get("model")})
    return f" Model: {escape(', '.join(names))}." if names else ""


def _count(label: str, n: int) -> str:
    return f"<div><b>{n:,}</b>{escape(label)}</div>"


def _name(e: PageEntry) -> str:
    return Path(str(e.record.get("image", e.stem))).name


def _href(path: str) -> str:
    """A relative path as an escaped URL for an attribute."""
    return escape(quote(path), quote=True)


def _entry(i: int, e: PageEntry, below: float) -> str:
    rec = e.record
    image = str(rec.get("image", ""))
    status = "ok" if rec.get("status") == "ok" else "failed"
    head = (
        f"<article id='img-{i}' class='entry {status}' data-image='{escape(image, quote=True)}'>"
        f"<h2 class='head' title='{escape(image, quote=True)}'>{escape(_name(e))}"
    )
    if rec.get("status") != "ok":
        return (
            f"{head}<span class='sub'>failed</span></h2>"
            f"<p class='error'>{escape(str(rec.get('error') or 'failed'))}</p></article>"
        )
    cells = rec.get("cells", [])
    rows, cols = int(rec.get("rows") or 0), int(rec.get("cols") or 0)
    low = sum(needs_review(float(c["confidence"]), below) for c in cells)
    thumb = (
        f"<img class='thumb' loading='lazy' src='{_href(e.thumb)}' "
        f"alt='{escape(_name(e), quote=True)} with its grid'>"
        if e.thumb
        else "<div class='nothumb'>no picture</div>"
    )
    return (
        f"{head}<span class='sub'>{rows} × {cols}, {low} to review · "
        f"<a href='{_href(e.stem + '.csv')}'>CSV</a></span></h2>"
        f"{thumb}{_table(cells, rows, cols, below)}</article>"
    )


def _table(cells: Sequence[Mapping[str, Any]], rows: int, cols: int, below: float) -> str:
    grid: list[list[str]] = [["<td></td>"] * cols for _ in range(rows)]
    for c in cells:
        r, k = int(c["row"]), int(c["col"])
        if not (0 <= r < rows and 0 <= k < cols):
            continue
        value = "" if c.get("value") is None else escape(str(c["value"]))
        conf = float(c["confidence"])
        if needs_review(conf, below):
            grid[r][k] = f"<td class='low' title='confidence {conf:.4f}'>{value}</td>"
        else:
            grid[r][k] = f"<td title='confidence {conf:.4f}'>{value}</td>"
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in grid)
    return f"<table class='cells'>{body}</table>"


def _histogram(confidences: Sequence[float], below: float) -> str:
    """Cells per confidence band as inline SVG bars; bands under ``below`` in red."""
    counts = [0] * HIST_BINS
    for c in confidences:
        counts[min(HIST_BINS - 1, max(0, int(c * HIST_BINS)))] += 1
    top = max(counts) or 1
    bar_w, h = 18, 60
    bars = []
    for i, n in enumerate(counts):
        lo, hi = i / HIST_BINS, (i + 1) / HIST_BINS
        # A square-root scale: the few doubtful cells stay visible beside the many sure ones.
        bh = 0 if n == 0 else max(1, round(h * math.sqrt(n / top)))
        colour = "#d9534f" if lo < below else "#3d8bd9"
        bars.append(
            f"<rect x='{i * bar_w}' y='{h - bh}' width='{bar_w - 2}' height='{bh}' fill='{colour}'>"
            f"<title>confidence {lo:.2f}–{hi:.2f}: {n:,} cells</title></rect>"
        )
    width = HIST_BINS * bar_w
    axis = (
        f"<text x='0' y='{h + 12}' font-size='10'>0</text>"
        f"<text x='{width - 8}' y='{h + 12}' font-size='10'>1</text>"
        f"<text x='{width / 2 - 40}' y='{h + 12}' font-size='10'>cell confidence</text>"
    )
    return (
        f"<svg role='img' aria-label='cells per confidence band' width='{width}' "
        f"height='{h + 14}' viewBox='0 0 {width} {h + 14}'>{''.join(bars)}{axis}</svg>"
    )


# -- thumbnails -------------------------------------------------------------------------


def draw_thumbnail(table: np.ndarray, row_cuts: Sequence[int], col_cuts: Sequence[int]) -> bytes:
    """A small JPEG of a table's pixels with its row and column edges drawn."""
    import cv2

    rgb = table if table.ndim == 3 else np.repeat(table[:, :, None], 3, axis=2)
    h, w = rgb.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(h, w, 1))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    # An exact integer step by area first (OpenCV's fast path), the rest
    # linear: a third of the CPU of one fractional area step, same look.
    k = max(1, int(1 / scale))
    if k > 1:
        cut = rgb[: h // k * k, : w // k * k]
        rgb = cv2.resize(cut, None, fx=1 / k, fy=1 / k, interpolation=cv2.INTER_AREA)
    small = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_LINEAR)
    bgr = np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    colour = _GRID_RGB[::-1]  # drawn on the BGR copy the encoder takes
    for y in row_cuts:
        yy = min(th - 1, round(y * scale))
        cv2.line(bgr, (0, yy), (tw - 1, yy), colour, 1)
    for x in col_cuts:
        xx = min(tw - 1, round(x * scale))
        cv2.line(bgr, (xx, 0), (xx, th - 1), colour, 1)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 75])
    if not ok:
        raise OutputError(f"cannot encode a {bgr.shape} thumbnail as JPEG")
    return buf.tobytes()


def thumbnail_path(out_dir: Path, stem: str) -> Path:
    """Where the thumbnail of the image with output stem ``stem`` goes."""
    return out_dir / THUMBS / f"{stem}.jpg"


def write_thumbnail(
    out_dir: Path, stem: str, table: np.ndarray, row_cuts: Sequence[int], col_cuts: Sequence[int]
) -> None:
    """Write the thumbnail of one read table (called while its pixels are at hand)."""
    write_atomic(thumbnail_path(out_dir, stem), draw_thumbnail(table, row_cuts, col_cuts))


def _thumbnail_from_file(record: Mapping[str, Any]) -> bytes | None:
    """A thumbnail made again from the image file and its recorded cell boxes,
    for an image read before thumbnails existed; ``None`` if it cannot be read."""
    boxes = [c["box"] for c in record.get("cells", [])]
    if not boxes:
        return None
    try:
        image = load_image(Path(str(record["image"])))
    except (GridReaderError, OSError, KeyError):
        return None
    h, w = image.shape[:2]
    x0 = max(0, min(int(b[0]) for b in boxes))
    y0 = max(0, min(int(b[1]) for b in boxes))
    x1 = min(w, max(int(b[2]) for b in boxes))
    y1 = min(h, max(int(b[3]) for b in boxes))
    if x1 <= x0 or y1 <= y0:
        return None
    ys = sorted({int(b[1]) - y0 for b in boxes} | {int(b[3]) - y0 for b in boxes})
    xs = sorted({int(b[0]) - x0 for b in boxes} | {int(b[2]) - x0 for b in boxes})
    return draw_thumbnail(np.ascontiguousarray(image[y0:y1, x0:x1]), ys, xs)


# -- the file ---------------------------------------------------------------------------


def write_report_page(
    out_dir: Path, review_below: float, stems: Mapping[Path, str] | None = None
) -> Path:
    """Write ``out_dir/report.html`` from ``out_dir/report.jsonl``.

    Thumbnails written during the run are used; an image read by an earlier
    version without one gets it now from its file. Thumbnails of images that
    failed or are gone are removed.

    Args:
        out_dir: the batch output folder.
        review_below: the run's review threshold.
        stems: each image's output stem, as batch named its files (by default
            worked out from the records in the same way).

    Raises:
        OutputError: the report cannot be read or the page cannot be written.
    """
    from gridreader.batch import output_stems

    records = read_report(out_dir)
    paths = [Path(str(r.get("image", ""))) for r in records]
    names = dict(stems) if stems is not None else {}
    fallback = output_stems(paths)
    entries = []
    keep: set[str] = set()
    for rec, path in zip(records, paths, strict=True):
        stem = names.get(path, fallback[path])
        thumb = None
        if rec.get("status") == "ok":
            target = thumbnail_path(out_dir, stem)
            if not target.is_file():
                data = _thumbnail_from_file(rec)
                if data is not None:
                    write_atomic(target, data)
            if target.is_file():
                thumb = target.relative_to(out_dir).as_posix()
                keep.add(target.name)
        entries.append(PageEntry(rec, stem, thumb))
    _remove_other_thumbnails(out_dir / THUMBS, keep)
    # The same records give the same page, byte for byte (a run finished after
    # a crash writes what an uninterrupted one does): no clock, no output path.
    source = paths[0].parent if paths else None
    page = render_report(
        entries,
        review_below,
        title=f"gridreader report: {source}" if source else "gridreader report",
        review_href=f"{REVIEW_DIR}/",
    )
    target = out_dir / REPORT_PAGE
    write_atomic(target, page)
    return target


def _remove_other_thumbnails(folder: Path, keep: set[str]) -> None:
    # Failed and vanished images' thumbnails, and temp files of a killed run.
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name not in keep:
            remove_file(folder / name, "cannot remove an old thumbnail")
