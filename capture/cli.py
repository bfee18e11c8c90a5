"""``gridreader capture CONFIG --out DIR [--only NAME]``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

# capture.run is imported when the verb runs: Selenium's import alone takes
# about a second, which every other verb would pay when the parser is built.
from capture.config import REPORT_NAME, load_config

EXIT_OK, EXIT_PARTIAL = 0, 1


def register(subparsers: Any) -> None:
    """Add the ``capture`` verb to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "capture",
        help="screenshot tables on web pages with headless Chromium",
        description=(
            "Screenshot the tables named in a TOML config with headless Chromium. "
            "Writes DIR/NAME-YYYYmmddTHHMMSSZ.png, a .json sidecar per image, and "
            f"appends one line per target to DIR/{REPORT_NAME}. "
            "Exit code 1 when any target failed."
        ),
    )
    parser.add_argument("config", type=Path, help="capture configuration (TOML)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="capture only this target (repeatable)",
    )
    parser.set_defaults(func=run_capture)


def run_capture(args: argparse.Namespace) -> int:
    """Handle ``gridreader capture``; returns 0 if every target was captured, else 1."""
    _show_warnings()
    from capture.run import capture_targets

    config = load_config(args.config)
    results = capture_targets(config, args.out, only=args.only)
    for result in results:
        if result.ok:
            files = ", ".join(p.name for p in result.files)
            print(f"{result.name}: ok ({files})")
        else:
            print(f"{result.name}: failed: {result.reason}")
    failed = sum(not r.ok for r in results)
    print(
        f"capture: {len(results) - failed} ok, {failed} failed; "
        f"report {Path(args.out) / REPORT_NAME}"
    )
    return EXIT_PARTIAL if failed else EXIT_OK


def _show_warnings() -> None:
    # Retries after a browser crash are worth seeing; nothing else is logged by default.
    logger = logging.getLogger("capture")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("capture: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
