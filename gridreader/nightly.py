"""The nightly job: capture the configured web tables, read them, summarise.

One run works in ``ROOT/YYYY-MM-DD/`` (UTC date)::

    screens/            screenshots, sidecars, capture-report.jsonl
    tables/             one CSV per screenshot, report.jsonl, review/
    summary.json        what the day's outputs hold, and how long this run took
    summary.txt         the same, short and readable
    nightly.log         timestamped log of every run of the day

``ROOT/nightly.lock`` keeps two runs from overlapping. Every output is written
atomically, so a killed run leaves only complete files behind, and the next run
of the same day finishes what is missing: a target whose screenshots are
complete is not captured again, and batch skips images already read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from capture.config import CaptureConfig, TargetConfig, load_config, resolve_binaries
from capture.config import select_targets as select_capture_targets
from capture.run import TargetResult, capture_targets, login_secrets, redact_secrets
from gridreader.batch import ImageReader, list_images, output_stems, run_batch
from gridreader.cluster import ClusterSpec, cluster_reader, connect_cluster, parse_cluster
from gridreader.errors import ConfigError, GridReaderError, LockedError, OutputError, UsageError
from gridreader.formats.records import read_record, record_path
from gridreader.formats.review import REVIEW_DIR, image_files, sidecar_stem
from gridreader.formats.shots import complete_shots, remove_target_shots
from gridreader.formats.tables import table_path
from gridreader.host import iso_utc
from gridreader.imageio import remove_file, remove_temp_files, write_atomic
from gridreader.model import Classifier
from gridreader.report_html import REPORT_PAGE

log = logging.getLogger(__name__)

EXTRA_KEYS = ("root", "model", "review_below", "cluster")
LOCK_NAME = "nightly.lock"
SCREENS, TABLES = "screens", "tables"
SUMMARY_JSON, SUMMARY_TXT, LOG_NAME = "summary.json", "summary.txt", "nightly.log"
DEFAULT_REVIEW_BELOW = 0.9
_LOGGERS = ("gridreader", "capture")
ReaderFor = Callable[[Classifier], ImageReader]


@dataclass(frozen=True)
class NightlyConfig:
    """A nightly configuration: the capture targets plus where and how to read them.

    Attributes:
        capture: the capture part of the file.
        root: the output root (absolute).
        model: the model folder, or None for the default model.
        review_below: cells under this confidence go to the review queue.
        cluster: the Dask cluster that reads the tables (``[cluster] address``),
            or None for this machine's processes.
    """

    capture: CaptureConfig
    root: Path
    model: Path | None
    review_below: float
    cluster: ClusterSpec | None = None


@dataclass(frozen=True)
class DayPaths:
    """Where one day's outputs go."""

    root: Path
    day: Path

    @property
    def screens(self) -> Path:
        return self.day / SCREENS

    @property
    def tables(self) -> Path:
        return self.day / TABLES

    @property
    def lock(self) -> Path:
        return self.root / LOCK_NAME


@dataclass(frozen=True)
class TargetOutcome:
    """How one target stands today: ``done`` earlier, captured now, or failed now."""

    name: str
    ok: bool
    reason: str = ""
    earlier: bool = False


@dataclass(frozen=True)
class TableStats:
    """What ``tables/`` holds for today's screenshots (from the per-image records)."""

    read: int
    failed: int
    errors: tuple[str, ...]
    cells: int
    review: int
    confidence_mean: float | None
    confidence_min: float | None


