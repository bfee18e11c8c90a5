"""``batch`` on a Dask cluster (``dask.distributed``), when one machine is not enough.

The work is split as in a local run (see :mod:`gridreader.batch`): the
workers do everything up to an image's output bytes (load, find the grid, cut
the cells, run the network, encode the review crops), a chunk of images per
task; the client writes every output with batch's atomic, resumable,
skip-if-fresh logic. A cluster run therefore writes exactly what a local run
writes. The workers read the images and the model themselves: they must see
them at the paths the client sees (a shared filesystem).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import importlib.util
import logging
import socket
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridreader.batch import ImageRead, ImageReader, image_read
from gridreader.errors import ClusterError, ModelError, UsageError, one_line
from gridreader.model import TFLITE_FILE, Classifier, load_classifier
from gridreader.pipeline import Analysed, Failed, analyse_safely, classify
from gridreader.types import Shape

LOCAL_PREFIX = "local:"
CONNECT_TIMEOUT_S = 5
"""How long the client tries to reach a scheduler: a reachable one answers in
milliseconds, and a bad address must fail within 15 s of the command's start
(its imports take up to 5 s on a busy 2-core machine)."""
WORKERS_TIMEOUT_S = 120
"""How long a run waits for a first worker to join an empty cluster."""
CHUNK_IMAGES = 16
"""Images per task: about half a second of work (20-40 ms an image here), so
the scheduler's few milliseconds per task are about 1% of it, the network
runs on batches of several hundred cells, and a lost worker costs little work."""
AHEAD_PER_THREAD = 2
"""Tasks queued per worker thread: one running, one ready, and memory bounded."""
_THREADS_REFRESH_S = 5.0


@dataclass(frozen=True)
class ClusterSpec:
    """Where a batch runs: an existing scheduler, or a local cluster of N processes."""

    address: str | None = None
    local_workers: int = 0

    def __str__(self) -> str:
        return self.address or f"{LOCAL_PREFIX}{self.local_workers}"


@dataclass(frozen=True)
class Cluster:
    """A connected client, with the scheduler's address and dashboard (if any)."""

    client: Any = field(repr=False)
    address: str
    dashboard: str | None


@dataclass(frozen=True)
class ImageJob:
    """One image for a worker: its path as listed, the absolute path the worker
    opens, and its output stem."""

    path: Path
    source: str
    stem: str


@dataclass(frozen=True)
class ModelRef:
    """The model a worker loads: its absolute folder, the folder as the client
    names it (for messages), and its file's size and mtime (the client's copy)."""

    path: str
    shown: str
    size: int
    mtime_ns: int


def parse_cluster(text: str) -> ClusterSpec:
    """``local:N`` (N worker processes on this machine) or a scheduler address
    (``tcp://HOST:PORT``, ``tls://HOST:PORT``, or ``HOST:PORT``).

    Raises:
        UsageError: anything else.
    """
    text = text.strip()
    if text.startswith(LOCAL_PREFIX):
        count = text[len(LOCAL_PREFIX) :]
        if not count.isdigit() or int(count) < 1:
            raise UsageError(f"cluster {text!r}: expected local:N with N at least 1")
        return ClusterSpec(local_workers=int(count))
    scheme, _, rest = text.rpartition("://")
    host, _, port = rest.rpartition(":")
    if scheme not in ("", "tcp", "tls") or not host or not port.isdigit():
        raise UsageError(
            f"cluster {text!r}: expected tcp://HOST:PORT (a scheduler) or local:N (N workers here)"
        )
    return ClusterSpec(address=text if scheme else f"tcp://{text}")


@contextlib.contextmanager
def connect_cluster(spec: ClusterSpec) -> Iterator[Cluster]:
    """Connect to the scheduler (starting a local cluster first for ``local:N``)
    and wait for a first worker; everything started here is stopped on leaving.

    Raises:
        ClusterError: the scheduler cannot be reached within
            ``CONNECT_TIMEOUT_S``, or no worker joins within ``WORKERS_TIMEOUT_S``.
    """
    from distributed import Client

    with contextlib.ExitStack() as stack:
        address = spec.address or stack.enter_context(_local_cluster(spec.local_workers))
        _probe_scheduler(address)
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"{address}: cannot reach the scheduler ({one_line(e)})") from e
        stack.callback(client.close)
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except (OSError, TimeoutError) as e:
            raise ClusterError(
                f"{address}: no worker joined within {WORKERS_TIMEOUT_S} s ({one_line(e)})"
            ) from e
        yield Cluster(client, address, _dashboard(client))


