"""``gridreader nightly``: capture, read and summarise one day, safe to re-run."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path

from gridreader.commands.common import add_workers_option

EXIT_LOCKED = 4


def iso_date(text: str) -> date:
    """A ``YYYY-MM-DD`` date."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD: {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a valid date: {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nightly",
        help="capture the configured tables, read them and write a summary",
        description=(
            "Capture the targets of a nightly config into ROOT/YYYY-MM-DD/screens/, read "
            "them into ROOT/YYYY-MM-DD/tables/ (review queue in tables/review/), and write "
            "summary.json, summary.txt and nightly.log there. A re-run finishes what an "
            "interrupted run left undone. Exit codes: 0 all ok, 1 some target or image "
            "failed, 3 the run could not be done (bad config, no model), 4 another run "
            "holds ROOT/nightly.lock."
        ),
    )
    p.add_argument("--config", required=True, type=Path, help="nightly config (TOML)")
    add_workers_option(p)
    p.add_argument(
        "--date", type=iso_date, default=None, help="the day to work on (default: today, UTC)"
    )
    p.add_argument(
        "--only", action="append", metavar="NAME", help="capture only this target (repeatable)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gridreader.errors import LockedError
    from gridreader.nightly import format_summary, load_nightly_config, run_nightly

    config = load_nightly_config(args.config, only=args.only)
    try:
        summary = run_nightly(config, args.date, workers=args.workers, only=args.only)
    except LockedError as e:
        # Not a failure of this run: another one is doing the work.
        print(f"gridreader nightly: {e}", file=sys.stderr)
        return EXIT_LOCKED
    print(format_summary(summary), end="")
    return summary.exit_code
