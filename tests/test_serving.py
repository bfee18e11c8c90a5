"""Serving with LiteRT: reading never imports TensorFlow or Keras, and a model
folder without a usable ``model.tflite`` is refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ClearTable

from gridreader.cli import main
from gridreader.model import TFLITE_FILE

REPO = Path(__file__).resolve().parent.parent

# Runs a verb in a fresh interpreter and prints which heavy frameworks it imported.
_PROBE = """
import json, sys
from gridreader.cli import main
code = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "tf_keras"})
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def probe(*args: str) -> tuple[dict[str, Any], str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    last = proc.stderr.strip().splitlines()[-1]
    return json.loads(last), proc.stdout


def test_read_does_not_import_tensorflow_or_keras(
    clear_tables: tuple[Path, list[ClearTable]],
) -> None:
    result, out = probe("read", str(clear_tables[1][0].path))
    assert result == {"code": 0, "heavy": []}
    assert out.count("\n") == len(clear_tables[1][0].csv_rows())


def test_batch_does_not_import_tensorflow_or_keras(
    tmp_path: Path, clear_tables: tuple[Path, list[ClearTable]]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for t in clear_tables[1][:2]:
        shutil.copy2(t.path, src)
    result, _ = probe("batch", str(src), "--out", str(tmp_path / "out"), "--workers", "2")
    assert result == {"code": 0, "heavy": []}
    assert len(list((tmp_path / "out").glob("*.csv"))) == 2


@pytest.mark.parametrize("breakage", ["missing", "corrupt"])
def test_unusable_tflite_is_one_line_and_exit_3(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clear_tables: tuple[Path, list[ClearTable]],
    default_classifier: Any,
    breakage: str,
) -> None:
    model = tmp_path / "model"
    shutil.copytree(default_classifier.path, model)
    served = model / TFLITE_FILE
    if breakage == "missing":
        served.unlink()
    else:
        served.write_bytes(served.read_bytes()[: len(served.read_bytes()) // 2])
    code = main(["read", str(clear_tables[1][0].path), "--model", str(model)])
    out, err = capsys.readouterr()
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and str(served) in err
    assert f"gridreader export {model}" in err
