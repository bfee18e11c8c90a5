"""The project stands alone: no tracked file points at a path outside the clone."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Folders beside the clone that development machines had (``../shared/...``),
# and this machine's own layout: a fresh clone has neither.
OUTSIDE = re.compile(r"(?<![\w-])shared/(?:data|bench)\b|\.\./shared\b|(?<![\w.])/work/")
# A relative path that climbs: ``../x``, ``../../x``.
CLIMB = re.compile(r"(?<![\w./])((?:\.\./)+)[\w.-]")


def tracked_text_files() -> list[Path]:
    """Every tracked file that is text (binary images and arrays are left out)."""
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    files = []
    for name in out.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or path.stat().st_size > 4_000_000:
            continue
        with open(path, "rb") as f:
            if b"\0" in f.read(8192):
                continue
        files.append(path)
    return files


def escapes(base: Path, climb: str) -> bool:
    """Whether ``climb`` (``../`` repeated) taken from ``base`` leaves the clone."""
    return climb.count("../") > len(base.relative_to(ROOT).parts)


def test_no_tracked_file_points_outside_the_clone() -> None:
    files = tracked_text_files()
    assert len(files) > 50  # the scan really saw the project
    found = []
    for path in files:
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(ROOT)
        for n, line in enumerate(text.splitlines(), start=1):
            found += [f"{rel}:{n}: {m.group(0)}" for m in OUTSIDE.finditer(line)]
            # Test modules hold path-traversal inputs on purpose (``../../etc/passwd``);
            # everywhere else a climb must stay inside the clone from the file's folder.
            if rel.parts[0] == "tests" and rel.suffix == ".py":
                continue
            found += [
                f"{rel}:{n}: {m.group(0)}..."
                for m in CLIMB.finditer(line)
                if escapes(path.parent, m.group(1))
            ]
    assert found == [], "paths outside the clone:\n" + "\n".join(found)


def test_the_check_catches_a_path_outside() -> None:
    # The patterns themselves, on lines like the ones that used to be there.
    assert OUTSIDE.search("gridreader train --mnist ../shared/data/mnist-digits.npz")
    assert OUTSIDE.search("scores the CSVs the way ``shared/bench/score.py`` does")
    assert not OUTSIDE.search("see data/bench/score.py and the shared venv")
    climb = CLIMB.search("see ../../other/thing")
    assert climb is not None and escapes(ROOT / "data" / "bench", climb.group(1)) is False
    assert escapes(ROOT / "data", climb.group(1)) is True
