"""Geometry from the page: ``capture`` records every cell's box from the DOM in the
sidecar, and ``batch`` cuts the cells there instead of searching, with real
headless Chromium against a page served on 127.0.0.1 by this module."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gridreader.cli import main

ROWS, COLS = 6, 7
# Numbers in every column but the last, which is empty: the picture alone
# cannot tell that column is there, the page can.
VALUES = [
    [(7 * r + 5 * c) % 37 if c < COLS - 1 else None for c in range(COLS)] for r in range(ROWS)
]
PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><style>"
    "body{margin:0;padding:24px;font:16px 'DejaVu Sans',sans-serif;background:#fff}"
    ".card{border:1px solid #ccc;border-radius:6px;padding:10px;display:inline-block}"
    "table{border-collapse:collapse}"
    "th,td{padding:6px 14px;text-align:right;min-width:24px}"
    "th{border-bottom:2px solid #333}"
    "</style></head><body><h1>Results</h1><p>Updated 12 times since 2024.</p>"
    "<div class='card' id='card'><div>Last 117 results</div><table id='t'><thead><tr>"
    + "".join(f"<th>Col {c + 1}</th>" for c in range(COLS))
    + "</tr></thead><tbody>"
    + "".join(
        "<tr>" + "".join(f"<td>{'' if v is None else v}</td>" for v in row) + "</tr>"
        for row in VALUES
    )
    + "</tbody></table></div></body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/table"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def captured(page_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page's table captured at a device pixel ratio of 1.25: the PNG's path."""
    folder = tmp_path_factory.mktemp("geometry")
    config = folder / "capture.toml"
    config.write_text(
        "[browser]\nwindow = [900, 700]\nscale = 1.25\ntimeout_s = 10\n"
        f'[[target]]\nname = "scores"\nurl = "{page_url}"\ntable = "#card"\nshape = "6x7"\n',
        encoding="utf-8",
    )
    out = folder / "screens"
    assert main(["capture", str(config), "--out", str(out)]) == 0
    (png,) = out.glob("scores-*.png")
    return png


def _batch(src: Path, out: Path) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["batch", str(src), "--out", str(out), "--workers", "1"])
    return code, err.getvalue().splitlines()


def _copy(png: Path, folder: Path) -> Path:
    folder.mkdir()
    shutil.copy(png, folder / png.name)
    shutil.copy(png.with_suffix(".json"), folder / f"{png.stem}.json")
    return folder / png.name


def _table(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open(encoding="utf-8")))


pytestmark = pytest.mark.browser


def test_sidecar_records_the_cells_in_image_pixels(captured: Path) -> None:
    side = json.loads(captured.with_suffix(".json").read_text())
    cells = side["cells"]
    assert (cells["rows"], cells["cols"], cells["header_rows"]) == (ROWS, COLS, 1)
    assert side["shape"] == [ROWS, COLS]
    w, h = Image.open(captured).size
    assert side["image_size"] == [w, h]
    boxes = np.asarray(cells["boxes"])
    assert boxes.shape == (ROWS, COLS, 4)
    # Inside the image (the card's title and the header row lie above the cells);
    # cells of a collapsed table touch, so rows and columns share their edges.
    assert boxes[..., :2].min() >= 0 and boxes[..., 2].max() <= w and boxes[..., 3].max() <= h
    assert boxes[0, 0, 1] > 30 * 1.25
    assert np.allclose(boxes[1:, :, 1], boxes[:-1, :, 3])
    assert np.allclose(boxes[:, 1:, 0], boxes[:, :-1, 2])
    # Device pixels: the CSS padding (6 px top and bottom) and the 16 px font
    # make rows over 28 CSS px, so over 35 screenshot px at 1.25.
    assert (boxes[..., 3] - boxes[..., 1]).min() > 35


def test_batch_reads_the_table_from_the_page_boxes(captured: Path, tmp_path: Path) -> None:
    src = _copy(captured, tmp_path / "in")
    code, err = _batch(src.parent, tmp_path / "out")
    assert code == 0, err
    assert not [line for line in err if "warning" in line or "error" in line]
    truth = [["" if v is None else str(v) for v in row] for row in VALUES]
    assert _table(tmp_path / "out" / f"{src.stem}.csv") == truth
    (record,) = [
        json.loads(x) for x in (tmp_path / "out" / "report.jsonl").read_text().split("\n") if x
    ]
    boxes = json.loads(src.with_suffix(".json").read_text())["cells"]["boxes"]
    for cell in record["cells"]:
        x0, y0, x1, y1 = boxes[cell["row"]][cell["col"]]
        assert cell["box"] == [math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)]


def test_batch_follows_the_page_boxes_not_a_search(captured: Path, tmp_path: Path) -> None:
    # The sidecar's cells cut down to the first three rows and four columns:
    # the outputs follow them exactly.
    src = _copy(captured, tmp_path / "in")
    side_path = src.with_suffix(".json")
    side = json.loads(side_path.read_text())
    side["cells"]["boxes"] = [row[:4] for row in side["cells"]["boxes"][:3]]
    side["cells"]["rows"], side["cells"]["cols"] = 3, 4
    side["shape"] = None
    side_path.write_text(json.dumps(side))
    code, err = _batch(src.parent, tmp_path / "out")
    assert code == 0, err
    truth = [[str(v) for v in row[:4]] for row in VALUES[:3]]
    assert _table(tmp_path / "out" / f"{src.stem}.csv") == truth


def test_a_sidecar_of_another_size_is_ignored_with_a_warning(
    captured: Path, tmp_path: Path
) -> None:
    src = _copy(captured, tmp_path / "in")
    img = Image.open(src)
    img.resize((img.width * 4 // 5, img.height * 4 // 5), Image.Resampling.LANCZOS).save(src)
    code, err = _batch(src.parent, tmp_path / "out")
    warnings = [line for line in err if "warning" in line]
    assert len(warnings) == 1, err
    assert str(src.with_suffix(".json")) in warnings[0] and "ignored" in warnings[0]
    # The picture was searched instead: a table came out, or a one-line error.
    (record,) = [
        json.loads(x) for x in (tmp_path / "out" / "report.jsonl").read_text().split("\n") if x
    ]
    assert record["status"] in ("ok", "error")
    assert code == (0 if record["status"] == "ok" else 1)
