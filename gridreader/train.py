"""Pretraining on synthetic cells and fine-tuning on hand-labelled ones."""

from __future__ import annotations

import csv
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridreader.classes import label_to_index
from gridreader.errors import DataError, ModelError, UsageError
from gridreader.host import machine
from gridreader.imageio import IMAGE_SUFFIXES, load_image
from gridreader.model import (
    DEFAULT_POINTER,
    MODELS_DIR,
    Trainable,
    _keras,
    build_model,
    load_network,
    save_model,
    set_default,
)
from gridreader.preprocess import INPUT_SIZE, dequantise, prepare_batch, quantise

Log = Callable[[str], None]
LabelledCrop = tuple[str, bytes, str]
"""One hand label: ``(where, crop PNG bytes, label)``; ``where`` names it in messages."""
LabelReader = Callable[[Path], Iterable[LabelledCrop]]
"""Reads a label source this module does not know (the labeller's store)."""


@dataclass(frozen=True)
class Stage:
    """One stage of a pretraining schedule: fresh synthetic cells, trained on
    for a few epochs with their own cosine-decayed learning rate."""

    samples: int
    epochs: int
    learning_rate: float
    handwritten_share: float
    small_text_share: float
    seed: int | None = None
    """Seed of this stage's cells and shuffling (default: the run's seed plus
    1009 per stage, so stages draw different cells)."""


STAGE_KEYS = {
    "seed": int,
    "samples": int,
    "epochs": int,
    "lr": float,
    "handwritten": float,
    "small_text": float,
}
"""The keys of a ``--stage`` option, e.g. ``samples=60000,epochs=2,lr=3e-4``."""


def parse_stage(text: str, default: Stage) -> Stage:
    """A stage from ``key=value`` pairs; keys left out keep ``default``'s values.

    Raises:
        UsageError: an unknown key, a bad value, or a non-positive size.
    """
    values: dict[str, float | int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, eq, raw = part.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in STAGE_KEYS:
            raise UsageError(
                f"--stage {text!r}: expected key=value pairs with keys {', '.join(STAGE_KEYS)}"
            )
        try:
            values[key] = STAGE_KEYS[key](raw.strip())
        except ValueError as e:
            raise UsageError(f"--stage {text!r}: bad value for {key} ({raw.strip()!r})") from e
    stage = Stage(
        samples=int(values.get("samples", default.samples)),
        epochs=int(values.get("epochs", default.epochs)),
        learning_rate=float(values.get("lr", default.learning_rate)),
        handwritten_share=float(values.get("handwritten", default.handwritten_share)),
        small_text_share=float(values.get("small_text", default.small_text_share)),
        seed=int(values["seed"]) if "seed" in values else default.seed,
    )
    if stage.samples < 1 or stage.epochs < 1 or stage.learning_rate <= 0:
        raise UsageError(f"--stage {text!r}: samples, epochs and lr must be positive")
    return stage


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a pretraining run (it goes into the card).

    With ``stages``, each stage draws its own cells and trains on them in turn
    (the top-level samples, epochs, learning rate and shares are then unused).
    """

    classes: tuple[str, ...]
    mnist: str | None
    samples: int = 120_000
    val_samples: int = 6_000
    epochs: int = 14
    batch_size: int = 256
    learning_rate: float = 2e-3
    seed: int = 0
    workers: int = 2
    exclude_fonts: tuple[str, ...] = ()
    input_size: tuple[int, int] = INPUT_SIZE
    handwritten_share: float = 0.35
    small_text_share: float = 0.0
    init_from: str | None = None
    stages: tuple[Stage, ...] = ()
    mixed_bfloat16: bool = False

    def schedule(self) -> tuple[Stage, ...]:
        """The stages to run: ``stages``, or the single stage the flat fields describe."""
        if self.stages:
            return self.stages
        return (
            Stage(
                self.samples,
                self.epochs,
                self.learning_rate,
                self.handwritten_share,
                self.small_text_share,
            ),
        )


@dataclass(frozen=True)
class TrainResult:
    """What a training run measured."""

    model_dir: Path
    losses: tuple[float, ...]
    metrics: dict[str, Any]
    made_default: bool


# -- synthetic data ----------------------------------------------------------------


_Job = tuple[
    tuple[str, ...], str | None, bool, tuple[str, ...], int, int, tuple[int, int], float, float
]


def _synth_chunk(args: _Job) -> tuple[np.ndarray, np.ndarray]:
    classes, mnist_src, use_test, exclude, n, seed, size, hw_share, small_share = args
    from gridreader.synth.cells import CellSynth
    from gridreader.synth.fonts import find_fonts
    from gridreader.synth.mnist import load_mnist

    mnist = load_mnist(mnist_src)
    x, y = (mnist.x_test, mnist.y_test) if use_test else (mnist.x_train, mnist.y_train)
    synth = CellSynth(
        classes,
        x,
        y,
        find_fonts(exclude=exclude),
        seed=seed,
        handwritten_share=hw_share,
        small_text_share=small_share,
    )
    X, labels = synth.sample_prepared(n, size)
    # uint8 cuts the cost of shipping the chunk back to the parent.
    return quantise(X[..., 0]), labels


def make_synthetic(
    classes: tuple[str, ...],
    mnist: str | None,
    n: int,
    seed: int,
    size: tuple[int, int] = INPUT_SIZE,
    workers: int = 2,
    *,
    use_mnist_test: bool = False,
    exclude_fonts: tuple[str, ...] = (),
    handwritten_share: float = 0.35,
    small_text_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` prepared synthetic crops ``(n, h, w, 1)`` float32 and their labels.

    ``use_mnist_test`` draws handwriting from MNIST's test digits; it is for
    validation only, never for training.
    """
    chunk = 2_000
    jobs: list[_Job] = [
        (
            classes,
            mnist,
            use_mnist_test,
            exclude_fonts,
            min(chunk, n - i),
            seed * 100_003 + i,
            size,
            handwritten_share,
            small_text_share,
        )
        for i in range(0, n, chunk)
    ]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_synth_chunk, jobs))
    else:
        parts = [_synth_chunk(j) for j in jobs]
    X = dequantise(np.concatenate([p[0] for p in parts]))[..., None]
    y = np.concatenate([p[1] for p in parts])
    return X, y


