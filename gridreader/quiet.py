"""Quiet output: third-party log lines kept off stderr unless ``--verbose``.

TensorFlow and LiteRT write some lines from C++ straight to file descriptor 2,
whatever ``TF_CPP_MIN_LOG_LEVEL`` says: absl's "All log messages before
absl::InitializeLog() is called are written to STDERR", oneDNN's notice, and
"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.". Their Python sides
log through :mod:`logging` (tf.function retracing warnings) and :mod:`warnings`.
:func:`configure_output` sets the environment, loggers and warning filters once,
before anything imports them; :func:`quiet_native_logs` wraps the few calls that
write from C++ (importing TensorFlow, creating an interpreter) and drops those
lines. The project's own messages are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

VERBOSE_ENV = "GRIDREADER_VERBOSE"
"""``1`` while a verb runs with ``--verbose`` (child processes inherit it)."""

_PROJECT_MODULES = r"(?:gridreader|labeller|capture)(?:\.|$)"
_THIRD_PARTY_LOGGERS = (
    "tensorflow",
    "absl",
    "keras",
    "h5py",
    "ai_edge_litert",
    "tflite_runtime",
    "selenium",
    "urllib3",
    "werkzeug",
    "PIL",
)
_NATIVE_LINE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\)"
    # absl / glog: "I0000 00:00:1796212581.547474    6598 port.cc:153] ..."
    r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./+-]+:\d+\]"
    # TensorFlow's own C++ logging: "2026-12-02 11:56:21.547474: I tensorflow/..."
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [\w./+-]+:\d+\]"
    # TensorFlow Lite / LiteRT minimal logging: "INFO: Created TensorFlow Lite ..."
    r"|(?:INFO|VERBOSE|WARNING|ERROR): (?!.*\bgridreader\b)"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
)


def is_verbose() -> bool:
    """Whether third-party log lines are to be shown (``--verbose``)."""
    return os.environ.get(VERBOSE_ENV, "") == "1"


def configure_output(verbose: bool) -> None:
    """Set up quiet (or verbose) output for this process and its children.

    Call once, before TensorFlow, Keras or LiteRT is imported: the C++ log
    level is read from the environment when the library loads.
    """
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    level = logging.ERROR
    for name in _THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    # The project never calls warnings.warn: what reaches the filters comes
    # from libraries (Keras, NumPy, protobuf), even when attributed to a caller.
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=_PROJECT_MODULES)


def drop_native_lines(text: str) -> str:
    """``text`` without the lines third-party libraries log from C++."""
    return "".join(line for line in text.splitlines(keepends=True) if not _NATIVE_LINE.match(line))


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Drop the third-party C++ log lines written to stderr while the block runs.

    File descriptor 2 goes to a temporary file for the block; afterwards every
    line that is not a known third-party log line is written back to stderr.
    If the block raises, everything is written back (it may explain why). With
    ``--verbose`` this does nothing.
    """
    if is_verbose() or sys.stderr is None:
        yield
        return
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    failed = True
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            # Python-level writes made inside the block belong to the capture.
            with contextlib.suppress(AttributeError, ValueError, OSError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            keep = text if failed else drop_native_lines(text)
            if keep:
                sys.stderr.write(keep)
                sys.stderr.flush()
