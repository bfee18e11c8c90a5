"""``gridreader read``: one image, one table on stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gridreader.commands.common import add_shape_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("read", help="print the table in one image as CSV")
    p.add_argument("image", type=Path)
    p.add_argument(
        "--model", type=Path, default=None, help="model folder (default: models/DEFAULT)"
    )
    add_shape_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gridreader.model import load_classifier
    from gridreader.pipeline import read_image, table_csv

    classifier = load_classifier(args.model)
    sys.stdout.write(table_csv(read_image(args.image, classifier, shape=args.shape)))
    return 0
