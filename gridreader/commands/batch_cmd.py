"""``gridreader batch``: the main job."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from gridreader.commands.common import (
    add_cluster_option,
    add_shape_option,
    add_workers_option,
    positive_int,
    unit_float,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="read every image in a folder into CSV files")
    p.add_argument("input_dir", type=Path, help="folder of images (png, jpg, webp, bmp, tif)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--model", type=Path, default=None, help="model folder (default: models/DEFAULT)"
    )
    p.add_argument("--force", action="store_true", help="redo images whose outputs are up to date")
    p.add_argument(
        "--review-below",
        type=unit_float,
        default=0.9,
        help="cells under this confidence go to OUT/review/ (default 0.9)",
    )
    add_shape_option(p)
    add_workers_option(p)
    add_cluster_option(p)
    p.add_argument(
        "--chunk",
        type=positive_int,
        default=None,
        help="with --cluster: images per task (default 16)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gridreader.batch import list_images, run_batch
    from gridreader.model import load_classifier

    list_images(args.input_dir)  # a missing folder is a usage error, before the model loads
    with contextlib.ExitStack() as stack:
        if args.cluster is None:
            from gridreader.pipeline import start_workers

            # The workers start up while the model loads.
            pool = stack.enter_context(start_workers(args.workers))
            classifier = load_classifier(args.model)
            reader = None
        else:
            from gridreader.cluster import CHUNK_IMAGES, cluster_reader, connect_cluster

            # An unreachable scheduler is found before the model loads.
            cluster = stack.enter_context(connect_cluster(args.cluster))
            if cluster.dashboard:
                print(f"gridreader batch: dashboard {cluster.dashboard}", file=sys.stderr)
            pool = None
            classifier = load_classifier(args.model)
            chunk = args.chunk or CHUNK_IMAGES
            reader = cluster_reader(cluster, classifier, args.review_below, chunk, args.shape)
        s = run_batch(
            args.input_dir,
            args.out,
            classifier,
            force=args.force,
            review_below=args.review_below,
            shape=args.shape,
            workers=args.workers,
            pool=pool,
            reader=reader,
            log=lambda m: print(f"gridreader batch: error: {m}", file=sys.stderr),
            warn=lambda m: print(f"gridreader batch: warning: {m}", file=sys.stderr),
        )
    print(
        f"{s.images} images: {s.ok} read, {s.failed} failed, {s.skipped} up to date; "
        f"{s.cells} cells, {s.review} to review; {s.seconds:.1f} s",
        file=sys.stderr,
    )
    return s.exit_code