# -- pretraining ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Sources:
    """What a pretraining run draws on, checked before any cell is made."""

    mnist_digits: int
    fonts: tuple[Path, ...]
    base: Trainable | None


@dataclass(frozen=True)
class _StageFit:
    """What one stage of the schedule did: its losses and its entry in the card."""

    losses: tuple[float, ...]
    summary: dict[str, Any]
    generate_seconds: float
    train_seconds: float


@dataclass(frozen=True)
class _Fitted:
    """A network trained through the whole schedule, and what the stages did."""

    network: Any
    stages: tuple[_StageFit, ...]

    @property
    def losses(self) -> tuple[float, ...]:
        return tuple(v for stage in self.stages for v in stage.losses)


def _compile(network: Any, lr: float, steps: int) -> None:
    keras = _keras()
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps), alpha=0.05)
    network.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def _accuracy(network: Any, X: np.ndarray, y: np.ndarray) -> float:
    if len(y) == 0:
        return float("nan")
    probs = network.predict(X, batch_size=512, verbose=0)
    return float((probs.argmax(axis=1) == y).mean())


def _file_sha256(path: str | None) -> str | None:
    if path is None or not os.path.isfile(path):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _refuse_existing_model(out: Path) -> None:
    if (out / "model.keras").exists():
        raise ModelError(f"{out}: a model already exists there; models are never overwritten")


def _load_sources(cfg: PretrainConfig) -> _Sources:
    """MNIST, the base model of continued pretraining, and the fonts.

    Raises:
        DataError: the MNIST source is unusable.
        ModelError: the base model's classes or input size differ from ``cfg``'s.
    """
    from gridreader.synth.fonts import find_fonts
    from gridreader.synth.mnist import load_mnist

    mnist = load_mnist(cfg.mnist)  # fail early, with the loader's own message
    base = load_network(cfg.init_from) if cfg.init_from is not None else None
    if base is not None and (base.classes != cfg.classes or base.input_size != cfg.input_size):
        raise ModelError(f"{cfg.init_from}: classes or input size differ from this run's")
    fonts = find_fonts(exclude=cfg.exclude_fonts)
    return _Sources(len(mnist.y_train), tuple(fonts), base)


