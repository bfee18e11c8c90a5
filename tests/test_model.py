"""The classifier's network, its files on disk, and class lists."""

from __future__ import annotations

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
    PRECISION_ENV,
    bfloat16_serving,
    build_model,
    default_model_path,
    fold_for_inference,
    load_classifier,
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
    assert sorted(p.name for p in saved.iterdir()) == [CARD_FILE, MODEL_FILE]


def test_round_trip_predictions_are_identical(tmp_path: Path) -> None:
    net = build_model(len(CLASSES), INPUT_SIZE)
    x = np.random.default_rng(0).random((4, *INPUT_SIZE, 1)).astype(np.float32)
    before = np.asarray(net.predict_on_batch(x))
    save_model(net, tmp_path / "m", card_for(CLASSES))
    after = np.asarray(load_classifier(tmp_path / "m").network.predict_on_batch(x))
    assert np.allclose(before, after, atol=1e-6)


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


def test_folded_network_computes_the_same_function() -> None:
    import keras

    net = trained_looking(build_model(len(CLASSES), INPUT_SIZE))
    folded = fold_for_inference(net)
    names = [type(layer).__name__ for layer in folded.layers]
    assert "BatchNormalization" not in names and "Dropout" not in names
    assert names.count("Conv2D") == 4
    x = np.random.default_rng(2).random((16, *INPUT_SIZE, 1)).astype(np.float32)
    ref = np.asarray(net.predict_on_batch(x))
    assert (np.asarray(folded.predict_on_batch(x)).argmax(1) == ref.argmax(1)).all()
    # A saturated softmax hides small errors (a lost epsilon): compare what
    # goes into the last layer.
    features = [
        np.asarray(keras.Model(n.inputs, n.layers[-1].input).predict_on_batch(x))
        for n in (net, folded)
    ]
    assert np.allclose(features[1], features[0], rtol=1e-4, atol=1e-4 * features[0].std())
    assert folded.count_params() < net.count_params()


def test_fold_leaves_other_networks_alone() -> None:
    import keras

    inp = keras.Input((4,))
    functional = keras.Model(inp, keras.layers.Dense(2)(inp))
    assert fold_for_inference(functional) is functional


def test_classifier_serves_the_folded_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRECISION_ENV, "float32")  # exact comparison below
    net = trained_looking(build_model(len(CLASSES), INPUT_SIZE), seed=3)
    save_model(net, tmp_path / "m", card_for(CLASSES))
    clf = load_classifier(tmp_path / "m")
    assert clf.serving is not clf.network
    x = np.random.default_rng(4).random((9, *INPUT_SIZE, 1)).astype(np.float32)
    ref = np.asarray(net.predict_on_batch(x))
    idx, conf = clf.predict(x)
    assert (idx == ref.argmax(1)).all()
    assert np.allclose(conf, ref.max(1), atol=1e-5)
    # Quantised crops (how they travel from the workers) read the same way.
    q_idx, q_conf = clf.predict(quantise(x))
    ref_q = np.asarray(net.predict_on_batch(quantise(x).astype(np.float32) / 255.0))
    assert (q_idx == ref_q.argmax(1)).all() and np.allclose(q_conf, ref_q.max(1), atol=1e-5)


def test_bfloat16_serving_reads_real_cells_as_float32_does(mnist_path: Path) -> None:
    import keras

    from gridreader.preprocess import prepare_batch
    from gridreader.synth.cells import CellSynth
    from gridreader.synth.fonts import find_fonts
    from gridreader.synth.mnist import load_mnist

    network = keras.models.load_model(default_model_path() / MODEL_FILE, compile=False)
    exact = fold_for_inference(network)
    fast = fold_for_inference(network, bfloat16=True)
    policies = [layer.dtype_policy.name for layer in fast.layers]
    kinds = [type(layer).__name__ for layer in fast.layers]
    # The first convolution and the dense head stay float32.
    assert policies[kinds.index("Conv2D")] == "float32"
    assert all(p == "float32" for p, k in zip(policies, kinds, strict=True) if k == "Dense")
    assert policies.count("mixed_bfloat16") >= 3
    mnist = load_mnist(mnist_path)
    synth = CellSynth(CLASSES, mnist.x_train, mnist.y_train, find_fonts(), seed=11)
    crops, _ = synth.sample(400)
    x = prepare_batch(crops, INPUT_SIZE)
    a = np.asarray(exact.predict_on_batch(x))
    b = np.asarray(fast.predict_on_batch(x), np.float32)
    assert (a.argmax(1) == b.argmax(1)).all()
    assert np.abs(a.max(1) - b.max(1)).max() < 0.03


def test_bfloat16_serving_follows_the_cpu_and_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = Path("/proc/cpuinfo").read_text().split()
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert bfloat16_serving() == ("amx_bf16" in flags or "avx512_bf16" in flags)
    monkeypatch.setenv(PRECISION_ENV, "float32")
    assert not bfloat16_serving()


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
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [CARD_FILE, MODEL_FILE]


@pytest.mark.parametrize(
    ("breakage", "fragment"),
    [
        ("no folder", "model folder not found"),
        ("no card", "cannot read model card"),
        ("card not json", "not valid JSON"),
        ("card a list", "JSON object"),
        ("card without classes", "'classes'"),
        ("card with bad size", "'input_size'"),
        ("no weights", "model file not found"),
        ("corrupt weights", "cannot load model"),
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
    elif breakage == "no weights":
        (d / MODEL_FILE).unlink()
    elif breakage == "corrupt weights":
        (d / MODEL_FILE).write_bytes(b"PK\x03\x04 not really a keras archive")
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
