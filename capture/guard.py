"""Runs chromedriver so that it, and every browser process below it, dies with us.

``capture.browser`` starts chromedriver through this script on Linux::

    python -I -S guard.py PARENT_PID PROFILE_DIR CHROMEDRIVER [ARGS...]

A parent-death signal on chromedriver alone is not enough: chromedriver starts
Chromium, Chromium starts a dozen helpers, and its crash handler double-forks
away from the tree. So the guard

- asks the kernel for SIGTERM when its parent (the capture process) dies, for
  whatever reason, SIGKILL included (``PR_SET_PDEATHSIG``);
- becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``): a descendant whose
  parent dies is re-parented to the guard, not to init, so nothing can slip
  out of the tree it watches;
- when its parent dies, it is told to stop (Selenium's ``Service.stop`` sends
  SIGTERM), or chromedriver exits, it SIGKILLs every process below it, reaps
  them, removes the browser profile folder and exits.

It runs with ``-I -S`` and imports only the standard library: it starts in a
few tens of milliseconds and no ``PYTHONPATH`` can change it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from types import FrameType

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_REAP_LIMIT_S = 5.0


class _Stop(Exception):
    """A signal asked the guard to stop."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from the kernel's per-thread child lists."""
    found: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                continue
            for k in kids:
                if k not in found:
                    found.append(k)
                    todo.append(k)
    return found


def kill_tree(limit_s: float = _REAP_LIMIT_S) -> None:
    """SIGKILL every process below this one and reap them (we are their subreaper)."""
    deadline = time.monotonic() + limit_s
    while True:
        for pid in descendants(os.getpid()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] != 0:
                pass
        except ChildProcessError:
            return  # nothing left below us
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


def main(argv: list[str]) -> int:
    """Run ``argv[3:]`` under the guard; return its exit code (1 when stopped)."""
    if len(argv) < 4:
        print("usage: guard.py PARENT_PID PROFILE_DIR COMMAND [ARGS...]", file=sys.stderr)
        return 2
    parent, profile, command = int(argv[1]), argv[2], argv[3:]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    code = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died before the signal was asked for.
        if os.getppid() == parent:
            child = subprocess.Popen(command)
            code = child.wait()
    except _Stop:
        pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        kill_tree()
        if profile:
            shutil.rmtree(profile, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
