"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, abort, redirect, request
from werkzeug.serving import make_server

# --- no test leaves a process behind (issue 17) ----------------------------------------

_PR_SET_CHILD_SUBREAPER = 36
# The standard library's fork server and resource tracker live as long as the
# interpreter that started them, by design; they are not a test's leftovers.
_INTERPRETER_HELPERS = (b"multiprocessing.forkserver", b"multiprocessing.resource_tracker")


def child_processes(pid: int) -> list[int]:
    """Every live (not zombie) process below ``pid``, from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError, ValueError):
                    with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                        kids = [int(k) for k in f.read().split()]
                    todo += [k for k in kids if k not in found]
                    found += [k for k in kids if k not in found]
    return [p for p in found if _is_running(p)]


def _is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").strip()
    except OSError:
        return b""


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fail the run if any process started by a test is still running at the end.

    pytest becomes a child subreaper first, so a process whose parent died
    (an orphaned browser, a daemonised crash handler) is re-parented here and
    counted, instead of escaping to init.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield
    me = os.getpid()
    deadline = time.monotonic() + 5
    left = []
    while True:
        left = [
            p
            for p in child_processes(me)
            if not any(h in _cmdline(p) for h in _INTERPRETER_HELPERS)
        ]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    described = [f"{p}: {_cmdline(p)[:160].decode(errors='replace')}" for p in left]
    for p in left:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    # Reap what was re-parented here (zombies of the session included).
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass
    if described:
        pytest.fail("processes left behind by the tests:\n" + "\n".join(described))


# --- capture: a small web site served on 127.0.0.1 for the browser tests ------------

CAPTURE_USER = "alice"
CAPTURE_PASSWORD = "s3cret-Pa55word-7319"
CAPTURE_TOKEN = "session-token-ok"
PAGE_COLORS = ("#d00000", "#00a000", "#0000d0")  # page 1, 2, 3 of the paged table
FONT_DELAY_S = 1.5


@dataclass(frozen=True)
class CaptureSite:
    """The test site: ``url(path)`` gives an absolute URL on it."""

    base: str
    username: str = CAPTURE_USER
    password: str = CAPTURE_PASSWORD
    page_colors: tuple[str, ...] = PAGE_COLORS

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _page(body: str, head: str = "") -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<style>body{margin:0;padding:20px;font:16px 'DejaVu Sans',sans-serif}</style>"
        f"{head}</head><body>{body}</body></html>"
    )


def _rows(rows: int, cols: int, color: str, prefix: str = "") -> str:
    return "".join(
        "<tr>"
        + "".join(
            f"<td style='background:{color};padding:6px 10px'>{prefix}{r * cols + c}</td>"
            for c in range(cols)
        )
        + "</tr>"
        for r in range(rows)
    )


def _find_web_font() -> Path:
    # fonts-dejavu-core (a test dependency) ships it; any other TTF will do too.
    preferred = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf")
    if preferred.is_file():
        return preferred
    for path in sorted(Path("/usr/share/fonts").rglob("*.ttf")):
        if "mono" not in path.name.lower():
            return path
    raise FileNotFoundError("no TTF font under /usr/share/fonts for the web-font test")


_LOGIN_FORM = """
<form method="post" action="/login">
  <input id="user" name="user"> <input id="pass" name="pass" type="password">
  <button type="submit">Sign in</button>
