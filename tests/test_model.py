"""The classifier's network, its files on disk, and class lists."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridreader.classes import class_value, label_to_index, parse_classes
from gridreader.errors import DataError, ModelError
from gridreader.model import (
    CARD_FILE,
    MODEL_FILE,
    TFLITE_FILE,
    build_model,
    default_model_path,
    load_classifier,
    load_network,
    read_card,
    save_model,
    set_default,
)
from gridreader.preprocess import INPUT_SIZE, quantise

CLASSES = parse_classes("0-36")


def card_for(classes: tuple[str, ...], size: tuple[int, int] = INPUT_SIZE) -> dict[str, Any]:
    return {
        "name": "t",
        "classes": list(classes),
        "input_size": list(size),
        "metrics": {},
        "command": "test",
    }


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built (untrained) 0-36 model saved once for the module."""
    d = tmp_path_factory.mktemp("models") / "tiny"
    save_model(build_model(len(CLASSES), INPUT_SIZE), d, card_for(CLASSES))
    return d


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- the network -------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "size"), [(38, INPUT_SIZE), (101, INPUT_SIZE), (11, (28, 28))])
def test_build_model_shapes(n: int, size: tuple[int, int]) -> None:
    net = build_model(n, size)
    assert tuple(net.input_shape) == (None, size[0], size[1], 1)
    assert tuple(net.output_shape) == (None, n)
    probs = np.asarray(net.predict_on_batch(np.zeros((3, *size, 1), np.float32)))
    assert probs.shape == (3, n)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_build_model_is_small() -> None:
    # It must stay cheap enough for thousands of cells a second on two cores.
    assert build_model(len(CLASSES), INPUT_SIZE).count_params() < 1_000_000


# --- save / load -------------------------------------------------------------------------


def test_round_trip_keeps_classes_and_input_size(saved: Path) -> None:
    clf = load_classifier(saved)
    assert clf.name == "tiny"
    assert clf.path == saved
    assert clf.classes == CLASSES
    assert clf.input_size == INPUT_SIZE
    assert clf.card["command"] == "test"
    idx, conf = clf.predict(np.zeros((5, *INPUT_SIZE, 1), np.float32))
    assert idx.shape == (5,) and conf.shape == (5,)
    assert ((conf > 0) & (conf <= 1)).all()
    assert ((idx >= 0) & (idx < len(CLASSES))).all()
    assert sorted(p.name for p in saved.iterdir()) == [CARD_FILE, MODEL_FILE, TFLITE_FILE]


def test_round_trip_predictions_are_identical(tmp_path: Path) -> None:
    net = build_model(len(CLASSES), INPUT_SIZE)
    x = np.random.default_rng(0).random((4, *INPUT_SIZE, 1)).astype(np.float32)
    before = np.asarray(net.predict_on_batch(x))
    save_model(net, tmp_path / "m", card_for(CLASSES))
    after = np.asarray(load_network(tmp_path / "m").network.predict_on_batch(x))
    assert np.allclose(before, after, atol=1e-6)


def test_card_lists_the_served_file_with_its_sha256(saved: Path) -> None:
    serving = read_card(saved)["serving"]
    assert serving["file"] == TFLITE_FILE and serving["precision"] == "float32"
    assert serving["sha256"] == hashlib.sha256((saved / TFLITE_FILE).read_bytes()).hexdigest()


def test_predict_in_several_batches(saved: Path) -> None:
    clf = load_classifier(saved)
    x = np.random.default_rng(1).random((7, *INPUT_SIZE, 1)).astype(np.float32)
    a = clf.predict(x, batch_size=512)
    b = clf.predict(x, batch_size=3)
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], atol=1e-5)
    empty = clf.predict(np.zeros((0, *INPUT_SIZE, 1), np.float32))
    assert empty[0].shape == (0,) and empty[1].shape == (0,)


