"""Screenshots of tables on web pages, taken with headless Chromium.

The nightly job and the CLI use the same two calls::

    config = load_config("nightly.toml", extra_keys={"root", "model", "review_below"})
    results = capture_targets(config, out_dir, only=None)  # list[TargetResult]
"""

from typing import Any

from capture.config import REPORT_NAME, CaptureConfig, TargetConfig, load_config, select_targets


def __getattr__(name: str) -> Any:
    # capture.run (and Selenium with it) is imported on first use, not with the
    # package: the CLI imports the package for every verb.
    if name in ("TargetResult", "capture_targets"):
        from capture import run

        return getattr(run, name)
    raise AttributeError(f"module 'capture' has no attribute {name!r}")


__all__ = [
    "REPORT_NAME",
    "CaptureConfig",
    "TargetConfig",
    "TargetResult",
    "capture_targets",
    "load_config",
    "select_targets",
]