@dataclass(frozen=True)
class NightlySummary:
    """The outcome of one nightly run; ``to_dict`` is what ``summary.json`` holds."""

    date: str
    config: str
    root: str
    model: str
    review_below: float
    targets: tuple[TargetOutcome, ...]
    tables: TableStats
    images_read_now: int
    images_up_to_date: int
    durations: Mapping[str, float] = field(default_factory=dict)
    started: str = ""
    finished: str = ""
    report: str = ""
    """The day's ``tables/report.html`` (absolute)."""

    @property
    def exit_code(self) -> int:
        """0 when every target and every image succeeded, 1 otherwise."""
        return 0 if all(t.ok for t in self.targets) and self.tables.failed == 0 else 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: counts for the whole day, durations for this run."""
        failed = [t for t in self.targets if not t.ok]
        return {
            "date": self.date,
            "status": "ok" if self.exit_code == 0 else "failed",
            "exit_code": self.exit_code,
            "config": self.config,
            "root": self.root,
            "model": self.model,
            "review_below": self.review_below,
            "targets": {
                "total": len(self.targets),
                "captured": sum(t.ok for t in self.targets),
                "captured_earlier": sum(t.ok and t.earlier for t in self.targets),
                "failed": len(failed),
                "failures": [{"target": t.name, "reason": t.reason} for t in failed],
            },
            "tables": {
                "read": self.tables.read,
                "failed": self.tables.failed,
                "failures": list(self.tables.errors),
                "read_now": self.images_read_now,
                "up_to_date": self.images_up_to_date,
            },
            "cells": self.tables.cells,
            "review": self.tables.review,
            "confidence": {
                "mean": _round(self.tables.confidence_mean),
                "min": _round(self.tables.confidence_min),
            },
            "durations_s": {k: round(v, 3) for k, v in self.durations.items()},
            "started": self.started,
            "finished": self.finished,
            "report": self.report,
        }


def load_nightly_config(
    path: str | os.PathLike[str], only: Sequence[str] | None = None
) -> NightlyConfig:
    """Read a nightly configuration: the capture format plus ``root``, ``model``
    ``review_below`` and ``[cluster] address``. Relative paths are relative to
    the file.

    Raises:
        ConfigError: unreadable file, bad TOML, or a missing, unknown or bad key
            (also an ``only`` name that is no target of the file).
    """
    config = load_config(path, extra_keys=EXTRA_KEYS)
    label = config.source
    base = Path(path).resolve().parent
    extras = config.extras
    if "root" not in extras:
        raise ConfigError(f"{label}: root: missing (the output folder)")
    root = _path_value(extras["root"], label, "root", base)
    model = _path_value(extras["model"], label, "model", base) if "model" in extras else None
    review_below = extras.get("review_below", DEFAULT_REVIEW_BELOW)
    if (
        isinstance(review_below, bool)
        or not isinstance(review_below, int | float)
        or not 0.0 <= review_below <= 1.0
    ):
        raise ConfigError(
            f"{label}: review_below: expected a number from 0 to 1, got {review_below!r}"
        )
    cluster = _cluster_value(extras["cluster"], label) if "cluster" in extras else None
    if only:
        select_capture_targets(config, only)
    return NightlyConfig(config, root, model, float(review_below), cluster)


def _cluster_value(value: object, label: str) -> ClusterSpec:
    if not isinstance(value, dict) or set(value) != {"address"}:
        raise ConfigError(f"{label}: cluster: expected a table with one key, address")
    address = value["address"]
    if not isinstance(address, str):
        raise ConfigError(f"{label}: cluster.address: expected a string, got {address!r}")
    try:
        return parse_cluster(address)
    except UsageError as e:
        raise ConfigError(f"{label}: cluster.address: {e}") from None


def _path_value(value: object, label: str, key: str, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{label}: {key}: expected a path string, got {value!r}")
    return (base / Path(value).expanduser()).resolve()


def day_paths(root: Path, day: date) -> DayPaths:
    """The folders of ``day`` under ``root``."""
    return DayPaths(root, root / day.isoformat())


def today_utc() -> date:
    """Today's date in UTC: a run just after midnight belongs to the new day everywhere."""
    return datetime.now(UTC).date()


# The lock fds this process holds. A forked child (a batch worker) closes its
# copies at once: an flock lives as long as any process has the file open, and
# a worker orphaned by a killed run would otherwise keep the lock forever.
_HELD_LOCKS: set[int] = set()