def _probe_scheduler(address: str) -> None:
    """Raise ClusterError unless a Dask scheduler answers at ``address``.

    A plain TCP connection first: a refused or unanswered address fails
    without the seconds of importing ``distributed`` (and without its retries
    of a refused connection). Then a Dask handshake: a ``Client`` that fails
    half way (something else answers there: a web server, a proxy) spends
    another 20 s closing; a bare connection fails at once.
    """
    host, _, port = address.partition("://")[2].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except TimeoutError as e:
        raise ClusterError(
            f"{address}: cannot reach the scheduler (no answer within {CONNECT_TIMEOUT_S} s)"
        ) from e
    except OSError as e:
        raise ClusterError(f"{address}: cannot reach the scheduler ({e.strerror or e})") from e

    from distributed.comm import connect
    from distributed.security import Security

    async def probe() -> None:
        args = Security().get_connection_args("client")
        comm = await connect(address, timeout=CONNECT_TIMEOUT_S, **args)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), CONNECT_TIMEOUT_S + 1))
    except Exception as e:  # whatever is not a scheduler fails in its own way
        raise ClusterError(f"{address}: cannot reach the scheduler ({one_line(e)})") from e


@contextlib.contextmanager
def _local_cluster(workers: int) -> Iterator[str]:
    from distributed import LocalCluster

    # One thread per worker process, as the local pool: N processes use N
    # cores. Free ports only: several runs (or test sessions) may share a host.
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def _dashboard(client: Any) -> str | None:
    # Without bokeh (an optional extra, see the README) the page only says to
    # install it; the scheduler's dashboard is where its own bokeh is.
    if importlib.util.find_spec("bokeh") is None:
        return None
    services = client.scheduler_info().get("services", {})
    return str(client.dashboard_link) if "dashboard" in services else None


def model_ref(classifier: Classifier) -> ModelRef:
    """What the workers must load: the client's model, by path and file stamp."""
    st = (classifier.path / TFLITE_FILE).stat()
    return ModelRef(
        str(classifier.path.absolute()), str(classifier.path), st.st_size, st.st_mtime_ns
    )


def cluster_reader(
    cluster: Cluster,
    classifier: Classifier,
    review_below: float,
    chunk_images: int = CHUNK_IMAGES,
    shape: Shape | None = None,
) -> ImageReader:
    """A :data:`~gridreader.batch.ImageReader` that reads on ``cluster``'s workers,
    ``chunk_images`` images per task, yielding each chunk's images as it completes.
    ``shape`` and the capture sidecars are used as in a local run."""
    model = model_ref(classifier)

    def read(todo: list[Path], stems: Mapping[Path, str]) -> Generator[ImageRead, None, None]:
        jobs = [ImageJob(p, str(p.absolute()), stems[p]) for p in todo]
        chunks = [tuple(jobs[i : i + chunk_images]) for i in range(0, len(jobs), chunk_images)]
        yield from _read_chunks(cluster, chunks, model, review_below, shape)

    return read