def trained_looking(net: Any, seed: int = 0) -> Any:
    """``net`` with random weights and batch-norm statistics far from 0 and 1,
    so that folding them wrongly would show."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        w = layer.get_weights()
        if not w:
            continue
        if type(layer).__name__ == "BatchNormalization":
            n = w[0].shape[0]
            w = [
                rng.uniform(0.5, 2, n),
                rng.normal(0, 0.5, n),
                rng.normal(0, 1, n),
                rng.uniform(0.2, 3, n),
            ]
        else:
            w = [rng.normal(0, 0.2, v.shape) for v in w]
        layer.set_weights([v.astype(np.float32) for v in w])
    return net


def test_litert_computes_what_keras_computes(tmp_path: Path) -> None:
    net = trained_looking(build_model(len(CLASSES), INPUT_SIZE), seed=3)
    save_model(net, tmp_path / "m", card_for(CLASSES))
    clf = load_classifier(tmp_path / "m")
    assert clf.runtime.startswith("LiteRT") and clf.precision == "float32"
    x = np.random.default_rng(4).random((9, *INPUT_SIZE, 1)).astype(np.float32)
    ref = np.asarray(net.predict_on_batch(x))
    idx, conf = clf.predict(x)
    assert (idx == ref.argmax(1)).all()
    assert np.allclose(conf, ref.max(1), atol=1e-5)
    # Quantised crops (how they travel from the workers) read the same way.
    q_idx, q_conf = clf.predict(quantise(x))
    ref_q = np.asarray(net.predict_on_batch(quantise(x).astype(np.float32) / 255.0))
    assert (q_idx == ref_q.argmax(1)).all() and np.allclose(q_conf, ref_q.max(1), atol=1e-5)


def test_default_model_reads_real_crops_as_its_keras_network_does() -> None:
    # A fixed set of real crops: every cell of two dev-bench pictures (a
    # screenshot and a scan), cut and prepared by the reading pipeline.
    from gridreader.pipeline import analyse_image

    bench = Path(__file__).resolve().parent.parent / "data" / "bench" / "dev"
    images = [
        sorted(p for p in (bench / kind).iterdir() if p.suffix in (".png", ".jpg"))[0]
        for kind in ("screens", "scans")
    ]
    x = np.concatenate([analyse_image(p, INPUT_SIZE).inputs for p in images])
    assert len(x) > 50
    keras_probs = np.asarray(
        load_network(default_model_path()).network.predict_on_batch(x.astype(np.float32) / 255.0)
    )
    idx, conf = load_classifier().predict(x)
    assert (idx == keras_probs.argmax(1)).all()
    assert np.abs(conf - keras_probs.max(1)).max() <= 0.01


def test_value_of_class_index(saved: Path) -> None:
    clf = load_classifier(saved)
    assert clf.value(0) == 0
    assert clf.value(36) == 36
    assert clf.value(len(CLASSES) - 1) is None


def test_card_with_other_classes_is_refused(tmp_path: Path, saved: Path) -> None:
    d = copy_model(saved, tmp_path / "m")
    (d / CARD_FILE).write_text(json.dumps(card_for(parse_classes("0-9"))))
    with pytest.raises(ModelError, match="does not match its card") as e:
        load_classifier(d)
    assert str(d) in str(e.value)


def test_card_with_other_input_size_is_refused(tmp_path: Path, saved: Path) -> None:
    d = copy_model(saved, tmp_path / "m")
    (d / CARD_FILE).write_text(json.dumps(card_for(CLASSES, (28, 28))))
    with pytest.raises(ModelError, match="does not match its card"):
        load_classifier(d)


def test_save_into_existing_model_is_refused(tmp_path: Path, saved: Path) -> None:
    d = copy_model(saved, tmp_path / "m")
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    with pytest.raises(ModelError, match="never overwritten") as e:
        save_model(build_model(11, INPUT_SIZE), d, card_for(parse_classes("0-9")))
    assert str(d) in str(e.value)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_save_refused_when_only_the_card_exists(tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / CARD_FILE).write_text("{}")
    with pytest.raises(ModelError):
        save_model(build_model(len(CLASSES), INPUT_SIZE), d, card_for(CLASSES))
    assert not (d / MODEL_FILE).exists()


def test_save_leaves_no_temp_files(tmp_path: Path) -> None:
    save_model(build_model(len(CLASSES), INPUT_SIZE), tmp_path / "m", card_for(CLASSES))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        CARD_FILE,
        MODEL_FILE,
        TFLITE_FILE,
    ]


@pytest.mark.parametrize(
    ("breakage", "fragment"),
    [
        ("no folder", "model folder not found"),
        ("no card", "cannot read model card"),
        ("card not json", "not valid JSON"),
        ("card a list", "JSON object"),
        ("card without classes", "'classes'"),
        ("card with bad size", "'input_size'"),
        ("no tflite", "model file not found; make it with: gridreader export"),
        ("corrupt tflite", "does not match the sha256"),
        ("corrupt tflite, no sha", "cannot load model"),
    ],
)
def test_broken_model_folders(tmp_path: Path, saved: Path, breakage: str, fragment: str) -> None:
    d = tmp_path / "m"
    if breakage != "no folder":
        copy_model(saved, d)
    card = d / CARD_FILE
    if breakage == "no card":
        card.unlink()
    elif breakage == "card not json":
        card.write_text("{not json")
    elif breakage == "card a list":
        card.write_text("[]")
    elif breakage == "card without classes":
        card.write_text(json.dumps({"input_size": [32, 48]}))
    elif breakage == "card with bad size":
        card.write_text(json.dumps({"classes": ["0", "empty"], "input_size": [32]}))
    elif breakage == "no tflite":
        (d / TFLITE_FILE).unlink()
    elif breakage.startswith("corrupt tflite"):
        (d / TFLITE_FILE).write_bytes(b"TFL3 not really a flatbuffer")
        if breakage.endswith("no sha"):
            c = json.loads(card.read_text())
            del c["serving"]["sha256"]
            card.write_text(json.dumps(c))
    with pytest.raises(ModelError, match=fragment) as e:
        load_classifier(d)
    assert str(d) in str(e.value)
    assert "\n" not in str(e.value)


def test_read_card_returns_the_card(saved: Path) -> None:
    assert read_card(saved)["classes"] == list(CLASSES)


def test_default_pointer(tmp_path: Path, saved: Path) -> None:
    models = tmp_path / "models"
    with pytest.raises(ModelError, match="no default model"):
        default_model_path(models)
    d = copy_model(saved, models / "v7")
    set_default(d)
    assert (models / "DEFAULT").read_text() == "v7\n"
    assert default_model_path(models) == d


# --- class lists ---------------------------------------------------------------------------


def test_parse_classes() -> None:
    c = parse_classes("0-36")
    assert len(c) == 38 and c[0] == "0" and c[36] == "36" and c[-1] == "empty"
    assert parse_classes("0-9,12") == (*(str(i) for i in range(10)), "12", "empty")
    assert parse_classes("20-22, 3") == ("3", "20", "21", "22", "empty")
    assert parse_classes("5,5,4-5") == ("4", "5", "empty")
    assert len(parse_classes("0-99")) == 101
    assert parse_classes("7") == ("7", "empty")


@pytest.mark.parametrize("spec", ["", "a-b", "5-3", "0-10000", "1,,2", "-3", "0-3-5", "1.5", "x"])
def test_parse_classes_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(DataError, match="--classes"):
        parse_classes(spec)


def test_label_to_index() -> None:
    assert label_to_index("17", CLASSES) == 17
    assert label_to_index(17, CLASSES) == 17
    assert label_to_index(" 07 ", CLASSES) == 7
    for empty in (None, "", "-", "e", "empty", "EMPTY"):
        assert label_to_index(empty, CLASSES) == len(CLASSES) - 1
    with pytest.raises(DataError, match="not among"):
        label_to_index("99", CLASSES)
    with pytest.raises(DataError, match="not an integer"):
        label_to_index("seven", CLASSES)


def test_class_value() -> None:
    assert class_value("0") == 0
    assert class_value("36") == 36
    assert class_value("empty") is None
