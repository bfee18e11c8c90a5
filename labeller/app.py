"""The labeller's Flask app: the page, a small JSON API and the crop images.

Everything is checked per request: the Host header must be local (a page on
another site cannot reach the app by DNS rebinding), POSTs must be JSON from
the app's own origin (no cross-site form or fetch can label), bodies are
validated field by field, and images are served only by looking their key up
in the review index, never by joining a path from the URL.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response as WerkzeugResponse

from gridreader.errors import LabelError
from labeller.locate import StripSpot, locate_crop
from labeller.review import AnyReviewIndex, LiveReviewIndex, ReviewItem
from labeller.store import (
    DEFAULT_CLIENT,
    CropRecord,
    LabelStore,
    check_client,
    is_sha256,
    normalize_label,
)

GRID_MAX = 48
CONFIRM_MAX = 1000
MAX_BODY_BYTES = 256 * 1024
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class ApiError(Exception):
    """A request the API refuses; becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class LabellerState:
    """What the app's routes share: the index, the store and small caches."""

    index: AnyReviewIndex
    store: LabelStore
    allowed_hosts: frozenset[str] | None
    spots: dict[str, StripSpot | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def order(self) -> dict[str, int]:
        return self.index.order

    @property
    def class_sets(self) -> dict[tuple[str, ...], int]:
        return self.index.class_sets

    def progress(self, labelled: set[str] | None = None) -> dict[str, int]:
        done = self.store.labelled_hashes() if labelled is None else labelled
        total = len(self.index.items)
        count = sum(1 for it in self.index.items if it.sha256 in done)
        return {
            "labelled": count,
            "total": total,
            "remaining": total - count,
            "stored": len(done),
            "generation": self.index.generation,
        }


def allowed_hosts_for(bind_host: str) -> frozenset[str] | None:
    """Host names the app answers to; ``None`` (any) when bound to every interface."""
    if bind_host in WILDCARD_HOSTS:
        return None
    return LOCAL_HOSTS | {bind_host.strip("[]").lower()}


def create_app(index: AnyReviewIndex, store: LabelStore, *, host: str = "127.0.0.1") -> Flask:
    """Build the app over an indexed set of review folders and a label store.

    Args:
        index: the review crops (:func:`labeller.review.load_review_dirs`, or a
            :class:`labeller.review.LiveReviewIndex` that picks up new crops).
        store: where labels go.
        host: the address the server binds; decides which Host headers are accepted.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    state = LabellerState(index=index, store=store, allowed_hosts=allowed_hosts_for(host))
    app.extensions["gridreader_labeller"] = state
    _install_guards(app, state)
    if isinstance(index, LiveReviewIndex):
        # New crops join at the start of a request; the request reads one snapshot.
        app.before_request(index.pin)
    _install_routes(app, state)
    return app


# -- request guards ----------------------------------------------------------


def _install_guards(app: Flask, state: LabellerState) -> None:
    @app.before_request
    def check_request() -> Response | tuple[Response, int] | None:
        host = _host_name(request.host)
        if state.allowed_hosts is not None and host not in state.allowed_hosts:
            return _error(400, f"Host {request.host!r} is not this local app")
        if request.method == "POST":
            origin = request.headers.get("Origin")
            own = f"{request.scheme}://{request.host}"
            if origin is not None and origin != own:
                return _error(403, f"cross-origin request from {origin!r} refused")
            site = request.headers.get("Sec-Fetch-Site")
            if site is not None and site not in ("same-origin", "none"):
                return _error(403, f"cross-site request ({site}) refused")
        return None

    @app.after_request
    def harden(resp: Response) -> Response:
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Content-Security-Policy"] = _CSP
        return resp

    @app.errorhandler(ApiError)
    def api_error(e: ApiError) -> tuple[Response, int]:
        return _error(e.status, e.message)

    @app.errorhandler(LabelError)
    def store_error(e: LabelError) -> tuple[Response, int]:
        app.logger.error("label store: %s", e)
        return _error(503, str(e))

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> WerkzeugResponse:
        resp = e.get_response()
        resp.set_data(app.json.dumps({"error": f"{e.code} {e.name}: {e.description}"}))
        resp.content_type = "application/json"
        return resp


def _host_name(host: str) -> str:
    """``"127.0.0.1:8765"`` -> ``"127.0.0.1"``, ``"[::1]:80"`` -> ``"::1"``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


# -- routes ------------------------------------------------------------------


def _install_routes(app: Flask, state: LabellerState) -> None:
    # The routes find ``state`` in ``app.extensions`` (see ``_state``).
    app.register_blueprint(routes)


routes = Blueprint("labeller", __name__)
"""The page, the JSON API and the images; each request finds the app's
:class:`LabellerState` with :func:`_state`."""


def _state() -> LabellerState:
    state: LabellerState = current_app.extensions["gridreader_labeller"]
    return state


def _item_json(it: ReviewItem, label: str | None, *, classes: bool = False) -> dict[str, Any]:
    """An item as the page gets it."""
    state = _state()
    cell = it.cell
    out: dict[str, Any] = {
        "sha256": it.sha256,
        "name": it.name,
        "crop": f"/crop/{it.sha256}",
        "strip": f"/strip/{it.sha256}" if it.strip_path is not None else None,
        "image": cell.image,
        "image_name": Path(cell.image).name,
        "row": cell.row,
        "col": cell.col,
        "box": list(cell.box),
        "guess": cell.guess,
        "confidence": cell.confidence,
        "model": cell.model,
        "label": label,
        "class_set": state.class_sets[cell.classes],
    }
    if classes:
        out["classes"] = list(cell.classes)
    return out


def _known_item(sha: object, what: str = "sha256") -> ReviewItem:
    """The indexed item with crop hash ``sha`` (400 or 404 otherwise)."""
    index = _state().index
    if not is_sha256(sha):
        raise ApiError(400, f"{what!r} must be a lowercase sha256 hex digest")
    it = index.by_sha.get(str(sha))
    if it is None:
        raise ApiError(404, f"no review crop with sha256 {sha}")
    return it


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object body (Content-Type: application/json)")
    return body


def _client_of(body: dict[str, Any]) -> str:
    try:
        return check_client(body.get("client", DEFAULT_CLIENT))
    except LabelError as e:
        raise ApiError(400, str(e)) from None


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"query parameter {name!r} must be in {lo}..{hi}")
    return value


