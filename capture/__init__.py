"""Screenshots of tables on web pages, taken with headless Chromium.

The nightly job and the CLI use the same two calls::

    config = load_config("nightly.toml", extra_keys={"root", "model", "review_below"})
    results = capture_targets(config, out_dir, only=None)  # list[TargetResult]
"""

from capture.config import CaptureConfig, TargetConfig, load_config, select_targets
from capture.run import REPORT_NAME, TargetResult, capture_targets

__all__ = [
    "REPORT_NAME",
    "CaptureConfig",
    "TargetConfig",
    "TargetResult",
    "capture_targets",
    "load_config",
    "select_targets",
]
