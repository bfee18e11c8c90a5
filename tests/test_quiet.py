"""Quiet output: no third-party log lines on stderr, the project's own lines kept."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gridreader.cli import build_parser
from gridreader.quiet import VERBOSE_ENV, drop_native_lines, quiet_native_logs

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"

# Lines third-party libraries really wrote here (TensorFlow 2.21, LiteRT 2.3).
NATIVE_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796212581.547474    6598 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results due to floating-point round-off errors "
    "from different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n",
    "2026-12-02 11:56:21.547474: I tensorflow/core/platform/cpu_feature_guard.cc:210] "
    "This TensorFlow binary is optimized to use available CPU instructions.\n",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
)
PROJECT_LINES = (
    "gridreader batch: error: in/bad.png: not a readable image\n",
    "3 images: 2 read, 1 failed, 0 up to date; 96 cells, 4 to review; 1.2 s\n",
    "warning: no replayed synthetic cells (no MNIST source, or --replay 0)\n",
)
# What the project itself writes on stderr: "gridreader VERB: ..." and batch's summary.
PROJECT_LINE = re.compile(r"gridreader [\w ]+: |\d+ images: \d+ read, ")


def test_drop_native_lines_keeps_only_the_projects_lines() -> None:
    pairs = list(zip(NATIVE_LINES, PROJECT_LINES * 2, strict=False))
    assert drop_native_lines("".join(a + b for a, b in pairs)) == "".join(b for _, b in pairs)
    assert drop_native_lines("".join(NATIVE_LINES)) == ""


def test_quiet_native_logs_drops_what_cpp_writes_to_fd_2(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "0")
    with quiet_native_logs():
        for line in NATIVE_LINES:
            os.write(2, line.encode())  # as C++ does, below Python's sys.stderr
        print(PROJECT_LINES[0], end="", file=sys.stderr)
    assert capfd.readouterr().err == PROJECT_LINES[0]


def test_quiet_native_logs_writes_everything_back_when_the_block_fails(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "0")
    with pytest.raises(RuntimeError), quiet_native_logs():
        os.write(2, NATIVE_LINES[3].encode())
        raise RuntimeError("broken model")
    assert capfd.readouterr().err == NATIVE_LINES[3]


def test_verbose_shows_the_native_lines(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with quiet_native_logs():
        os.write(2, NATIVE_LINES[3].encode())
    assert capfd.readouterr().err == NATIVE_LINES[3]


@pytest.mark.parametrize(
    "argv", [["--verbose", "read", "x.png"], ["read", "x.png", "--verbose"], ["read", "x.png"]]
)
def test_verbose_is_accepted_before_or_after_the_verb(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).verbose is ("--verbose" in argv)


def run_gridreader(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    for var in (VERBOSE_ENV, "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(var, None)  # as a user's shell would have it
    return subprocess.run(
        [sys.executable, "-m", "gridreader", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_read_and_batch_write_only_the_projects_lines_on_stderr(tmp_path: Path) -> None:
    read = run_gridreader("read", str(SAMPLES / "ruled.png"))
    assert read.returncode == 0 and read.stdout.count("\n") >= 5
    assert read.stderr == ""

    # A batch with a broken image: its own error line and summary stay, nothing else.
    images = tmp_path / "in"
    images.mkdir()
    for name in ("ruled.png", "dark.png"):
        shutil.copy(SAMPLES / name, images / name)
    (images / "bad.png").write_bytes(b"not a picture at all")
    batch = run_gridreader("batch", str(images), "--out", str(tmp_path / "out"), "--workers", "2")
    assert batch.returncode == 1
    lines = batch.stderr.splitlines()
    assert [ln for ln in lines if not PROJECT_LINE.match(ln)] == [], batch.stderr
    assert any(ln.startswith("gridreader batch: error: ") and "bad.png" in ln for ln in lines)
    assert any(ln.startswith("3 images: 2 read, 1 failed") for ln in lines)


_RETRACING = """
import sys
from gridreader.quiet import configure_output
configure_output(sys.argv[1] == "verbose")
from gridreader.model import _keras
_keras()
import tensorflow as tf
f = tf.function(lambda x: x * 2)
for n in range(1, 8):
    f(tf.zeros((n,)))  # a new shape each call: tf.function retracing warnings
print("gridreader test: done", file=sys.stderr)
"""


def test_tensorflow_python_warnings_are_quiet_unless_verbose() -> None:
    def run(mode: str) -> str:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        done = subprocess.run(
            [sys.executable, "-c", _RETRACING, mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert run("quiet") == "gridreader test: done\n"
    assert "triggered tf.function retracing" in run("verbose")