def _drop_locks_in_child() -> None:
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_drop_locks_in_child)


@contextlib.contextmanager
def hold_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (holding our PID) while the block runs.

    The kernel drops the lock when the process dies, so a killed run never
    leaves a stale lock; the file itself stays. Children started with exec
    (the browser) do not inherit it (close-on-exec), forked ones drop it.

    Raises:
        LockedError: another process holds it.
        OutputError: the lock file cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise OutputError(f"{path}: cannot create lock file ({e.strerror or e})") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"{path}: cannot lock ({e.strerror or e})") from e
            holder = _read_pid(fd)
            raise LockedError(
                f"{path}: another nightly run is in progress"
                + (f" (pid {holder})" if holder else "")
            ) from e
        _HELD_LOCKS.add(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as e:
            raise OutputError(f"{path}: cannot write lock file ({e.strerror or e})") from e
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        _HELD_LOCKS.discard(fd)
        os.close(fd)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def run_nightly(
    config: NightlyConfig,
    day: date | None = None,
    *,
    workers: int = 1,
    only: Sequence[str] | None = None,
) -> NightlySummary:
    """Capture, read and summarise one day; safe to re-run after a crash.

    The summary's counts describe the day's outputs as a whole (a re-run that
    only finishes what a killed run left reports the same counts as one clean
    run); ``images_read_now``, ``images_up_to_date`` and the durations describe
    this run.

    Raises:
        LockedError: another run holds ``ROOT/nightly.lock``.
        ConfigError: bad ``only`` name, no Chromium/chromedriver.
        ModelError: the model cannot be loaded.
        OutputError: an output cannot be written.
    """
    t0 = time.monotonic()
    started = iso_utc()
    targets = select_capture_targets(config.capture, only)
    paths = day_paths(config.root, day or today_utc())
    with hold_lock(paths.lock), _day_log(paths.day / LOG_NAME, login_secrets(targets)):
        try:
            with _cluster(config) as reader_for:
                return _run_locked(config, paths, targets, workers, t0, started, reader_for)
        except GridReaderError as e:
            log.error("run failed: %s", e)
            raise
        except BaseException as e:
            log.error("run stopped: %s", type(e).__name__)
            raise


@contextlib.contextmanager
def _cluster(config: NightlyConfig) -> Iterator[ReaderFor | None]:
    """What makes the cluster's reader for a model, while the block runs (None:
    this machine reads). Connected first: an unreachable scheduler fails the
    run before any capture."""
    if config.cluster is None:
        yield None
        return
    with connect_cluster(config.cluster) as cluster:
        log.info(
            "cluster %s: scheduler %s%s",
            config.cluster,
            cluster.address,
            f", dashboard {cluster.dashboard}" if cluster.dashboard else "",
        )
        yield lambda classifier: cluster_reader(cluster, classifier, config.review_below)


def _run_locked(
    config: NightlyConfig,
    paths: DayPaths,
    targets: Sequence[TargetConfig],
    workers: int,
    t0: float,
    started: str,
    reader_for: ReaderFor | None = None,
) -> NightlySummary:
    from gridreader.model import load_classifier

    log.info(
        "run started: config %s, day %s, pid %d, workers %d",
        config.capture.source,
        paths.day.name,
        os.getpid(),
        workers,
    )
    removed = remove_temp_files(paths.day, recursive=True)  # under the lock: no other writer
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", removed)
    try:
        paths.screens.mkdir(parents=True, exist_ok=True)
        paths.tables.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{paths.day}: cannot create output folder ({e.strerror or e})") from e
    # Fatal problems (no browser, no model) show up before any work is done.
    resolve_binaries(config.capture.browser, config.capture.source)
    classifier = load_classifier(config.model)
    log.info("model %s (%s)", classifier.name, classifier.path)

    t_capture = time.monotonic()
    outcomes = capture_missing(config.capture, targets, paths)
    capture_s = time.monotonic() - t_capture

    t_batch = time.monotonic()
    log.info("batch: reading %s into %s", paths.screens, paths.tables)
    batch = run_batch(
        paths.screens,
        paths.tables,
        classifier,
        review_below=config.review_below,
        workers=workers,
        progress=False,
        log=lambda m: log.warning("table failed: %s", m),
        warn=lambda m: log.warning("%s", m),
        reader=reader_for(classifier) if reader_for else None,
    )
    batch_s = time.monotonic() - t_batch
    log.info(
        "batch: %d image(s): %d read now, %d failed, %d up to date (%.1f s)",
        batch.images,
        batch.ok,
        batch.failed,
        batch.skipped,
        batch_s,
    )
    stats = table_stats(paths.screens, paths.tables)
    summary = NightlySummary(
        date=paths.day.name,
        config=config.capture.source,
        root=str(paths.root),
        model=classifier.name,
        review_below=config.review_below,
        targets=tuple(outcomes),
        tables=stats,
        images_read_now=batch.ok,
        images_up_to_date=batch.skipped,
        durations={
            "capture": capture_s,
            "batch": batch_s,
            "total": time.monotonic() - t0,
        },
        started=started,
        finished=iso_utc(),
        report=str((paths.tables / REPORT_PAGE).absolute()),
    )
    write_atomic(paths.day / SUMMARY_JSON, json.dumps(summary.to_dict(), indent=2) + "\n")
    write_atomic(paths.day / SUMMARY_TXT, format_summary(summary))
    log.info(
        "run finished: exit %d; %d/%d targets, %d tables read, %d failed, %d cells, %d to review",
        summary.exit_code,
        sum(t.ok for t in outcomes),
        len(outcomes),
        stats.read,
        stats.failed,
        stats.cells,
        stats.review,
    )
    return summary


def capture_missing(
    config: CaptureConfig, targets: Sequence[TargetConfig], paths: DayPaths
) -> list[TargetOutcome]:
    """Capture the targets that have no complete screenshots today.

    A target left incomplete by an earlier run (failed, or killed half way) has
    its old screenshots and the tables read from them removed first, so the day
    never holds two versions of one target.
    """
    done = completed_targets(paths.screens, targets)
    todo = [t for t in targets if t.name not in done]
    for name in sorted(done):
        log.info("capture: %s: already captured today", name)
    for target in todo:
        removed = remove_target_files(paths.screens, paths.tables, target.name)
        if removed:
            log.info("capture: %s: removed %d incomplete earlier file(s)", target.name, removed)
    results: dict[str, TargetResult] = {}
    if todo:
        log.info("capture: %s", ", ".join(t.name for t in todo))
        for r in capture_targets(config, paths.screens, only=[t.name for t in todo]):
            results[r.name] = r
            if r.ok:
                log.info("capture: %s: ok (%d file(s))", r.name, len(r.files))
            else:
                log.warning("capture: %s: failed: %s", r.name, r.reason)
    outcomes = []
    for t in targets:
        if t.name in done:
            outcomes.append(TargetOutcome(t.name, True, earlier=True))
        else:
            r = results[t.name]
            outcomes.append(TargetOutcome(t.name, r.ok, r.reason))
    return outcomes


def completed_targets(screens: Path, targets: Iterable[TargetConfig]) -> set[str]:
    """Names of the targets whose screenshots in ``screens`` are complete.

    Complete means every page (1 for an unpaged target) of one capture has its
    PNG and its JSON sidecar; both are written atomically, PNG first, so a
    killed capture leaves at most a PNG without a sidecar, which does not count.
    """
    shots: dict[tuple[str, str], set[int | None]] = {}
    for shot in complete_shots(screens):
        shots.setdefault((shot.name, shot.stamp), set()).add(shot.page)
    done = set()
    for t in targets:
        want: set[int | None] = set(range(1, t.pages.count + 1)) if t.pages is not None else {None}
        if any(n == t.name and pages >= want for (n, _), pages in shots.items()):
            done.add(t.name)
    return done


def remove_target_files(screens: Path, tables: Path, name: str) -> int:
    """Remove a target's screenshots, sidecars and the outputs read from them.

    Raises:
        OutputError: a file cannot be removed.
    """
    stems = remove_target_shots(screens, name)
    removed = len(stems)
    for stem in set(stems):
        outputs = [table_path(tables, stem), record_path(tables, stem)]
        outputs += image_files(tables / REVIEW_DIR, stem)
        for p in outputs:
            remove_file(p)
    return removed


def table_stats(screens: Path, tables: Path) -> TableStats:
    """Counts over today's images, from batch's per-image records and review files.

    Raises:
        OutputError: a record cannot be read.
    """
    images = list_images(screens)
    stems = output_stems(images)
    read = failed = cells = 0
    errors: list[str] = []
    confidences: list[float] = []
    for image in images:
        record = read_record(tables, stems[image])
        if record is None:
            continue
        if record.get("status") == "ok":
            read += 1
            cells += len(record.get("cells", []))
            confidences.extend(float(c["confidence"]) for c in record.get("cells", []))
        else:
            failed += 1
            errors.append(str(record.get("error") or f"{image}: failed"))
    review = _count_review(tables / REVIEW_DIR, set(stems.values()))
    return TableStats(
        read=read,
        failed=failed,
        errors=tuple(errors),
        cells=cells,
        review=review,
        confidence_mean=sum(confidences) / len(confidences) if confidences else None,
        confidence_min=min(confidences) if confidences else None,
    )


def _count_review(review: Path, stems: set[str]) -> int:
    try:
        names = [p.name for p in review.iterdir()]
    except FileNotFoundError:
        return 0
    return sum(1 for n in names if sidecar_stem(n) in stems)


def format_summary(s: NightlySummary) -> str:
    """``summary.txt``: a few lines a person reads in the morning."""
    d = s.to_dict()
    t, tb, conf, dur = d["targets"], d["tables"], d["confidence"], d["durations_s"]
    lines = [
        f"gridreader nightly {s.date}: {'OK' if s.exit_code == 0 else 'FAILED'} "
        f"(exit {s.exit_code})",
        f"config {s.config}, model {s.model}",
        f"targets: {t['captured']} of {t['total']} captured"
        + (f" ({t['captured_earlier']} by an earlier run today)" if t["captured_earlier"] else "")
        + f", {t['failed']} failed",
    ]
    lines += [f"  failed {f['target']}: {f['reason']}" for f in t["failures"]]
    lines.append(
        f"tables: {tb['read']} read, {tb['failed']} failed"
        f" ({tb['read_now']} read by this run, {tb['up_to_date']} already done)"
    )
    lines += [f"  failed {e}" for e in tb["failures"]]
    lines.append(f"cells: {d['cells']}, {d['review']} sent to review (below {s.review_below:g})")
    if conf["mean"] is not None:
        lines.append(f"confidence: mean {conf['mean']:.3f}, min {conf['min']:.3f}")
    else:
        lines.append("confidence: no cells read")
    lines.append(
        f"time: capture {dur['capture']:.1f} s, batch {dur['batch']:.1f} s, "
        f"total {dur['total']:.1f} s"
    )
    if s.report:
        lines.append(f"report: {s.report}")
    return "\n".join(lines) + "\n"


class _RedactFilter(logging.Filter):
    """Replaces login secrets in every record: a second guard behind capture's own."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            record.msg = redact_secrets(record.getMessage(), self._secrets)
            record.args = None
        return True


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        t = time.gmtime(record.created)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


@contextlib.contextmanager
def _day_log(path: Path, secrets: Sequence[str]) -> Iterator[None]:
    """Send the project's log records (INFO and up) to ``path`` while the block runs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as e:
        raise OutputError(f"{path}: cannot open log ({e.strerror or e})") from e
    handler.setFormatter(_UTCFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactFilter(secrets))
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
        handler.close()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
