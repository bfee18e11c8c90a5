"""Facts about the run for records: this machine, and the time in UTC."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime


def machine() -> str:
    """A one-line description of this machine, for figures in model cards."""
    return f"{platform.machine()} {os.cpu_count()} CPU, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def iso_utc(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as ``YYYY-MM-DDTHH:MM:SSZ``, in UTC."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
