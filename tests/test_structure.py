"""The package layering holds: imports point from the application layer (the CLI
and ``nightly``) to ``capture`` and ``labeller``, and from those to the core,
never back (``tools/import_graph.py --check``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_points_outwards() -> None:
    tool = ROOT / "tools" / "import_graph.py"
    done = subprocess.run(
        [sys.executable, str(tool), "--check"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr


def test_the_check_sees_an_outward_import(tmp_path: Path) -> None:
    # The tool reads the tree it sits in: a copy with one bad import must fail.
    for part in ("tools", "gridreader", "capture", "labeller"):
        subprocess.run(["cp", "-r", str(ROOT / part), str(tmp_path)], check=True)
    bad = tmp_path / "gridreader" / "classes.py"
    bad.write_text(bad.read_text(encoding="utf-8") + "\nimport labeller.store\n")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "tools" / "import_graph.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == "import points outwards: gridreader.classes -> labeller.store\n"
