"""The labeller's JSON API and file serving, through Flask's test client."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_labeller_review import CELL_W, Cell, make_review_dir, queue_order

from labeller.app import create_app
from labeller.review import load_review_dirs
from labeller.store import LabelStore


def build(dirs: list[Path], db: Path, host: str = "127.0.0.1") -> Flask:
    return create_app(load_review_dirs(dirs), LabelStore(db), host=host)


@pytest.fixture
def review(tmp_path: Path) -> list[Cell]:
    # The model says "7" for the first 12 cells (right or not), the truth for the rest.
    return make_review_dir(
        tmp_path / "review", 30, seed=11, guess_of=lambda i, v: "7" if i < 12 else v
    )


@pytest.fixture
def client(tmp_path: Path, review: list[Cell]) -> FlaskClient:
    return build([tmp_path / "review"], tmp_path / "labels.db").test_client()


def post(client: FlaskClient, url: str, body: Any, **headers: str) -> Any:
    return client.post(url, json=body, headers=headers)


def test_queue_is_least_confident_first_and_skips_labelled(
    client: FlaskClient, review: list[Cell]
) -> None:
    order = queue_order(review)
    data = client.get("/api/queue").get_json()
    assert [it["sha256"] for it in data["items"]] == order
    assert data["progress"] == {
        "labelled": 0,
        "total": 30,
        "remaining": 30,
        "stored": 0,
        "generation": 0,
    }
    assert data["items"][0]["crop"] == f"/crop/{order[0]}"
    assert post(client, "/api/label", {"sha256": order[0], "label": "5"}).status_code == 200
    data = client.get("/api/queue").get_json()
    assert [it["sha256"] for it in data["items"]] == order[1:]
    everything = client.get("/api/queue?all=1").get_json()["items"]
    assert [(it["sha256"], it["label"]) for it in everything[:2]] == [
        (order[0], "5"),
        (order[1], None),
    ]
    assert client.get("/api/next").get_json()["item"]["sha256"] == order[1]
    after = client.get(f"/api/next?after={order[1]}").get_json()
    assert after["item"]["sha256"] == order[2]


def test_label_is_stored_with_its_crop_and_progress_moves(
    tmp_path: Path, client: FlaskClient, review: list[Cell]
) -> None:
    cell = review[4]
    r = post(client, "/api/label", {"sha256": cell.sha256, "label": "017", "client": "t1"})
    assert r.status_code == 200
    assert r.get_json()["label"] == "17"
    assert r.get_json()["progress"]["labelled"] == 1
    lab = LabelStore(tmp_path / "labels.db").get(cell.sha256)
    assert lab is not None
    assert lab.label == "17"
    assert lab.png == (tmp_path / "review" / cell.name).read_bytes()
    assert (lab.row, lab.col, lab.guess, lab.client) == (cell.row, cell.col, cell.guess, "t1")
    assert client.get("/api/progress").get_json()["labelled"] == 1
    r = post(client, "/api/label", {"sha256": review[5].sha256, "label": "e"})
    assert r.get_json()["label"] == "empty"


def test_out_of_class_and_malformed_labels_are_refused(
    tmp_path: Path, client: FlaskClient, review: list[Cell]
) -> None:
    sha = review[0].sha256
    r = post(client, "/api/label", {"sha256": sha, "label": "99"})
    assert r.status_code == 400
    assert "not among the model's classes (0-36, empty)" in r.get_json()["error"]
    for body in (
        {"sha256": sha, "label": True},
        {"sha256": sha, "label": ""},
        {"sha256": sha, "label": "4x"},
        {"sha256": sha},
        {"sha256": sha.upper(), "label": "3"},
        {"sha256": "../../etc/passwd", "label": "3"},
        {"sha256": 5, "label": "3"},
        {"sha256": sha, "label": "3", "client": "x" * 65},
        {"sha256": sha, "label": "3", "client": "<script>"},
        ["not", "an", "object"],
    ):
        r = post(client, "/api/label", body)
        assert r.status_code == 400, body
        assert r.get_json()["error"]
    r = post(client, "/api/label", {"sha256": "a" * 64, "label": "3"})
    assert r.status_code == 404
    r = client.post("/api/label", data="sha256=x&label=3", content_type="text/plain")
    assert r.status_code == 400
    assert LabelStore(tmp_path / "labels.db").count() == 0


def test_methods_are_restricted(client: FlaskClient) -> None:
    r = client.get("/api/label")
    assert r.status_code == 405
    assert r.get_json()["error"].startswith("405")
    assert "POST" in r.headers["Allow"]
    assert client.post("/api/queue").status_code == 405
    assert client.delete("/crop/x").status_code == 405


def test_undo_takes_back_this_clients_latest_label(
    tmp_path: Path, client: FlaskClient, review: list[Cell]
) -> None:
    a, b, c = review[0].sha256, review[1].sha256, review[2].sha256
    post(client, "/api/label", {"sha256": a, "label": "1", "client": "one"})
    post(client, "/api/label", {"sha256": b, "label": "2", "client": "one"})
    post(client, "/api/label", {"sha256": c, "label": "3", "client": "two"})
    r = post(client, "/api/undo", {"client": "one"})
    assert r.get_json()["undone"] == [{"sha256": b, "label": "2", "now": None}]
    assert r.get_json()["progress"]["labelled"] == 2
    assert LabelStore(tmp_path / "labels.db").labels() == {a: "1", c: "3"}
    assert post(client, "/api/undo", {"client": "nobody"}).get_json()["undone"] == []


def test_grid_lists_one_class_and_confirm_stores_only_the_given_crops(
    tmp_path: Path, client: FlaskClient, review: list[Cell]
) -> None:
    sevens = [c.sha256 for c in review if c.guess == "7"]
    grid = client.get("/api/grid?class=7").get_json()
    shown = [it["sha256"] for it in grid["items"]]
    assert shown == [s for s in queue_order(review) if s in sevens]
    assert {"class": "7", "remaining": len(sevens)} in grid["classes"]
    wrong = shown[:3]
    r = post(client, "/api/confirm", {"class": "7", "sha256s": shown[3:], "client": "g"})
    assert r.status_code == 200
    assert r.get_json()["stored"] == len(shown) - 3
    store = LabelStore(tmp_path / "labels.db")
    assert store.labels() == {s: "7" for s in shown[3:]}
    queue = [it["sha256"] for it in client.get("/api/queue").get_json()["items"]]
    assert all(s in queue for s in wrong)
    # The whole confirmation is one undo step.
    assert len(post(client, "/api/undo", {"client": "g"}).get_json()["undone"]) == len(shown) - 3
    assert store.count() == 0
    assert client.get("/api/grid?limit=49").status_code == 400


def test_confirm_validates_its_body(client: FlaskClient, review: list[Cell]) -> None:
    sha = review[0].sha256
    assert post(client, "/api/confirm", {"class": "7", "sha256s": []}).status_code == 400
    assert post(client, "/api/confirm", {"class": "7", "sha256s": sha}).status_code == 400
    assert post(client, "/api/confirm", {"class": "7", "sha256s": [sha, sha]}).status_code == 400
    assert post(client, "/api/confirm", {"class": "77", "sha256s": [sha]}).status_code == 400
    assert post(client, "/api/confirm", {"class": "7", "sha256s": ["b" * 64]}).status_code == 404


def test_crops_and_strips_are_served_by_index_key(
    tmp_path: Path, client: FlaskClient, review: list[Cell]
) -> None:
    cell = review[3]
    raw = (tmp_path / "review" / cell.name).read_bytes()
    r = client.get(f"/crop/{cell.sha256}")
    assert (r.status_code, r.mimetype, r.data) == (200, "image/png", raw)
    assert client.get(f"/crop/{cell.name}").data == raw
    strip = client.get(f"/strip/{cell.sha256}")
    assert strip.data == (tmp_path / "review" / f"img1.r{cell.row:03d}.row.png").read_bytes()
    spot = client.get(f"/api/locate/{cell.sha256}").get_json()
    assert spot["found"] is True
    assert (spot["x0"], spot["x1"]) == (cell.x_in_strip, cell.x_in_strip + CELL_W)


@pytest.mark.parametrize(
    "url",
    [
        "/crop/../labels.db",
        "/crop/..%2flabels.db",
        "/crop/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/crop/..",
        "/crop/%2fetc%2fpasswd",
        "/crop//etc/passwd",
        "/crop/img1.r000c000.json",
        "/crop/secret.png",
        "/crop/" + "0" * 64,
        "/strip/img1.r000.row.png",
        "/strip/..%2f..%2fsecret.png",
        "/static/..%2fapp.py",
        "/static/../app.py",
        "/static/%2e%2e/store.py",
        "/templates/index.html",
        "/api/item/..%2f..%2fetc%2fpasswd",
        "/api/locate/" + "f" * 64,
    ],
)
def test_path_traversal_gets_404(tmp_path: Path, client: FlaskClient, url: str) -> None:
    (tmp_path / "secret.png").write_bytes(b"secret")
    (tmp_path / "review" / "secret.png").symlink_to(tmp_path / "secret.png")
    r = client.get(url)
    assert r.status_code == 404, url
    assert b"secret" not in r.data


def test_labelled_crops_stay_viewable_after_the_review_folder_is_deleted(
    tmp_path: Path, client: FlaskClient, review: list[Cell]
) -> None:
    cell = review[0]
    raw = (tmp_path / "review" / cell.name).read_bytes()
    post(client, "/api/label", {"sha256": cell.sha256, "label": "3"})
    shutil.rmtree(tmp_path / "review")
    assert client.get(f"/crop/{cell.sha256}").data == raw
    assert client.get(f"/crop/{review[1].sha256}").status_code == 404
    # Relabelling works from the stored bytes; a never-labelled crop whose file is gone cannot.
    assert post(client, "/api/label", {"sha256": cell.sha256, "label": "4"}).status_code == 200
    r = post(client, "/api/label", {"sha256": review[1].sha256, "label": "4"})
    assert r.status_code == 409
    assert "missing" in r.get_json()["error"]
    samples = list(LabelStore(tmp_path / "labels.db").iter_samples())
    assert samples == [(raw, "4")]


def test_a_crop_labelled_from_one_folder_is_not_asked_from_another(tmp_path: Path) -> None:
    cells = make_review_dir(tmp_path / "run1", 10, seed=12)
    shutil.copytree(tmp_path / "run1", tmp_path / "run2")
    extra = make_review_dir(tmp_path / "run2", 3, stem="img2", seed=13)
    db = tmp_path / "labels.db"
    first = build([tmp_path / "run1"], db).test_client()
    for c in cells[:4]:
        assert post(first, "/api/label", {"sha256": c.sha256, "label": c.value}).status_code == 200
    both = build([tmp_path / "run1", tmp_path / "run2"], db).test_client()
    queue = [it["sha256"] for it in both.get("/api/queue").get_json()["items"]]
    assert sorted(queue) == sorted(c.sha256 for c in cells[4:] + extra)
    assert both.get("/api/progress").get_json() == {
        "labelled": 4,
        "total": 13,
        "remaining": 9,
        "stored": 4,
        "generation": 0,
    }


def test_foreign_hosts_and_cross_origin_posts_are_refused(
    client: FlaskClient, review: list[Cell]
) -> None:
    body = {"sha256": review[0].sha256, "label": "3"}
    r = client.get("/api/queue", headers={"Host": "evil.example:8765"})
    assert r.status_code == 400
    assert "not this local app" in r.get_json()["error"]
    assert client.get("/", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8765"}).status_code == 200
    r = post(client, "/api/label", body, Origin="http://evil.example")
    assert r.status_code == 403
    r = post(client, "/api/label", body, **{"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert client.get("/api/progress").get_json()["labelled"] == 0
    r = post(
        client, "/api/label", body, Origin="http://localhost", **{"Sec-Fetch-Site": "same-origin"}
    )
    assert r.status_code == 200


def test_any_host_is_accepted_when_bound_to_all_interfaces(
    tmp_path: Path, review: list[Cell]
) -> None:
    client = build([tmp_path / "review"], tmp_path / "labels.db", host="0.0.0.0").test_client()
    assert client.get("/api/progress", headers={"Host": "labbox.lan:8765"}).status_code == 200


def test_page_has_the_stable_ids_and_no_external_resources(client: FlaskClient) -> None:
    r = client.get("/")
    html = r.get_data(as_text=True)
    for element_id in ("crop", "answer", "progress", "grid", "help"):
        assert f'id="{element_id}"' in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    js = client.get("/static/app.js")
    assert js.status_code == 200
    assert "http://" not in js.get_data(as_text=True)
    css = client.get("/static/app.css").get_data(as_text=True)
    assert "image-rendering: pixelated" in css
