"""Re-make the demo screenshots: ``python -m capture.samples data/pages data/samples``.

Serves PAGES on 127.0.0.1 (a free port), captures the ``#capture`` element of every
``NAME.html`` that has a truth table ``NAME.csv`` beside it (capture's own
``capture_targets``, as ``gridreader capture`` runs it), and copies the
screenshot to ``SAMPLES/NAME.png`` and the truth to ``SAMPLES/NAME.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from capture.config import CaptureConfig, parse_config
from capture.run import capture_targets
from gridreader.errors import CaptureError, GridReaderError
from gridreader.imageio import write_atomic

SELECTOR = "#capture"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 and a free port; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def list_pages(pages: Path) -> list[str]:
    """Names of the pages in ``pages`` that have both ``NAME.html`` and ``NAME.csv``."""
    return sorted(p.stem for p in pages.glob("*.html") if p.with_suffix(".csv").is_file())


def samples_config(base_url: str, names: Sequence[str]) -> CaptureConfig:
    """A capture configuration with one target per page (checked as a TOML file would be)."""
    raw = {
        "browser": {"window": [1400, 1000], "scale": 1, "timeout_s": 20},
        "target": [
            {
                "name": name,
                "url": f"{base_url}/{name}.html",
                "table": SELECTOR,
                "wait_for": f"{SELECTOR} td",
            }
            for name in names
        ],
    }
    return parse_config(raw, "capture.samples")


def make_samples(pages: Path, samples: Path) -> list[str]:
    """Capture every page in ``pages`` and write ``samples/NAME.png`` and ``NAME.csv``.

    Raises:
        CaptureError: no pages, or a page could not be captured.
    """
    names = list_pages(pages)
    if not names:
        raise CaptureError(f"{pages}: no NAME.html with a NAME.csv beside it")
    with tempfile.TemporaryDirectory(prefix="gridreader-samples-") as tmp:
        shots = Path(tmp) / "shots"
        with serve_directory(pages) as base_url:
            results = capture_targets(samples_config(base_url, names), shots)
        failed = [f"{r.name} ({r.reason})" for r in results if not r.ok]
        if failed:
            raise CaptureError(f"capture failed for: {', '.join(failed)}")
        for r in results:
            write_atomic(samples / f"{r.name}.png", r.files[0].read_bytes())
            write_atomic(samples / f"{r.name}.csv", (pages / f"{r.name}.csv").read_bytes())
    return names


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m capture.samples PAGES SAMPLES``."""
    parser = argparse.ArgumentParser(prog="python -m capture.samples", description=__doc__)
    parser.add_argument("pages", type=Path, help="folder of NAME.html + NAME.csv")
    parser.add_argument("samples", type=Path, help="where NAME.png and NAME.csv go")
    args = parser.parse_args(argv)
    try:
        names = make_samples(args.pages, args.samples)
    except GridReaderError as e:
        print(f"capture.samples: error: {e}", file=sys.stderr)
        return 3
    print(f"capture.samples: wrote {len(names)} samples to {args.samples}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
