"""``batch`` and ``nightly`` on a real Dask ``LocalCluster`` (worker processes):
the same outputs as a local run, byte for byte, also when a worker is killed
mid-run; a bad address fails fast; nothing is left running."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from conftest import ClearTable
from PIL import Image

from gridreader.batch import run_batch
from gridreader.cli import main
from gridreader.cluster import ClusterSpec, cluster_reader, connect_cluster, parse_cluster
from gridreader.errors import ModelError, UsageError
from gridreader.model import TFLITE_FILE, load_classifier

REVIEW_BELOW = "0.999"
BAD_LINE = "not a readable image"
GRIDREADER = (sys.executable, "-m", "gridreader")


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def wait_gone(before: set[int], timeout_s: float = 20.0) -> set[int]:
    """This process's children that are not in ``before`` and still run after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        extra = {pid for pid in children() - before if running(pid)}
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.2)


def running(pid: int) -> bool:
    """Alive, and not one of the interpreter's own helpers (multiprocessing's
    resource tracker or fork server: one each per session, shared by every pool)."""
    try:
        proc = psutil.Process(pid)
        helper = any(
            "multiprocessing.resource_tracker" in a or "forkserver" in a for a in proc.cmdline()
        )
        return proc.status() != psutil.STATUS_ZOMBIE and not helper
    except psutil.NoSuchProcess:
        return False


def describe(pids: set[int]) -> str:
    out = []
    for pid in sorted(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            out.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())[:200]}")
    return "; ".join(out)


@pytest.fixture(scope="module", autouse=True)
def nothing_left_running() -> Iterator[None]:
    """No cluster, scheduler or worker process outlives this module's tests."""
    before = children()
    yield
    left = wait_gone(before)
    assert not left, f"left running after the cluster tests: {describe(left)}"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, clear_tables: Any) -> Iterator[Path]:
    """Six tables, a corrupt file and a picture without a table, as a path relative
    to the current folder (where the runs are started): the reports and error
    lines then name the images relatively, while the workers need absolute paths."""
    folder = tmp_path_factory.mktemp("cluster-in")
    _, tables = clear_tables
    for t in tables:
        shutil.copy(t.path, folder / t.path.name)
    (folder / "bad.png").write_bytes(b"not a picture")
    Image.fromarray(np.full((200, 300, 3), 255, np.uint8)).save(folder / "blank.png")
    cwd = Path.cwd()
    os.chdir(folder.parent)
    try:
        yield Path(folder.name)
    finally:
        os.chdir(cwd)


def batch(input_dir: Path, out_dir: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(
            ["batch", str(input_dir), "--out", str(out_dir), "--review-below", REVIEW_BELOW, *extra]
        )
    return code, err.getvalue()


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (records and review queue included) by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def error_lines(err: str) -> list[str]:
    return sorted(line for line in err.splitlines() if ": error: " in line)


@pytest.fixture(scope="module")
def local_run(
    inputs: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, bytes], str]:
    """The outputs of a plain local run, and its error lines."""
    out = tmp_path_factory.mktemp("local-run")
    code, err = batch(inputs, out, "--workers", "1")
    assert code == 1, err
    assert f"error: {inputs / 'bad.png'}: {BAD_LINE}" in err
    files = tree(out)
    assert any(name.startswith("review/") for name in files), "no review files to compare"
    return files, err


@pytest.fixture(scope="module")
def scheduler(nothing_left_running: None) -> Iterator[str]:
    """A two-worker LocalCluster (processes), as an existing scheduler's address."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def test_cluster_addresses_are_parsed() -> None:
    assert parse_cluster("local:2") == ClusterSpec(local_workers=2)
    assert parse_cluster("tcp://10.0.0.5:8786") == ClusterSpec(address="tcp://10.0.0.5:8786")
    assert parse_cluster("sched.lan:8786") == ClusterSpec(address="tcp://sched.lan:8786")
    for bad in ("local:0", "local:", "local:two", "tcp://host", "http://host:80", "8786"):
        with pytest.raises(UsageError, match="cluster"):
            parse_cluster(bad)


def test_local_2_writes_what_a_local_run_writes_and_stops_its_processes(
    inputs: Path, local_run: tuple[dict[str, bytes], str], tmp_path: Path
) -> None:
    before = children()
    code, err = batch(inputs, tmp_path / "out", "--cluster", "local:2", "--chunk", "2")
    assert code == 1, err
    assert tree(tmp_path / "out") == local_run[0]
    # The failed image is named in the same one line as in a local run.
    assert error_lines(err) == error_lines(local_run[1])
    assert BAD_LINE in err
    left = wait_gone(before)
    assert not left, f"local:2 left running: {describe(left)}"


def test_a_worker_killed_mid_run_changes_nothing(
    scheduler: str, inputs: Path, local_run: tuple[dict[str, bytes], str], tmp_path: Path
) -> None:
    from distributed import Client

    out = tmp_path / "out"
    result: dict[str, Any] = {}

    def run() -> None:
        result["code"], result["err"] = batch(inputs, out, "--cluster", scheduler, "--chunk", "1")

    with Client(scheduler, set_as_default=False) as client:
        pids = client.run(os.getpid)
        thread = threading.Thread(target=run)
        thread.start()
        try:
            victim = busy_worker(client)
            os.kill(pids[victim], signal.SIGKILL)
            # Mid-run: the worker was reading, nothing was reported yet.
            assert not (out / "report.jsonl").exists()
        finally:
            thread.join(timeout=300)
        assert not thread.is_alive()
        assert not running(pids[victim])
    assert result["code"] == 1, result["err"]
    assert tree(out) == local_run[0]


def busy_worker(client: Any, timeout_s: float = 120.0) -> str:
    """The address of a worker that is running one of our tasks."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for address, keys in client.processing().items():
            if any("read_chunk" in str(k) for k in keys):
                return str(address)
        time.sleep(0.02)
    raise AssertionError("no worker started reading")