def _make_validation_cells(
    cfg: PretrainConfig, stages: tuple[Stage, ...], log: Log
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out synthetic cells, their handwriting from MNIST's test digits."""
    log(f"generating {cfg.val_samples} validation cells ...")
    return make_synthetic(
        cfg.classes,
        cfg.mnist,
        cfg.val_samples,
        cfg.seed + 7919,
        cfg.input_size,
        cfg.workers,
        use_mnist_test=True,
        exclude_fonts=cfg.exclude_fonts,
        handwritten_share=stages[-1].handwritten_share,
    )


def _build_network(cfg: PretrainConfig, base: Trainable | None) -> Any:
    """A fresh network, or one holding ``base``'s weights (continued pretraining)."""
    network = build_model(len(cfg.classes), cfg.input_size)
    if base is not None:
        network.set_weights(base.network.get_weights())
    return network


def _fit_stage(
    network: Any,
    cfg: PretrainConfig,
    k: int,
    stages: tuple[Stage, ...],
    validation: tuple[np.ndarray, np.ndarray],
    log: Log,
) -> _StageFit:
    """Train ``network`` on stage ``k``'s own fresh cells, with its own learning rate."""
    stage = stages[k]
    t = time.time()
    seed = stage.seed if stage.seed is not None else cfg.seed + 1009 * k
    _keras().utils.set_random_seed(seed)
    log(f"stage {k + 1}/{len(stages)}: generating {stage.samples} training cells ...")
    X, y = make_synthetic(
        cfg.classes,
        cfg.mnist,
        stage.samples,
        seed,
        cfg.input_size,
        cfg.workers,
        exclude_fonts=cfg.exclude_fonts,
        handwritten_share=stage.handwritten_share,
        small_text_share=stage.small_text_share,
    )
    generate_s = time.time() - t
    steps = stage.epochs * int(np.ceil(len(y) / cfg.batch_size))
    _compile(network, stage.learning_rate, steps)
    log(
        f"stage {k + 1}/{len(stages)}: training {network.count_params()} parameters "
        f"for {stage.epochs} epochs ..."
    )
    t1 = time.time()
    hist = network.fit(
        X,
        y,
        batch_size=cfg.batch_size,
        epochs=stage.epochs,
        validation_data=validation,
        verbose=2,
        shuffle=True,
    )
    train_s = time.time() - t1
    del X, y
    summary = {
        "samples": stage.samples,
        "epochs": stage.epochs,
        "learning_rate": stage.learning_rate,
        "handwritten_share": stage.handwritten_share,
        "small_text_share": stage.small_text_share,
        "seed": seed,
        "seconds": round(time.time() - t, 1),
        "val_accuracy": round(float(hist.history["val_accuracy"][-1]), 5),
    }
    losses = tuple(float(v) for v in hist.history["loss"])
    return _StageFit(losses, summary, generate_s, train_s)


def _rebuild_in_float32(trained: Any, cfg: PretrainConfig) -> Any:
    """``trained``'s weights in a float32 network, as the saved model must be."""
    _keras().mixed_precision.set_global_policy("float32")
    network = build_model(len(cfg.classes), cfg.input_size)
    network.set_weights(trained.get_weights())
    return network


def _fit_schedule(
    cfg: PretrainConfig,
    stages: tuple[Stage, ...],
    base: Trainable | None,
    validation: tuple[np.ndarray, np.ndarray],
    log: Log,
) -> _Fitted:
    """Build the network and train it through each stage in turn."""
    keras = _keras()
    keras.utils.set_random_seed(cfg.seed)
    # bfloat16 activations with float32 weights: about twice the training speed
    # where the CPU multiplies bfloat16 natively; the saved model is float32.
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if cfg.mixed_bfloat16 else "float32")
    try:
        network = _build_network(cfg, base)
        fits = [_fit_stage(network, cfg, k, stages, validation, log) for k in range(len(stages))]
        if cfg.mixed_bfloat16:
            network = _rebuild_in_float32(network, cfg)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return _Fitted(network, tuple(fits))