</form>
"""

_PAGED_JS = """
<script>
const colors = %s;
let page = 0;
function render() {
  const rows = [];
  for (let r = 0; r < 4; r++) {
    const cells = [];
    for (let c = 0; c < 5; c++) {
      const style = `background:${colors[page]};padding:8px 14px`;
      cells.push(`<td style="${style}">p${page + 1}-${r}${c}</td>`);
    }
    rows.push(`<tr>${cells.join('')}</tr>`);
  }
  document.querySelector('#pt tbody').innerHTML = rows.join('');
}
render();
document.querySelector('a.next').addEventListener('click', (e) => {
  e.preventDefault();
  // The next page arrives a little later, as from a server.
  setTimeout(() => { page = Math.min(page + 1, colors.length - 1); render(); }, 200);
});
</script>
"""


def make_capture_app() -> Flask:
    """The pages the capture tests screenshot."""
    app = Flask("capture_site")
    font_bytes = _find_web_font().read_bytes()

    @app.get("/plain")
    def plain() -> str:
        return _page(f"<h1>Plain</h1><table id='t'>{_rows(3, 4, '#e0e0e0')}</table>")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Response | str:
        if request.method == "POST":
            if request.form.get("user") == CAPTURE_USER and (
                request.form.get("pass") == CAPTURE_PASSWORD
            ):
                resp = redirect("/secret", code=303)
                resp.set_cookie("session", CAPTURE_TOKEN)
                return resp
            # A careless site that echoes what was typed: it must not reach our outputs.
            typed = request.form.get("pass", "")
            return _page(f"<p class='error'>Wrong password {typed}</p>{_LOGIN_FORM}")
        return _page(_LOGIN_FORM)

    @app.get("/secret")
    def secret() -> Response | str:
        if request.cookies.get("session") != CAPTURE_TOKEN:
            return redirect("/login", code=303)
        return _page(f"<table id='history'>{_rows(4, 5, '#ffe0a0')}</table>")

    @app.get("/delayed")
    def delayed() -> str:
        table = f"<table id='late'>{_rows(3, 3, '#ff8800')}</table>"
        script = (
            "<script>setTimeout(() => document.body.insertAdjacentHTML("
            f"'beforeend', {table!r}), 800);</script>"
        )
        return _page("<p>Loading...</p>" + script)

    @app.get("/tall")
    def tall() -> str:
        rows = []
        for i in range(90):
            color = "#0000ff" if i < 10 else "#ff0000" if i >= 80 else "#ffffff"
            rows.append(
                f"<tr style='height:30px'><td style='padding:0;background:{color}'>{i}</td>"
                f"<td style='padding:0;background:{color}'>{i * 2}</td></tr>"
            )
        table = (
            "<table id='tall' style='border-collapse:collapse;border-spacing:0;"
            "width:1100px;table-layout:fixed;font-size:14px;margin-left:40px'>"
            f"{''.join(rows)}</table>"
        )
        return _page(f"<div style='height:150px'></div>{table}<p>end</p>")

    @app.get("/paged")
    def paged() -> str:
        body = "<table id='pt'><tbody></tbody></table><p><a class='next' href='#'>next</a></p>"
        return _page(body + _PAGED_JS % (list(PAGE_COLORS),))

    @app.get("/nav/<int:page>")
    def nav(page: int) -> str:
        # Paging by following links: every page is a new document.
        color = PAGE_COLORS[(page - 1) % len(PAGE_COLORS)]
        table = f"<table id='pt'>{_rows(3, 4, color, prefix=f'n{page}-')}</table>"
        return _page(f"{table}<p><a class='next' href='/nav/{page + 1}'>next</a></p>")

    @app.get("/hidden")
    def hidden() -> str:
        # The table shows only after a click on a button far down the page.
        table = f"<table id='h' style='display:none'>{_rows(3, 3, '#8040c0')}</table>"
        button = (
            "<div style='height:1500px'></div><button id='show-all' onclick=\""
            "document.querySelector('#h').style.display='table'\">Show all</button>"
        )
        return _page(table + button)

    @app.get("/font/<mode>")
    def font_page(mode: str) -> str:
        head = (
            "<style>@font-face{font-family:'Late';"
            f"src:url('/fontfile/{mode}.ttf') format('truetype');font-display:block}}"
            "#ft td{font:24px 'Late',monospace;padding:4px 10px}</style>"
        )
        table = "<table id='ft'><tr><td>12</td><td>34</td><td>5</td></tr></table>"
        # Inserted after the load event, so that the font is fetched only afterwards.
        script = (
            "<script>addEventListener('load', () => setTimeout(() => "
            f"document.body.insertAdjacentHTML('beforeend', {table!r}), 50));</script>"
        )
        return _page(script, head)

    @app.get("/fontfile/<mode>.ttf")
    def font_file(mode: str) -> Response:
        if mode == "missing":
            abort(404)
        if mode == "slow":
            time.sleep(FONT_DELAY_S)
        return Response(font_bytes, mimetype="font/ttf")

    @app.get("/never")
    def never() -> str:
        return _page("<p>No table here.</p>")

    @app.get("/slow")
    def slow() -> str:
        time.sleep(4)
        return _page("<table id='t'><tr><td>late</td></tr></table>")

    return app


@pytest.fixture(scope="session")
def capture_site() -> Iterator[CaptureSite]:
    """The capture test site, served on 127.0.0.1 for the whole session."""
    server = make_server("127.0.0.1", 0, make_capture_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield CaptureSite(base=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()


# --- grid, model and main-job tests: shared data and the default model --------------

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MNIST_NPZ = DATA_DIR / "mnist" / "mnist-digits.npz"
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """The MNIST file kept in the project (data/mnist/)."""
    if not MNIST_NPZ.is_file():
        pytest.fail(f"{MNIST_NPZ} is missing: it ships with the project (data/mnist/)")
    return MNIST_NPZ


@pytest.fixture(scope="session")
def default_classifier() -> Any:
    """The committed default model (``models/DEFAULT``), loaded once per session."""
    from gridreader.model import load_classifier

    return load_classifier()


# --- reliability and nightly tests (issue 6): a test model, table images, fuzz counts ---

_FUZZ_COUNTS = pytest.StashKey[dict[str, int]]()


@pytest.fixture(scope="session")
def untrained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded, untrained model in the real format (``model.keras`` + card).

    The reliability tests check the machinery (kill and resume, disk full,
    locking), not accuracy, so they do not wait for ``models/DEFAULT``.
    """
    import keras

    from gridreader.classes import parse_classes
    from gridreader.model import build_model, save_model
    from gridreader.preprocess import INPUT_SIZE

    keras.utils.set_random_seed(6)
    classes = parse_classes("0-36")
    folder = tmp_path_factory.mktemp("models") / "untrained"
    card = {
        "classes": list(classes),
        "input_size": list(INPUT_SIZE),
        "data": "none: untrained, for tests",
        "params": {"seed": 6},
        "metrics": {},
        "command": "tests/conftest.py untrained_model_dir",
    }
    save_model(build_model(len(classes), INPUT_SIZE), folder, card)
    return folder