def test_a_worker_that_cannot_load_the_model_fails_the_run_in_one_line(
    scheduler: str, inputs: Path, untrained_model_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(untrained_model_dir, model)
    classifier = load_classifier(model)
    with connect_cluster(parse_cluster(scheduler)) as cluster:
        reader = cluster_reader(cluster, classifier, 0.9)
        # The client has the model; the workers do not find it any more.
        (model / TFLITE_FILE).unlink()
        with pytest.raises(ModelError) as local_error:
            load_classifier(model)
        with pytest.raises(ModelError) as worker_error:
            run_batch(inputs, tmp_path / "out", classifier, reader=reader)
    assert str(worker_error.value) == str(local_error.value)
    assert "\n" not in str(worker_error.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_exits_3_with_one_line_within_15_s(
    inputs: Path, tmp_path: Path
) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    proc = subprocess.run(
        [*GRIDREADER, "batch", str(inputs), "--out", str(tmp_path / "o"), "--cluster", address],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    seconds = time.monotonic() - t0
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"gridreader batch: error: {address}: cannot reach the scheduler")
    assert seconds < 15, f"{seconds:.1f} s"
    assert not (tmp_path / "o").exists()


def test_a_client_killed_mid_run_resumes_like_a_local_run(
    scheduler: str, inputs: Path, local_run: tuple[dict[str, bytes], str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    cmd = [*GRIDREADER, "batch", str(inputs), "--out", str(out)]
    cmd += ["--review-below", REVIEW_BELOW, "--cluster", scheduler, "--chunk", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not list((out / ".gridreader").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()
    finally:
        proc.wait(timeout=60)
    done = len(list((out / ".gridreader").glob("*.json")))
    assert 0 < done < 8, f"{done} records when the client was killed"
    code, err = batch(inputs, out, "--cluster", scheduler)
    assert code == 1, err
    assert tree(out) == local_run[0]


def test_nightly_reads_on_the_configured_cluster(
    scheduler: str, clear_tables: tuple[Path, list[ClearTable]], tmp_path: Path
) -> None:
    day = tmp_path / "out" / "2024-05-01"
    screens = day / "screens"
    screens.mkdir(parents=True)
    # Screenshots with their sidecars: the targets count as captured today.
    for i, t in enumerate(clear_tables[1][:3]):
        stem = f"t{i}-20240501T000000Z"
        Image.open(t.path).save(screens / f"{stem}.png")
        (screens / f"{stem}.json").write_text("{}", encoding="utf-8")
    targets = "".join(
        f'[[target]]\nname = "t{i}"\nurl = "http://127.0.0.1:9/"\ntable = "#t"\n' for i in range(3)
    )
    config = tmp_path / "nightly.toml"
    config.write_text(
        f'root = "out"\nreview_below = {REVIEW_BELOW}\n[cluster]\naddress = "{scheduler}"\n'
        + targets,
        encoding="utf-8",
    )
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["nightly", "--config", str(config), "--date", "2024-05-01"])
    assert code == 0
    log = (day / "nightly.log").read_text(encoding="utf-8")
    assert f"cluster {scheduler}: scheduler {scheduler}" in log
    code, err = batch(screens, tmp_path / "local", "--workers", "1")
    assert code == 0, err
    assert tree(day / "tables") == tree(tmp_path / "local")


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ('[cluster]\naddress = "local:0"\n', "cluster.address: cluster 'local:0'"),
        ("[cluster]\naddress = 8786\n", "cluster.address: expected a string"),
        ('[cluster]\nadress = "local:2"\n', "cluster: expected a table with one key"),
        ('cluster = "local:2"\n', "cluster: expected a table with one key"),
    ],
)
def test_a_bad_cluster_section_is_named(
    section: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "nightly.toml"
    target = '[[target]]\nname = "a"\nurl = "http://127.0.0.1:9/"\ntable = "#t"\n'
    config.write_text('root = "out"\n' + section + target, encoding="utf-8")
    assert main(["nightly", "--config", str(config)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
