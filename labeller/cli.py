"""``gridreader label`` (the web app) and ``gridreader labels export``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from labeller.export import EXPORT_FORMATS


def register(subparsers: Any) -> None:
    """Add the ``label`` and ``labels`` verbs."""
    p = subparsers.add_parser(
        "label",
        help="label uncertain cells in a local web app",
        description=(
            "Serve the review crops that `gridreader batch` left in OUT/review/ in a local "
            "web app; every answer is committed to the label store at once."
        ),
    )
    p.add_argument("review_dirs", nargs="+", type=Path, metavar="REVIEW_DIR")
    p.add_argument("--db", type=Path, default=Path("labels.db"), help="label store (labels.db)")
    p.add_argument("--port", type=_port, default=8765, help="port (8765; 0 picks a free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (127.0.0.1; anything else exposes the app to the network)",
    )
    p.set_defaults(func=run_label)

    labels = subparsers.add_parser("labels", help="work with the label store")
    actions = labels.add_subparsers(dest="labels_action", metavar="ACTION", parser_class=type(p))
    actions.required = True
    export = actions.add_parser(
        "export",
        help="write the stored labels as a CSV or as one folder per class",
        description=(
            "csv: DIR/labels.csv (path,label) with crops under DIR/crops/; "
            "folders: DIR/<label>/<sha256>.png. DIR is replaced as a whole."
        ),
    )
    export.add_argument("--db", type=Path, default=Path("labels.db"), help="label store")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    export.add_argument("--out", type=Path, required=True, metavar="DIR")
    export.set_defaults(func=run_export)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not in 0..65535")
    return value


def run_label(args: argparse.Namespace) -> int:
    """Index the review folders, open the store and serve until Ctrl-C."""
    # Flask and OpenCV load only when this verb runs, not for every `gridreader` call.
    from labeller.app import LOCAL_HOSTS, create_app, serve
    from labeller.review import LiveReviewIndex
    from labeller.store import LabelStore

    # Crops that a running `batch` adds later join the queue (see LiveReviewIndex).
    index = LiveReviewIndex(args.review_dirs)
    for problem in index.problems:
        print(f"gridreader label: warning: skipped {problem}", file=sys.stderr)
    store = LabelStore(args.db)
    app = create_app(index, store, host=args.host)
    state = app.extensions["gridreader_labeller"]
    progress = state.progress()
    if args.host not in LOCAL_HOSTS:
        print(
            f"gridreader label: warning: bound to {args.host!r}, reachable from the network",
            file=sys.stderr,
        )

    def ready(url: str) -> None:
        dupes = f", {index.duplicates} duplicate crops merged" if index.duplicates else ""
        print(
            f"gridreader label: {progress['total']} crops, {progress['labelled']} already "
            f"labelled{dupes}; store {args.db}; new crops in the folders join the queue",
            flush=True,
        )
        print(f"gridreader label: serving on {url} (Ctrl-C stops)", flush=True)

    # werkzeug's loop swallows the first Ctrl-C itself; a second one may land here.
    with _sigterm_as_interrupt(), contextlib.suppress(KeyboardInterrupt):
        serve(app, args.host, args.port, ready=ready)
    print("gridreader label: stopped; every label is saved", flush=True)
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let ``kill`` stop the server the way Ctrl-C does (labels are committed anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_export(args: argparse.Namespace) -> int:
    """Export the label store to ``--out``."""
    from labeller.export import export_labels
    from labeller.store import LabelStore

    store = LabelStore(args.db, create=False)
    count = export_labels(store, args.out, args.format)
    print(f"gridreader labels export: {count} labels written to {args.out} ({args.format})")
    return 0