def _read_chunks(
    cluster: Cluster,
    chunks: list[tuple[ImageJob, ...]],
    model: ModelRef,
    review_below: float,
    shape: Shape | None,
) -> Iterator[ImageRead]:
    # A few tasks per worker thread are queued at a time, not the whole run:
    # results wait on the workers only briefly, the client's memory stays
    # flat, and a killed client leaves little work in flight.
    from distributed import KilledWorker, as_completed

    client = cluster.client
    todo = list(reversed(chunks))
    running: dict[Any, tuple[ImageJob, ...]] = {}
    done = as_completed(loop=client.loop)
    threads, checked = _threads(client), time.monotonic()
    try:
        while todo or running:
            while todo and len(running) < AHEAD_PER_THREAD * threads:
                chunk = todo.pop()
                future = client.submit(read_chunk, chunk, model, review_below, shape, pure=False)
                running[future] = chunk
                done.add(future)
            future = next(done)
            chunk = running.pop(future)
            try:
                reads = future.result()
            except KilledWorker as e:
                raise ClusterError(
                    f"{_span(chunk)}: workers died while reading these images "
                    f"({one_line(e)}); one may need more memory than a worker has"
                ) from e
            except (concurrent.futures.CancelledError, asyncio.CancelledError, OSError) as e:
                raise ClusterError(
                    f"{cluster.address}: lost the cluster ({type(e).__name__}: {one_line(e)})"
                ) from e
            future.release()
            if time.monotonic() - checked > _THREADS_REFRESH_S:
                threads, checked = _threads(client), time.monotonic()
            yield from reads
    finally:
        for future in running:
            future.cancel()


def _threads(client: Any) -> int:
    # Workers may join or leave (an adaptive cluster): re-read now and then.
    return max(1, sum(client.nthreads().values()))


def _span(chunk: tuple[ImageJob, ...]) -> str:
    first, last = chunk[0].path, chunk[-1].path
    return str(first) if first == last else f"{first} .. {last.name}"


# --- on the workers ---------------------------------------------------------------


def read_chunk(
    jobs: tuple[ImageJob, ...],
    model: ModelRef,
    review_below: float,
    shape: Shape | None = None,
) -> list[ImageRead]:
    """Read a chunk of images on a worker: what a local run does for them, up to
    the bytes of their outputs.

    Raises:
        ModelError: this worker cannot load the model, or sees another file
            than the client's.
    """
    classifier = worker_classifier(model)
    items = [_analyse_job(job, classifier.input_size, shape) for job in jobs]
    readings = iter(classify([a for a in items if isinstance(a, Analysed)], classifier))
    reads = []
    for job, item in zip(jobs, items, strict=True):
        table = None
        if isinstance(item, Analysed):
            item, table = next(readings)
        read = image_read(item, table, job.stem, review_below, classifier)
        reads.append(dataclasses.replace(read, path=job.path))
    return reads


def _analyse_job(
    job: ImageJob, input_size: tuple[int, int], shape: Shape | None
) -> Analysed | Failed:
    # The worker opens the absolute path; messages name the image as the
    # client listed it, as a local run's do.
    item = analyse_safely(Path(job.source), input_size, shape, sidecar=True)
    warnings = tuple(w.replace(job.source, str(job.path)) for w in item.warnings)
    if isinstance(item, Failed):
        return Failed(job.path, item.error.replace(job.source, str(job.path)), warnings)
    return dataclasses.replace(item, warnings=warnings)


_MODELS: dict[ModelRef, Classifier] = {}
_MODELS_LOCK = threading.Lock()


def worker_classifier(model: ModelRef) -> Classifier:
    """The model, loaded once per worker process and kept while it is in use.

    Raises:
        ModelError: it cannot be loaded here, or this worker's file is not the
            client's (another size or mtime at that path).
    """
    with _MODELS_LOCK:
        cached = _MODELS.get(model)
        if cached is not None:
            return cached
        if not _MODELS:
            _configure_worker()
        try:
            classifier = load_classifier(model.path)
            st = (Path(model.path) / TFLITE_FILE).stat()
        except ModelError as e:
            raise ModelError(str(e).replace(model.path, model.shown)) from None
        except OSError as e:
            raise ModelError(f"{Path(model.shown) / TFLITE_FILE}: {e.strerror or e}") from None
        if (st.st_size, st.st_mtime_ns) != (model.size, model.mtime_ns):
            raise ModelError(
                f"{Path(model.shown) / TFLITE_FILE}: not the client's file on this worker "
                "(another size or mtime): the workers must see the client's model"
            )
        # One model per worker: a long-lived worker serving successive runs
        # of a retrained model does not keep the old ones.
        _MODELS.clear()
        _MODELS[model] = classifier
        return classifier


def _configure_worker() -> None:
    # The local pool's worker settings (one OpenCV thread, freed memory kept
    # for the next image); they matter as much in a Dask worker.
    from gridreader.pipeline import _quiet_worker

    _quiet_worker()
