"""``gridreader eval``: accuracy and speed on a labelled folder."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from gridreader.commands.common import add_shape_option, add_workers_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="benchmark a model on images with truth CSVs")
    p.add_argument(
        "folder", type=Path, help="images with NAME.csv (and optional NAME.boxes.json) beside them"
    )
    p.add_argument(
        "--model", type=Path, default=None, help="model folder (default: models/DEFAULT)"
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_workers_option(p)
    add_shape_option(p)
    p.add_argument(
        "--record",
        action="store_true",
        help="store the figures in the model card under metrics.bench.<folder name>",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gridreader.evaluate import evaluate, format_result
    from gridreader.imageio import write_atomic
    from gridreader.model import CARD_FILE, load_classifier
    from gridreader.pipeline import start_workers

    # Start-up (workers importing while the model loads and warms up) is timed
    # apart from the run itself, as the benchmark asks.
    t0 = time.perf_counter()
    with start_workers(args.workers) as pool:
        classifier = load_classifier(args.model)
        startup = time.perf_counter() - t0
        result = evaluate(
            args.folder, classifier, workers=args.workers, pool=pool, shape=args.shape
        )
    result = dataclasses.replace(result, startup_seconds=round(startup, 2))
    data = result.to_json()
    print(json.dumps(data) if args.json else format_result(result))
    if args.record:
        card = dict(classifier.card)
        metrics = dict(card.get("metrics", {}))
        bench = dict(metrics.get("bench", {}))
        bench[args.folder.resolve().name] = {k: v for k, v in data.items() if k != "mistakes"}
        metrics["bench"] = bench
        card["metrics"] = metrics
        write_atomic(classifier.path / CARD_FILE, json.dumps(card, indent=2) + "\n")
    return 0
