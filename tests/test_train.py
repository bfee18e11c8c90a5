"""Tiny pretraining and fine-tuning runs through the CLI (``gridreader train`` / ``finetune``)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from gridreader.cli import main
from gridreader.errors import DataError
from gridreader.model import CARD_FILE, MODEL_FILE, TFLITE_FILE, load_classifier, load_network
from gridreader.preprocess import prepare_batch
from gridreader.train import default_model_lines, load_labelled, make_synthetic

# The label set: a few classes of the 0-36 model, drawn in two Hershey faces.
LABELS = ("3", "7", "12", "25", "36", "empty")
PER_LABEL = 10
FACES = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def draw_crop(
    rng: np.random.Generator, label: str, size: tuple[int, int] = (56, 36), face: int = 0
) -> np.ndarray:
    """A cell crop: dark digits (or nothing) on a light background, ``size`` = (w, h)."""
    w, h = size
    bg = int(rng.integers(225, 256))
    img = np.full((h, w, 3), bg, np.uint8)
    if label != "empty":
        scale = h / 36 * float(rng.uniform(0.75, 0.9))
        thick = int(rng.integers(1, 3))
        (tw, th), _ = cv2.getTextSize(label, face, scale, thick)
        x = max(0, (w - tw) // 2 + int(rng.integers(-3, 4)))
        y = min(h - 2, (h + th) // 2 + int(rng.integers(-2, 3)))
        ink = int(rng.integers(0, 60))
        cv2.putText(img, label, (x, y), face, scale, (ink, ink, ink), thick, cv2.LINE_AA)
    return img


def write_label_folder(
    root: Path, labels: tuple[str, ...] = LABELS, size: tuple[int, int] = (56, 36), seed: int = 0
) -> Path:
    """One sub-folder per label, ``PER_LABEL`` PNG crops in each."""
    rng = np.random.default_rng(seed)
    for label in labels:
        d = root / label
        d.mkdir(parents=True)
        for i in range(PER_LABEL):
            crop = draw_crop(rng, label, size, FACES[i % len(FACES)])
            cv2.imwrite(str(d / f"{label}-{i:02d}.png"), crop)
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, mnist_path: Path) -> Path:
    """A model pretrained for three epochs on 1,500 synthetic cells."""
    out = tmp_path_factory.mktemp("train") / "m"
    code = main(
        [
            "train",
            "--mnist",
            str(mnist_path),
            "--out",
            str(out),
            "--samples",
            "1500",
            "--val-samples",
            "300",
            "--epochs",
            "3",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def labels_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_label_folder(tmp_path_factory.mktemp("labels") / "by-class")


# --- pretraining -------------------------------------------------------------------------


def test_train_writes_model_and_card(tiny_model: Path) -> None:
    assert sorted(p.name for p in tiny_model.iterdir()) == [CARD_FILE, MODEL_FILE, TFLITE_FILE]
    card = json.loads((tiny_model / CARD_FILE).read_text())
    assert card["classes"] == [*(str(i) for i in range(37)), "empty"]
    assert card["input_size"] == [32, 48]
    assert card["data"]["synthetic_train_cells"] == 1500
    assert card["data"]["synthetic_val_cells"] == 300
    assert card["params"]["epochs"] == 3
    metrics = card["metrics"]
    losses = metrics["train_loss_per_epoch"]
    assert len(losses) == 3
    assert losses[-1] < losses[0], f"training loss did not fall: {losses}"
    clf = load_classifier(tiny_model)
    assert clf.input_size == (32, 48) and len(clf.classes) == 38


def test_train_card_accuracy_agrees_with_a_fresh_measurement(
    tiny_model: Path, mnist_path: Path
) -> None:
    # Another draw of 300 validation cells (a seed the run never used), read by
    # the saved model: the card's figure must describe that model within
    # sampling noise (binomial s.e. <= 0.029 at n=300; 0.12 is four of them),
    # and three short epochs must have taken it clear of chance (1/38 = 0.026,
    # s.e. 0.009 at n=300; 0.07 is about five s.e. above; measured 0.14).
    clf = load_classifier(tiny_model)
    X, y = make_synthetic(
        clf.classes, str(mnist_path), 300, 12345, clf.input_size, workers=1, use_mnist_test=True
    )
    fresh = float((clf.predict(X)[0] == y).mean())
    card_acc = json.loads((tiny_model / CARD_FILE).read_text())["metrics"]["synthetic_val_accuracy"]
    assert abs(card_acc - fresh) <= 0.12
    assert fresh >= 0.07


def test_train_card_records_the_command(tiny_model: Path) -> None:
    # The card must say how to make the model again: the arguments this run was given.
    command = json.loads((tiny_model / CARD_FILE).read_text())["command"]
    assert command.startswith("gridreader train")
    for part in ("--samples 1500", "--val-samples 300", "--epochs 3", "--workers 1"):
        assert part in command, command


def test_export_remakes_the_tflite_of_a_trained_model(tiny_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "older"
    shutil.copytree(tiny_model, model)
    # A model from before LiteRT serving: weights and card only.
    (model / TFLITE_FILE).unlink()
    card = json.loads((model / CARD_FILE).read_text())
    del card["serving"]
    (model / CARD_FILE).write_text(json.dumps(card))
    assert main(["export", str(model)]) == 0
    serving = json.loads((model / CARD_FILE).read_text())["serving"]
    data = (model / TFLITE_FILE).read_bytes()
    assert serving["sha256"] == hashlib.sha256(data).hexdigest() and serving["bytes"] == len(data)
    assert serving["precision"] == "float32"
    x = np.random.default_rng(5).random((40, 32, 48, 1)).astype(np.float32)
    want = np.asarray(load_network(model).network.predict_on_batch(x))
    idx, conf = load_classifier(model).predict(x)
    assert (idx == want.argmax(1)).all() and np.allclose(conf, want.max(1), atol=1e-5)


def test_export_quantises_only_when_the_check_passes(tiny_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    check = tmp_path / "check"
    check.mkdir()
    bench = Path(__file__).resolve().parent.parent / "data" / "bench" / "dev"
    for kind in ("screens", "scans"):
        first = sorted(p for p in (bench / kind).iterdir() if p.suffix in (".png", ".jpg"))[0]
        shutil.copy2(first, check)
    float32_bytes = (model / TFLITE_FILE).stat().st_size
    assert main(["export", str(model), "--precision", "float16", "--check", str(check)]) == 0
    serving = json.loads((model / CARD_FILE).read_text())["serving"]
    qc = serving["quantisation_check"]
    assert qc["tried"] == "float16" and qc["cells"] > 50
    assert qc["passed"] == (qc["class_changes"] == 0 and qc["max_confidence_change"] <= 0.01)
    assert serving["precision"] == ("float16" if qc["passed"] else "float32")
    size = (model / TFLITE_FILE).stat().st_size
    assert size < 0.6 * float32_bytes if qc["passed"] else size == float32_bytes
    assert load_classifier(model).precision == serving["precision"]


def test_train_other_classes(tmp_path: Path, mnist_path: Path) -> None:
    out = tmp_path / "m99"
    code = main(
        [
            "train",
            "--classes",
            "0-99",
            "--mnist",
            str(mnist_path),
            "--out",
            str(out),
            "--samples",
            "400",
            "--val-samples",
            "100",
            "--epochs",
            "1",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    card = json.loads((out / CARD_FILE).read_text())
    assert card["classes"] == [*(str(i) for i in range(100)), "empty"]
    assert load_network(out).network.output_shape[-1] == 101
    assert len(load_classifier(out).classes) == 101


def test_train_refuses_existing_model(
    tiny_model: Path, mnist_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(tiny_model)
    code = main(["train", "--mnist", str(mnist_path), "--out", str(tiny_model), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 3
    assert str(tiny_model) in err and "never overwritten" in err
    assert digest(tiny_model) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mnist", "/nonexistent/mnist.npz"], "/nonexistent/mnist.npz"),
        (["--classes", "0-x"], "--classes"),
        (["--samples", "0"], "must be positive"),
    ],
)
def test_train_bad_arguments(
    tmp_path: Path,
    mnist_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    base = ["train", "--out", str(tmp_path / "m"), "--samples", "50", "--val-samples", "10"]
    if "--mnist" not in args:
        base += ["--mnist", str(mnist_path)]
    code = main([*base, *args])
    err = capsys.readouterr().err
    assert code == 3
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "m" / MODEL_FILE).exists()


# --- fine-tuning -------------------------------------------------------------------------


def finetune(base: Path, labels: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "finetune",
            "--model",
            str(base),
            "--labels",
            str(labels),
            "--out",
            str(out),
            "--epochs",
            "4",
            *extra,
        ]
    )


def test_finetune_from_class_folders(
    tiny_model: Path, labels_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(tiny_model)
    out = tmp_path / "m2"
    assert finetune(tiny_model, labels_dir, out) == 0
    said = capsys.readouterr().out
    assert digest(tiny_model) == before, "the base model was modified"
    assert sorted(p.name for p in out.iterdir()) == [CARD_FILE, MODEL_FILE, TFLITE_FILE]
    card = json.loads((out / CARD_FILE).read_text())
    assert card["parent"] == tiny_model.name
    assert card["classes"] == json.loads((tiny_model / CARD_FILE).read_text())["classes"]
    ft = card["finetune"]
    assert ft["labelled_cells"] == len(LABELS) * PER_LABEL
    assert ft["held_out"] == round(0.2 * len(LABELS) * PER_LABEL)
    losses = ft["loss_per_epoch"]
    assert len(losses) == 4
    assert losses[-1] < losses[0], f"fine-tuning loss did not fall: {losses}"
    # The held-out figures are shares of the 12 held-out crops, and agree with
    # the models' reading of crops neither has seen (another seed) within what
    # 12 crops can tell apart. (This tiny run is too short to show learning:
    # see test_loop.py for a fine-tuning that must improve.)
    held = ft["held_out"]
    for key in ("heldout_accuracy_before", "heldout_accuracy_after"):
        assert round(ft[key] * held) == pytest.approx(ft[key] * held, abs=1e-3), key
    fresh = write_label_folder(tmp_path / "fresh", seed=1)
    assert abs(ft["heldout_accuracy_before"] - accuracy_on_folder(tiny_model, fresh)) <= 0.3
    assert abs(ft["heldout_accuracy_after"] - accuracy_on_folder(out, fresh)) <= 0.3
    # The new model becomes the default beside it only if it is no worse.
    # The message names the folder whose default changed, not the project's models/.
    pointer = out.parent / "DEFAULT"
    if ft["heldout_accuracy_after"] >= ft["heldout_accuracy_before"]:
        assert pointer.read_text().strip() == "m2"
        assert f"m2 is now the default model in {tmp_path} ({pointer} names it)" in said
        assert "is not the project's models folder; verbs run without --model" in said
    else:
        assert not pointer.exists()
        assert f"the default model in {tmp_path} is unchanged (none set)" in said
    assert load_classifier(out).classes == load_classifier(tiny_model).classes


def accuracy_on_folder(model: Path, folder: Path) -> float:
    """The share of a class-folder label set that ``model`` reads right."""
    clf = load_classifier(model)
    crops = [
        (cv2.imread(str(f))[:, :, ::-1], d.name) for d in folder.iterdir() for f in d.iterdir()
    ]
    X = prepare_batch([c for c, _ in crops], clf.input_size)
    idx = clf.predict(X)[0]
    return float(
        np.mean([clf.classes[i] == label for i, (_, label) in zip(idx, crops, strict=True)])
    )


def test_finetune_from_csv(tiny_model: Path, labels_dir: Path, tmp_path: Path) -> None:
    rows = ["path,label"]
    for d in sorted(labels_dir.iterdir()):
        for f in sorted(d.iterdir()):
            rows.append(f"{f.relative_to(labels_dir)},{d.name}")
    csv_path = labels_dir / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m3"
    try:
        assert finetune(tiny_model, csv_path, out) == 0
    finally:
        csv_path.unlink()
    card = json.loads((out / CARD_FILE).read_text())
    assert card["finetune"]["labelled_cells"] == len(LABELS) * PER_LABEL
    assert card["finetune"]["labels"] == str(csv_path)


def test_finetune_label_outside_classes(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = write_label_folder(tmp_path / "labels", labels=("7", "99", "empty"))
    out = tmp_path / "m4"
    code = finetune(tiny_model, labels, out)
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(labels / "99" / "99-00.png") in err and "'99'" in err
    assert not out.exists() or not (out / MODEL_FILE).exists()


def test_finetune_refuses_existing_out(
    tiny_model: Path, labels_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(tiny_model)
    code = finetune(tiny_model, labels_dir, tiny_model)
    err = capsys.readouterr().err
    assert code == 3
    assert str(tiny_model) in err and "never overwritten" in err
    assert digest(tiny_model) == before


def test_finetune_on_real_cell_sized_crops(tiny_model: Path, tmp_path: Path) -> None:
    # Review crops are cells as found: often under 32 px tall (screen rows are 20-30 px).
    labels = write_label_folder(tmp_path / "labels", size=(40, 22))
    out = tmp_path / "m5"
    assert finetune(tiny_model, labels, out) == 0
    assert (out / MODEL_FILE).is_file()


def test_continued_pretraining_starts_from_the_given_model(
    tiny_model: Path, mnist_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--init-from continues from a model's weights: the first epoch starts
    where the base model left off, far below a fresh model's first loss."""
    out = tmp_path / "continued"
    args = ["train", "--mnist", str(mnist_path), "--out", str(out), "--samples", "600"]
    args += ["--val-samples", "100", "--epochs", "1", "--workers", "1"]
    args += ["--init-from", str(tiny_model), "--small-text-share", "0.5", "--learning-rate", "2e-4"]
    assert main(args) == 0
    # Pretraining never changes a default; it says so, naming the folder.
    assert f"the default model in {tmp_path} is unchanged (none set)" in capsys.readouterr().out
    assert not (tmp_path / "DEFAULT").exists()
    base = json.loads((tiny_model / "card.json").read_text())
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["initialised_from"] == str(tiny_model)
    assert card["data"]["small_text_share"] == 0.5
    first_fresh = base["metrics"]["train_loss_per_epoch"][0]
    assert card["metrics"]["train_loss_per_epoch"][0] < first_fresh