@pytest.fixture(scope="session")
def table_image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve ruled tables (12 x 8 cells) as PNGs, ``t00.png`` .. ``t11.png``."""
    import numpy as np
    from PIL import Image

    from gridreader.synth.tables import render_table

    folder = tmp_path_factory.mktemp("tables")
    font = DEJAVU_DIR / "DejaVuSans.ttf"
    for i in range(12):
        rng = np.random.default_rng(i)
        values = [
            [int(rng.integers(0, 37)) if rng.random() > 0.15 else None for _ in range(8)]
            for _ in range(12)
        ]
        table = render_table(
            values, "ruled", seed=i, cell=(56, 30), font=font if font.is_file() else None
        )
        Image.fromarray(table.image).save(folder / f"t{i:02d}.png")
    return folder


@pytest.fixture(scope="session")
def fuzz_counts(pytestconfig: pytest.Config) -> dict[str, int]:
    """Inputs fed to the fuzz tests, by kind; printed in the terminal summary."""
    return pytestconfig.stash.setdefault(_FUZZ_COUNTS, {})


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    counts = config.stash.get(_FUZZ_COUNTS, None)
    if counts:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        terminalreporter.write_line(f"fuzzed {sum(counts.values())} inputs ({detail})")


# --- main-job tests (issue 3): clear tables with their truth ----------------------------

# Tables for the main-job tests: clear faces, cells of 30 px and more, truth beside them.
CLEAR_TABLES = (
    # stem, style, shape, seed, font, cell (w, h), extra render_table arguments
    ("t1-ruled", "ruled", (4, 5), 11, "DejaVuSans.ttf", (70, 38), {"line_width": 1}),
    ("t2-roulette", "roulette", (3, 7), 12, "DejaVuSans-Bold.ttf", (60, 44), {"line_width": 2}),
    ("t3-dark", "dark", (5, 4), 13, "DejaVuSans.ttf", (72, 36), {}),
    ("t4-borderless", "borderless", (4, 4), 14, "DejaVuSans.ttf", (70, 36), {}),
    ("t5-zebra", "zebra", (5, 3), 15, "DejaVuSans.ttf", (80, 34), {}),
    ("t6-ruled-jpeg", "ruled", (3, 6), 16, "DejaVuSans.ttf", (64, 40), {"jpeg_quality": 85}),
)


@dataclass(frozen=True)
class ClearTable:
    """One rendered table on disk with its truth."""

    path: Path
    style: str
    values: list[list[int | None]]

    @property
    def stem(self) -> str:
        return self.path.stem

    def csv_rows(self) -> list[list[str]]:
        return [["" if v is None else str(v) for v in row] for row in self.values]


def clear_values(seed: int, rows: int, cols: int, style: str) -> list[list[int | None]]:
    """Seeded 0-36 values; a few empty cells except in roulette."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[list[int | None]] = [
        [int(rng.integers(0, 37)) for _ in range(cols)] for _ in range(rows)
    ]
    if style != "roulette":
        for k in range(max(1, rows * cols // 8)):
            out[(k * 3 + seed) % rows][(k * 5 + seed) % cols] = None
    return out


@pytest.fixture(scope="session")
def clear_tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ClearTable]]:
    """``(folder, tables)``: six tables as PNG/JPEG with ``NAME.csv`` and ``NAME.boxes.json``
    (the bench layout) beside them. Treat the folder as read-only; copy it to change it."""
    import csv
    import json

    from PIL import Image

    from gridreader.synth.tables import render_table

    if not (DEJAVU_DIR / "DejaVuSans.ttf").is_file():
        pytest.fail(f"{DEJAVU_DIR} is missing: install fonts-dejavu-core (make sysdeps-test)")
    folder = tmp_path_factory.mktemp("clear-tables")
    tables = []
    for stem, style, (rows, cols), seed, font, cell, extra in CLEAR_TABLES:
        values = clear_values(seed, rows, cols, style)
        t = render_table(values, style, seed=seed, font=DEJAVU_DIR / font, cell=cell, **extra)
        # The JPEG-compressed table is stored as a .jpg file, the others as PNG.
        path = folder / f"{stem}.{'jpg' if 'jpeg_quality' in extra else 'png'}"
        Image.fromarray(t.image).save(path, **({"quality": 92} if path.suffix == ".jpg" else {}))
        with open(folder / f"{stem}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(
                [["" if v is None else v for v in row] for row in values]
            )
        meta = {"style": style, "rows": rows, "cols": cols, "boxes": t.boxes}
        (folder / f"{stem}.boxes.json").write_text(json.dumps(meta), encoding="utf-8")
        tables.append(ClearTable(path, style, values))
    return folder, tables