def _pretrain_metrics(
    val_accuracy: float, fitted: _Fitted, validation_generate_s: float, t0: float
) -> dict[str, Any]:
    """The card's metrics: validation accuracy, losses, and where the time went."""
    generate_s = sum((s.generate_seconds for s in fitted.stages), start=validation_generate_s)
    train_s = sum(s.train_seconds for s in fitted.stages)
    return {
        "synthetic_val_accuracy": round(val_accuracy, 5),
        "synthetic_val_note": "held-out synthetic cells; handwriting from MNIST x_test (never trained on)",
        "train_loss_per_epoch": [round(v, 4) for v in fitted.losses],
        "generate_seconds": round(generate_s, 1),
        "train_seconds": round(train_s, 1),
        "cpu_seconds": round(time.process_time() + _children_cpu(), 1),
        "wall_seconds": round(time.time() - t0, 1),
        "trained_on": machine(),
    }


def _pretrain_card(
    cfg: PretrainConfig,
    out: Path,
    command: str,
    sources: _Sources,
    fitted: _Fitted,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """The model card of a pretrained model: data, parameters, metrics, command."""
    from gridreader.synth.fonts import font_family

    stages = cfg.schedule()
    return {
        "name": out.name,
        "classes": list(cfg.classes),
        "input_size": list(cfg.input_size),
        "preprocess": "gridreader.preprocess.prepare_crop",
        "architecture": "gridreader.model.build_model",
        "parameters": int(fitted.network.count_params()),
        "data": {
            "mnist_source": cfg.mnist or "keras.datasets.mnist (download)",
            "mnist_sha256": _file_sha256(cfg.mnist),
            "mnist_digits_used": sources.mnist_digits,
            "mnist_split_used_for_training": "x_train/y_train only",
            "fonts": len(sources.fonts),
            "font_families": sorted({font_family(f) for f in sources.fonts}),
            "excluded_fonts": list(cfg.exclude_fonts),
            "synthetic_train_cells": sum(st.samples for st in stages),
            "synthetic_val_cells": cfg.val_samples,
            "handwritten_share": stages[0].handwritten_share,
            "small_text_share": stages[0].small_text_share,
            "initialised_from": cfg.init_from,
            "licence_note": "MNIST by Yann LeCun and Corinna Cortes, CC BY-SA 3.0",
        },
        "params": {
            "epochs": sum(st.epochs for st in stages),
            "batch_size": cfg.batch_size,
            "learning_rate": stages[0].learning_rate,
            "schedule": "cosine decay" + (" per stage" if len(stages) > 1 else ""),
            "stages": [stage.summary for stage in fitted.stages],
            "mixed_bfloat16": cfg.mixed_bfloat16,
            "seed": cfg.seed,
        },
        "metrics": metrics,
        "command": command,
    }


def pretrain(cfg: PretrainConfig, out: Path, command: str, log: Log = print) -> TrainResult:
    """Train a new model from scratch on synthetic cells and save it to ``out``.

    Raises:
        ModelError: ``out`` already holds a model.
        DataError: the MNIST source is unusable.
    """
    _refuse_existing_model(out)
    sources = _load_sources(cfg)
    stages = cfg.schedule()
    t0 = time.time()
    validation = _make_validation_cells(cfg, stages, log)
    validation_generate_s = time.time() - t0
    fitted = _fit_schedule(cfg, stages, sources.base, validation, log)
    val_accuracy = _accuracy(fitted.network, *validation)
    metrics = _pretrain_metrics(val_accuracy, fitted, validation_generate_s, t0)
    save_model(fitted.network, out, _pretrain_card(cfg, out, command, sources, fitted, metrics))
    log(f"saved {out} (synthetic validation accuracy {val_accuracy:.4f})")
    _log_default_model(out, made_default=False, log=log)
    return TrainResult(out, fitted.losses, metrics, made_default=False)


def _log_default_model(out: Path, made_default: bool, log: Log) -> None:
    for line in default_model_lines(out, made_default=made_default):
        log(line)


def default_model_lines(
    out: Path, made_default: bool, project_models: Path = MODELS_DIR
) -> list[str]:
    """What a training run says about the default model after saving ``out``.

    The default is the ``DEFAULT`` file of the folder holding ``out``: the
    lines name that folder (absolute), and say when it is not the project's
    ``models/``, whose default the verbs use without ``--model``.
    """
    folder = out.parent.absolute()
    pointer = folder / DEFAULT_POINTER
    if made_default:
        lines = [f"{out.name} is now the default model in {folder} ({pointer} names it)"]
        if folder.resolve() != project_models.resolve():
            lines.append(
                f"note: {folder} is not the project's models folder; verbs run without "
                f"--model still use the default in {project_models}"
            )
        return lines
    try:
        current = pointer.read_text(encoding="utf-8").strip() or "none set"
    except OSError:
        current = "none set"
    return [
        f"the default model in {folder} is unchanged ({current}); use {out.name} with "
        f"--model {out}, or make it the default by writing its name into {pointer}"
    ]


# -- labelled data for fine-tuning -------------------------------------------------


def load_labelled(
    source: Path,
    classes: tuple[str, ...],
    size: tuple[int, int],
    read_store: LabelReader | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Prepared crops and class indices from hand labels.

    ``source`` is a folder with one sub-folder per label (``17/``, ``empty/``),
    a CSV of ``path,label`` rows (paths relative to the CSV), or any other file
    ``read_store`` reads (the CLI passes the labeller's ``read_labelled`` for
    its SQLite store).

    Raises:
        DataError: the source is missing, malformed, empty, or has a label
            outside the model's classes.
    """
    items = list(_iter_labelled(source, read_store))
    if not items:
        raise DataError(f"{source}: no labelled crops found")
    crops, idx = [], []
    for where, data, label in items:
        try:
            crops.append(load_image(data, name=where, min_side=1))
        except Exception as e:  # ImageLoadError, with the crop named
            raise DataError(str(e)) from e
        try:
            idx.append(label_to_index(label, classes))
        except DataError as e:
            raise DataError(f"{where}: {e}") from e
    return prepare_batch(crops, size), np.array(idx, np.int64)


def _iter_labelled(source: Path, read_store: LabelReader | None) -> Iterable[LabelledCrop]:
    if not source.exists():
        raise DataError(f"{source}: labels not found")
    if source.is_dir():
        for sub in sorted(p for p in source.iterdir() if p.is_dir()):
            for f in sorted(sub.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    yield str(f), f.read_bytes(), sub.name
        return
    if source.suffix.lower() == ".csv":
        try:
            with open(source, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{source}: cannot read labels CSV ({e})") from e
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
            rows = rows[1:]
        for n, row in enumerate(rows, start=1):
            if not row:
                continue
            if len(row) < 2:
                raise DataError(f"{source}: row {n}: expected 'path,label'")
            p = (source.parent / row[0]).resolve() if not os.path.isabs(row[0]) else Path(row[0])
            try:
                data = p.read_bytes()
            except OSError as e:
                raise DataError(f"{source}: row {n}: cannot read {p} ({e.strerror})") from e
            yield str(p), data, row[1]
        return
    if read_store is None:
        raise DataError(f"{source}: not a folder of label folders or a labels CSV")
    yield from read_store(source)


# -- fine-tuning ---------------------------------------------------------------------


@dataclass(frozen=True)
class _LabelSplit:
    """Hand labels, with the indices held out for validation and those trained on."""

    X: np.ndarray
    y: np.ndarray
    val: np.ndarray
    train: np.ndarray


def _split_labels(
    X: np.ndarray, y: np.ndarray, val_fraction: float, seed: int, labels: Path
) -> _LabelSplit:
    """Hold out ``val_fraction`` of the labels (none when there are under five).

    Raises:
        DataError: no label is left to train on.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, round(val_fraction * len(y))) if len(y) >= 5 else 0
    split = _LabelSplit(X, y, order[:n_val], order[n_val:])
    if len(split.train) == 0:
        raise DataError(f"{labels}: too few labels to fine-tune ({len(y)})")
    return split


def _held_out_accuracy(network: Any, split: _LabelSplit) -> float:
    if len(split.val) == 0:
        return float("nan")
    return _accuracy(network, split.X[split.val], split.y[split.val])


def _mix_in_replay(
    split: _LabelSplit, base: Trainable, replay: int, mnist: str | None, seed: int, log: Log
) -> tuple[np.ndarray, np.ndarray, int]:
    """The training cells: the labels, repeated, beside replayed synthetic cells.

    Labels are few and precious: they are repeated so that they make up about
    half of what the model sees, with synthetic cells replayed beside them (at
    most twice as many as labels) against forgetting. Returns the cells, their
    class indices and the number of synthetic cells among them.
    """
    Xt, yt = split.X[split.train], split.y[split.train]
    n_replay = min(replay, 2 * len(split.train)) if mnist is not None else 0
    if n_replay > 0:
        Xr, yr = make_synthetic(
            base.classes, mnist, n_replay, seed + 31, base.input_size, workers=1
        )
        repeat = max(1, round(n_replay / len(split.train)))
        Xt = np.concatenate([np.repeat(Xt, repeat, axis=0), Xr])
        yt = np.concatenate([np.repeat(yt, repeat), yr])
        log(f"replaying {n_replay} synthetic cells beside the labels (MNIST from {mnist})")
    else:
        # Labels alone can make a model forget what they do not show (a small
        # model fine-tuned on ~400 labels read every blank cell as "4").
        log(
            "warning: no replayed synthetic cells (no MNIST source, or --replay 0): "
            "fine-tuning on the labels alone"
        )
    return Xt, yt, n_replay


def _fit_copy(
    base: Trainable, X: np.ndarray, y: np.ndarray, epochs: int, learning_rate: float, seed: int
) -> tuple[Any, tuple[float, ...]]:
    """A copy of ``base``'s network trained on ``X``, and its loss per epoch."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    network = keras.models.clone_model(base.network)
    network.set_weights(base.network.get_weights())
    batch = min(128, len(y))
    _compile(network, learning_rate, epochs * int(np.ceil(len(y) / batch)))
    hist = network.fit(X, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    return network, tuple(float(v) for v in hist.history["loss"])


def _finetune_card(base: Trainable, out: Path, command: str, run: dict[str, Any]) -> dict[str, Any]:
    """The base model's card, renamed, with the fine-tuning ``run`` and its metric."""
    card = dict(base.card)
    card.update({"name": out.name, "parent": base.name, "command": command, "finetune": run})
    card["metrics"] = {"heldout_accuracy": run["heldout_accuracy_after"]}
    return card


def _settle_default(out: Path, better: bool, before: float, after: float, log: Log) -> None:
    """Make ``out`` the default model if it did better, and say which is the default."""
    if better:
        set_default(out)
    else:
        log(f"{out.name} is not better on the held-out labels ({after:.4f} < {before:.4f})")
    _log_default_model(out, made_default=better, log=log)


def finetune(
    model: Path | None,
    labels: Path,
    out: Path,
    command: str,
    *,
    epochs: int = 8,
    val_fraction: float = 0.2,
    replay: int = 4_000,
    learning_rate: float = 3e-4,
    seed: int = 0,
    mnist: str | None = None,
    read_store: LabelReader | None = None,
    log: Log = print,
) -> TrainResult:
    """Fine-tune ``model`` on hand labels and save the result as a new model.

    A validation split of the labels is held out; accuracy on it is measured
    before and after. Synthetic cells are replayed alongside the labels so the
    model does not forget what the labels don't show. The new model becomes the
    default only if it is at least as good on the held-out split.

    Raises:
        ModelError: ``out`` exists, or the base model is unusable.
        DataError: the labels are unusable.
    """
    _refuse_existing_model(out)
    base = load_network(model)
    X, y = load_labelled(labels, base.classes, base.input_size, read_store)
    split = _split_labels(X, y, val_fraction, seed, labels)
    before = _held_out_accuracy(base.network, split)
    log(
        f"{len(split.train)} labels for training, {len(split.val)} held out; "
        f"accuracy before: {before:.4f}"
    )
    Xt, yt, n_replay = _mix_in_replay(split, base, replay, mnist, seed, log)
    network, losses = _fit_copy(base, Xt, yt, epochs, learning_rate, seed)
    after = _held_out_accuracy(network, split)
    log(f"accuracy after: {after:.4f} (loss {losses[0]:.4f} -> {losses[-1]:.4f})")
    run = {
        "labels": str(labels),
        "labelled_cells": len(split.y),
        "held_out": len(split.val),
        "replayed_synthetic_cells": int(n_replay),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "seed": seed,
        "heldout_accuracy_before": round(before, 5),
        "heldout_accuracy_after": round(after, 5),
        "loss_per_epoch": [round(v, 4) for v in losses],
        "trained_on": machine(),
    }
    save_model(network, out, _finetune_card(base, out, command, run))
    better = len(split.val) > 0 and after >= before
    _settle_default(out, better, before, after, log)
    return TrainResult(out, losses, run, made_default=better)


__all__ = [
    "LabelReader",
    "LabelledCrop",
    "PretrainConfig",
    "TrainResult",
    "default_model_lines",
    "finetune",
    "load_labelled",
    "make_synthetic",
    "pretrain",
]