def test_continued_pretraining_refuses_other_classes(
    tiny_model: Path, mnist_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--mnist", str(mnist_path), "--out", str(tmp_path / "x"), "--samples", "200"]
    args += ["--val-samples", "50", "--epochs", "1", "--workers", "1", "--classes", "0-99"]
    args += ["--init-from", str(tiny_model)]
    assert main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classes or input size differ" in err[0] and str(tiny_model) in err[0]


def test_finetune_replays_the_mnist_recorded_in_the_card(
    tiny_model: Path, labels_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No --mnist: the base model's card names the MNIST file it was trained with.
    out = tmp_path / "replayed"
    assert finetune(tiny_model, labels_dir, out) == 0
    said = capsys.readouterr().out
    source = json.loads((tiny_model / CARD_FILE).read_text())["data"]["mnist_source"]
    assert f"synthetic cells beside the labels (MNIST from {source})" in said
    assert json.loads((out / CARD_FILE).read_text())["finetune"]["replayed_synthetic_cells"] > 0


def test_finetune_without_any_mnist_warns_and_uses_labels_alone(
    tiny_model: Path, labels_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "moved"
    shutil.copytree(tiny_model, base)
    card = json.loads((base / CARD_FILE).read_text())
    card["data"]["mnist_source"] = str(tmp_path / "gone.npz")
    (base / CARD_FILE).write_text(json.dumps(card))
    out = tmp_path / "labels-only"
    assert finetune(base, labels_dir, out) == 0
    said = capsys.readouterr().out
    assert "warning: no replayed synthetic cells" in said and "labels alone" in said
    assert json.loads((out / CARD_FILE).read_text())["finetune"]["replayed_synthetic_cells"] == 0


# --- what a run says about the default model ---------------------------------------------


def test_default_model_lines_name_the_folder_whose_default_changed(tmp_path: Path) -> None:
    project = tmp_path / "project" / "models"
    project.mkdir(parents=True)
    (project / "DEFAULT").write_text("v6\n")
    elsewhere = tmp_path / "elsewhere"

    # Promoted in the project's own folder: one line, absolute folder and pointer.
    lines = default_model_lines(project / "v7", made_default=True, project_models=project)
    assert lines == [f"v7 is now the default model in {project} ({project / 'DEFAULT'} names it)"]

    # Promoted in another folder: the line says which, and that the verbs still use models/.
    lines = default_model_lines(elsewhere / "v7", made_default=True, project_models=project)
    assert lines[0].startswith(f"v7 is now the default model in {elsewhere} ")
    assert len(lines) == 2 and f"still use the default in {project}" in lines[1]

    # Not promoted: the folder's default stays, and it is named.
    lines = default_model_lines(project / "v8", made_default=False, project_models=project)
    assert len(lines) == 1 and f"the default model in {project} is unchanged (v6)" in lines[0]
    assert f"--model {project / 'v8'}" in lines[0]
    lines = default_model_lines(elsewhere / "v8", made_default=False, project_models=project)
    assert f"the default model in {elsewhere} is unchanged (none set)" in lines[0]


def test_default_model_lines_given_a_relative_folder_say_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lines = default_model_lines(Path("m9"), made_default=True, project_models=tmp_path / "models")
    assert (
        lines[0] == f"m9 is now the default model in {tmp_path} ({tmp_path / 'DEFAULT'} names it)"
    )


def test_a_label_store_needs_its_reader(tmp_path: Path) -> None:
    # The training module does not know the labeller's store; the CLI hands it
    # the labeller's reader (test_loop.py reads a store through it).
    db = tmp_path / "labels.db"
    db.write_bytes(b"SQLite format 3\x00")
    with pytest.raises(DataError, match=r"labels\.db: not a folder of label folders"):
        load_labelled(db, ("1", "empty"), (32, 48))