def _png(data: bytes, *, immutable: bool) -> Response:
    resp = Response(data, mimetype="image/png")
    resp.headers["Cache-Control"] = "private, max-age=86400, immutable" if immutable else "no-cache"
    return resp


@routes.get("/")
def page() -> str:
    return render_template("index.html", grid_max=GRID_MAX)


@routes.get("/favicon.ico")
def favicon() -> Response:
    return Response(status=204)


@routes.get("/api/progress")
def progress() -> Response:
    state = _state()
    return jsonify(state.progress())


@routes.get("/api/queue")
def queue() -> Response:
    state = _state()
    index = state.index
    store = state.store
    include_all = request.args.get("all", "0") in ("1", "true", "yes")
    limit = _int_arg("limit", len(index.items), 0, 10**9)
    labels = store.labels()
    items: list[dict[str, Any]] = []
    for it in index.items:
        if len(items) >= limit:
            break
        label = labels.get(it.sha256)
        if include_all or label is None:
            items.append(_item_json(it, label))
    return jsonify(
        {
            "items": items,
            "class_sets": [list(c) for c in state.class_sets],
            "progress": state.progress(set(labels)),
        }
    )


@routes.get("/api/next")
def next_item() -> Response:
    state = _state()
    index = state.index
    store = state.store
    after = request.args.get("after")
    start = 0
    if after is not None:
        start = state.order[_known_item(after, "after").sha256] + 1
    done = store.labelled_hashes()
    n = len(index.items)
    for k in range(n):
        it = index.items[(start + k) % n]
        if it.sha256 not in done and it.sha256 != after:
            return jsonify({"item": _item_json(it, None), "progress": state.progress(done)})
    return jsonify({"item": None, "progress": state.progress(done)})


@routes.get("/api/item/<sha>")
def get_item(sha: str) -> Response:
    state = _state()
    store = state.store
    it = _known_item(sha)
    lab = store.get(it.sha256)
    return jsonify(_item_json(it, lab.label if lab else None, classes=True))


@routes.get("/api/grid")
def grid() -> Response:
    state = _state()
    index = state.index
    store = state.store
    limit = _int_arg("limit", GRID_MAX, 1, GRID_MAX)
    done = store.labelled_hashes()
    remaining: dict[str, int] = {}
    for it in index.items:
        if it.sha256 not in done:
            remaining[it.cell.guess] = remaining.get(it.cell.guess, 0) + 1
    wanted = request.args.get("class")
    if wanted is None:
        wanted = max(remaining, key=lambda c: remaining[c]) if remaining else ""
    elif len(wanted) > 16:
        raise ApiError(400, "query parameter 'class' is too long")
    items = [
        _item_json(it, None)
        for it in index.items
        if it.cell.guess == wanted and it.sha256 not in done
    ][:limit]
    classes = [{"class": c, "remaining": remaining[c]} for c in sorted(remaining, key=_class_key)]
    return jsonify(
        {"class": wanted, "items": items, "classes": classes, "progress": state.progress(done)}
    )


