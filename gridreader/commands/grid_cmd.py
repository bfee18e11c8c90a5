"""``gridreader grid``: find tables and show their cells."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gridreader.commands.common import add_shape_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="find the table in images and report its cells")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument(
        "--overlay", type=Path, default=None, help="write copies with the cells drawn here"
    )
    add_shape_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gridreader.errors import GridReaderError
    from gridreader.grid import cell_boxes, find_grid
    from gridreader.imageio import encode_png, load_image, write_atomic
    from gridreader.overlay import draw_cells

    failed = 0
    for path in args.images:
        try:
            image = load_image(path)
            grid = find_grid(image, shape=args.shape)
        except GridReaderError as e:
            msg = str(e)
            print(
                f"gridreader grid: error: {msg if str(path) in msg else f'{path}: {msg}'}",
                file=sys.stderr,
            )
            failed += 1
            continue
        cells = cell_boxes(grid)
        if args.json:
            print(
                json.dumps(
                    {
                        "image": str(path),
                        "rows": grid.rows,
                        "cols": grid.cols,
                        "cells": [{"row": c.row, "col": c.col, "box": list(c.box)} for c in cells],
                    }
                )
            )
        else:
            print(f"{path}: {grid.rows} rows x {grid.cols} cols ({grid.style})")
        if args.overlay is not None:
            write_atomic(
                args.overlay / f"{path.stem}.overlay.png", encode_png(draw_cells(image, cells))
            )
    return 1 if failed else 0