@routes.post("/api/label")
def label() -> Response:
    state = _state()
    store = state.store
    body = _json_body()
    it = _known_item(body.get("sha256"))
    client = _client_of(body)
    try:
        value = normalize_label(body.get("label"), it.cell.classes)
    except LabelError as e:
        raise ApiError(400, str(e)) from None
    record = _record_or_409(it)
    stored = store.add(record, value, client=client)
    return jsonify({"sha256": it.sha256, "label": stored, "progress": state.progress()})


@routes.post("/api/confirm")
def confirm() -> Response:
    state = _state()
    store = state.store
    body = _json_body()
    client = _client_of(body)
    shas = body.get("sha256s")
    if not isinstance(shas, list) or not 1 <= len(shas) <= CONFIRM_MAX:
        raise ApiError(400, f"'sha256s' must be a list of 1..{CONFIRM_MAX} sha256 digests")
    if len(set(map(str, shas))) != len(shas):
        raise ApiError(400, "'sha256s' lists a crop twice")
    items = [_known_item(s, "sha256s") for s in shas]
    wanted = body.get("class")
    try:
        value = normalize_label(wanted, items[0].cell.classes)
        for it in items[1:]:
            normalize_label(value, it.cell.classes)
    except LabelError as e:
        raise ApiError(400, str(e)) from None
    records = [_record_or_409(it) for it in items]
    stored = store.add_many(records, value, client=client)
    return jsonify({"class": stored, "stored": len(records), "progress": state.progress()})


@routes.post("/api/undo")
def undo() -> Response:
    state = _state()
    store = state.store
    body = _json_body()
    client = _client_of(body)
    undone = store.undo(client=client)
    return jsonify(
        {
            "undone": [{"sha256": u.sha256, "label": u.label, "now": u.now} for u in undone],
            "progress": state.progress(),
        }
    )


@routes.get("/api/locate/<sha>")
def locate(sha: str) -> Response:
    state = _state()
    it = _known_item(sha)
    with state.lock:
        cached = it.sha256 in state.spots
        spot = state.spots.get(it.sha256)
    if not cached:
        strip = it.read_strip()
        try:
            crop = it.read_crop()
        except LabelError:
            crop = b""
        spot = locate_crop(crop, strip) if strip else None
        with state.lock:
            state.spots[it.sha256] = spot
    if spot is None:
        return jsonify({"found": False})
    spot_json = {"x0": spot.x0, "x1": spot.x1, "width": spot.width, "height": spot.height}
    return jsonify({"found": True, **spot_json})


@routes.get("/crop/<key>")
def crop(key: str) -> Response:
    state = _state()
    index = state.index
    store = state.store
    sha = key if is_sha256(key) else index.by_name.get(key)
    if sha is None:
        raise ApiError(404, "no such crop")
    it = index.by_sha.get(sha)
    if it is not None:
        try:
            return _png(it.read_crop(), immutable=sha == key)
        except LabelError:
            pass
    # Labelled crops stay viewable after their review folder is gone.
    stored = store.crop_png(sha)
    if stored is None:
        raise ApiError(404, "no such crop")
    return _png(stored, immutable=sha == key)


@routes.get("/strip/<key>")
def strip(key: str) -> Response:
    state = _state()
    index = state.index
    it = index.by_sha.get(key) if is_sha256(key) else None
    data = it.read_strip() if it is not None else None
    if data is None:
        raise ApiError(404, "no such row strip")
    return _png(data, immutable=True)


def _record_or_409(it: ReviewItem) -> CropRecord:
    store = _state().store
    try:
        return it.to_record()
    except LabelError as e:
        # A crop labelled before keeps its stored bytes: it can still be relabelled.
        stored = store.crop_png(it.sha256)
        if stored is None:
            raise ApiError(409, str(e)) from None
        return it.to_record(stored)


def _class_key(name: str) -> tuple[int, int]:
    return (1, 0) if not name.isdigit() else (0, int(name))


# -- serving -----------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """Logs failed requests only; a labelling session makes thousands of good ones."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, int) and code < 400:
            return
        super().log_request(code, size)


def make_label_server(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """A threaded WSGI server for ``app``; port 0 picks a free port.

    Raises:
        LabelError: the address cannot be bound.
    """
    # Bind ourselves: werkzeug reports a busy port by printing and exiting.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as e:
        raise LabelError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    try:
        bound_port = int(sock.getsockname()[1])
        return make_server(
            host, bound_port, app, threaded=True, request_handler=_QuietHandler, fd=sock.fileno()
        )
    finally:
        sock.close()  # the server holds its own duplicate of the socket


def serve(app: Flask, host: str, port: int, *, ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; ``ready(url)`` is called once the socket listens."""
    server = make_label_server(app, host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.port}/"
    if ready is not None:
        ready(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
