"""The cell classifier: a small CNN, and its files on disk.

A model lives in a folder ``models/NAME/`` holding ``model.keras`` (weights and
architecture, what training and fine-tuning start from), ``model.tflite`` (the
same network converted for the LiteRT runtime, what reading runs) and
``card.json`` (the class list, input size, data, training parameters, measured
metrics and the command that made it). The class list and input size are read
from the card, so a model is always used the way it was trained.

Reading never imports TensorFlow or Keras: their import alone takes seconds
and hundreds of MB. Only training, fine-tuning and export do (``_keras``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gridreader.classes import class_value
from gridreader.errors import ModelError, UsageError, one_line
from gridreader.imageio import atomic_path, write_atomic
from gridreader.preprocess import dequantise
from gridreader.quiet import quiet_native_logs

MODEL_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
CARD_FILE = "card.json"
DEFAULT_POINTER = "DEFAULT"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
PREDICT_BATCH = 64
"""Crops per network call. LiteRT's XNNPACK runs 64 as fast per cell as 512, and
its activation arena is an eighth the size (about 90 MB less for 512: the
first convolution alone puts out 512 x 32 x 48 x 24 floats)."""
EXPORT_HINT = "make it with: gridreader export"


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        # Loading TensorFlow logs from C++ (absl, oneDNN) whatever the level says.
        with quiet_native_logs():
            import keras
    except ModuleNotFoundError as e:
        raise UsageError(
            f"{e.name} is not installed: training, fine-tuning and export need it "
            "(pip install 'gridreader[train]'); reading does not"
        ) from e

    return keras


def build_model(num_classes: int, input_size: tuple[int, int]) -> Any:
    """The network, declared layer by layer.

    Three conv blocks keep it small (about 0.4 M parameters, a few million
    multiply-adds per crop) so thousands of cells a second run on two CPU
    cores; the dense head keeps position, which tells "12" from "21".
    """
    keras = _keras()
    layers = keras.layers
    h, w = input_size
    return keras.Sequential(
        [
            keras.Input(shape=(h, w, 1)),
            layers.Conv2D(24, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Conv2D(48, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2D(64, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="gridreader_cnn",
    )


@dataclass(frozen=True)
class Classifier:
    """A loaded model with its card, served by the LiteRT runtime."""

    name: str
    path: Path
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    card: dict[str, Any] = field(repr=False, compare=False)
    interpreter: Any = field(repr=False, compare=False)
    precision: str = "float32"
    """What the weights are stored in (``float32``, ``float16`` or
    ``int8-dynamic``), as the card records it."""
    runtime: str = "LiteRT"
    """The runtime and how it runs, e.g. ``LiteRT 2.3.0 XNNPACK, 2 threads``."""

    @property
    def served_file(self) -> Path:
        """The file the network is read from."""
        return self.path / TFLITE_FILE

    def predict(
        self, batch: np.ndarray, batch_size: int = PREDICT_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class indices and confidences for prepared crops ``(N, H, W, 1)``.

        ``batch`` may be float32 in ``[0, 1]`` or uint8 (``0..255``).
        """
        if len(batch) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        probs = np.concatenate(
            [
                _predict_chunk(self.interpreter, batch[i : i + batch_size])
                for i in range(0, len(batch), batch_size)
            ]
        )
        idx = probs.argmax(axis=1)
        return idx, probs[np.arange(len(idx)), idx].astype(np.float32)

    def value(self, index: int) -> int | None:
        """CSV value of a class index."""
        return class_value(self.classes[index])


def _predict_chunk(interpreter: Any, chunk: np.ndarray) -> np.ndarray:
    # A batch of one crop may take another kernel path whose results differ in
    # the fifth decimal; read as one of two, a crop gets the same confidence
    # however the crops were batched (the local pool and a cluster batch them
    # differently, and their outputs must be identical).
    if len(chunk) == 1:
        return run_interpreter(interpreter, dequantise(np.concatenate([chunk, chunk])))[:1]
    return run_interpreter(interpreter, dequantise(chunk))


def run_interpreter(interpreter: Any, x: np.ndarray) -> np.ndarray:
    """The network's outputs for one batch of float32 inputs ``(n, h, w, 1)``.

    The input is resized only when the batch size changes (the last, shorter
    batch of a run); XNNPACK then plans that size once.
    """
    inp = interpreter.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        interpreter.resize_tensor_input(inp["index"], list(x.shape))
        interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], np.ascontiguousarray(x, np.float32))
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def default_model_path(models_dir: Path = MODELS_DIR) -> Path:
    """The folder named in ``models/DEFAULT``.

    Raises:
        ModelError: no default model is set.
    """
    pointer = models_dir / DEFAULT_POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ModelError(f"{pointer}: no default model ({e.strerror or e}); pass --model") from e
    return models_dir / name


def set_default(model_dir: Path) -> None:
    """Point ``models/DEFAULT`` (in the model's parent folder) at ``model_dir``."""
    write_atomic(model_dir.parent / DEFAULT_POINTER, model_dir.name + "\n")


def read_card(model_dir: Path) -> dict[str, Any]:
    """The model card of ``model_dir``.

    Raises:
        ModelError: missing or malformed card.
    """
    card_path = model_dir / CARD_FILE
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ModelError(f"{card_path}: cannot read model card ({e.strerror or e})") from e
    except json.JSONDecodeError as e:
        raise ModelError(f"{card_path}: model card is not valid JSON ({e.msg})") from e
    if not isinstance(card, dict):
        raise ModelError(f"{card_path}: model card must be a JSON object")
    classes = card.get("classes")
    size = card.get("input_size")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise ModelError(f"{card_path}: 'classes' must be a non-empty list of strings")
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and v > 0 for v in size)
    ):
        raise ModelError(f"{card_path}: 'input_size' must be [height, width]")
    return card


@quiet_native_logs()
def load_classifier(model: str | os.PathLike[str] | None = None) -> Classifier:
    """Load a model folder (or the default one) for reading, with LiteRT.

    Raises:
        ModelError: the folder, card or ``model.tflite`` is missing, corrupt or
            inconsistent with the card.
    """
    model_dir = Path(model) if model is not None else default_model_path()
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: model folder not found")
    card = read_card(model_dir)
    served = model_dir / TFLITE_FILE
    try:
        data = served.read_bytes()
    except FileNotFoundError as e:
        raise ModelError(f"{served}: model file not found; {EXPORT_HINT} {model_dir}") from e
    except OSError as e:
        raise ModelError(f"{served}: cannot read model file ({e.strerror or e})") from e
    serving: dict[str, Any] = card["serving"] if isinstance(card.get("serving"), dict) else {}
    expected = serving.get("sha256")
    if isinstance(expected, str) and hashlib.sha256(data).hexdigest() != expected:
        raise ModelError(
            f"{served}: does not match the sha256 in {CARD_FILE} (corrupt or replaced); "
            f"{EXPORT_HINT} {model_dir}"
        )
    threads = default_threads()
    interpreter = open_interpreter(data, threads, served)
    classes = tuple(card["classes"])
    size = (int(card["input_size"][0]), int(card["input_size"][1]))
    in_shape = tuple(int(v) for v in interpreter.get_input_details()[0]["shape"][1:3])
    out_shape = int(interpreter.get_output_details()[0]["shape"][-1])
    if out_shape != len(classes) or in_shape != size:
        raise ModelError(
            f"{model_dir}: network ({in_shape}, {out_shape} classes) does not match its card "
            f"({size}, {len(classes)} classes)"
        )
    from ai_edge_litert import __version__ as litert_version

    return Classifier(
        model_dir.name,
        model_dir,
        classes,
        size,
        card,
        interpreter,
        str(serving.get("precision", "float32")),
        f"LiteRT {litert_version} (XNNPACK, {threads} threads)",
    )


def default_threads() -> int:
    """Threads for the network: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def open_interpreter(data: bytes, threads: int, name: Path) -> Any:
    """A LiteRT interpreter over a ``.tflite`` model's bytes, tensors allocated.

    Raises:
        ModelError: the bytes are not a usable model (``name`` is in the message).
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        with quiet_native_logs():
            interpreter = Interpreter(model_content=data, num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(
            f"{name}: cannot load model ({one_line(e, 120)}); {EXPORT_HINT} {name.parent}"
        ) from e
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 4:
        raise ModelError(f"{name}: not a cell classifier (expects one (n, h, w, 1) input)")
    return interpreter


@dataclass(frozen=True)
class Trainable:
    """A model folder's Keras network, for training, fine-tuning and export."""

    name: str
    path: Path
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    card: dict[str, Any] = field(repr=False, compare=False)
    network: Any = field(repr=False, compare=False)


def load_network(model: str | os.PathLike[str] | None = None) -> Trainable:
    """The Keras network of a model folder (or the default one), with its card.

    Raises:
        ModelError: the folder, card or ``model.keras`` is missing or inconsistent.
    """
    model_dir = Path(model) if model is not None else default_model_path()
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: model folder not found")
    card = read_card(model_dir)
    weights = model_dir / MODEL_FILE
    if not weights.is_file():
        raise ModelError(f"{weights}: model file not found")
    keras = _keras()
    try:
        network = keras.models.load_model(weights, compile=False)
    except Exception as e:  # keras raises many unrelated types for a bad file
        raise ModelError(
            f"{weights}: cannot load model ({type(e).__name__}: {str(e)[:120]})"
        ) from e
    size = (int(card["input_size"][0]), int(card["input_size"][1]))
    out_shape = network.output_shape[-1]
    in_shape = tuple(network.input_shape[1:3])
    if out_shape != len(card["classes"]) or in_shape != size:
        raise ModelError(
            f"{model_dir}: network ({in_shape}, {out_shape} classes) does not match its card "
            f"({size}, {len(card['classes'])} classes)"
        )
    return Trainable(model_dir.name, model_dir, tuple(card["classes"]), size, card, network)


PRECISIONS = ("float32", "float16", "int8-dynamic")
"""How ``model.tflite`` may store its weights: float16 halves the file;
int8-dynamic (dynamic-range quantisation) quarters it and runs the
convolutions on 8-bit integers."""


def to_tflite(network: Any, precision: str = "float32") -> bytes:
    """The network converted to a ``.tflite`` model (batch size left open).

    Raises:
        ModelError: unknown precision, or the converter failed.
    """
    if precision not in PRECISIONS:
        raise ModelError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    _keras()
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(network)
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        # The converter saves a SavedModel on the way and prints about it.
        with quiet_native_logs(), contextlib.redirect_stdout(io.StringIO()):
            data = bytes(converter.convert())
    except Exception as e:  # the converter raises its own and TF's error types
        raise ModelError(f"cannot convert the network to LiteRT ({type(e).__name__}: {e})") from e
    _check_conversion(network, data, precision)
    return data


def _check_conversion(network: Any, data: bytes, precision: str) -> None:
    # A conversion that lost the weights or the shape would still load; the same
    # outputs on a few random crops say it did not.
    h, w = network.input_shape[1:3]
    x = np.random.default_rng(0).random((8, h, w, 1)).astype(np.float32)
    want = np.asarray(network.predict_on_batch(x))
    got = run_interpreter(open_interpreter(data, 1, Path(TFLITE_FILE)), x)
    tolerance = 1e-4 if precision == "float32" else 0.05
    if got.shape != want.shape or not np.allclose(got, want, atol=tolerance):
        raise ModelError(
            f"the {precision} LiteRT conversion does not compute what the network does"
        )


def serving_entry(data: bytes, precision: str, **extra: Any) -> dict[str, Any]:
    """The card's record of ``model.tflite``."""
    _keras()
    import tensorflow as tf

    return {
        "file": TFLITE_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "precision": precision,
        "runtime": "ai-edge-litert (XNNPACK)",
        "converted_with": f"tensorflow {tf.__version__}",
        **extra,
    }


def save_model(network: Any, model_dir: Path, card: dict[str, Any]) -> None:
    """Write weights, their float32 LiteRT conversion and the card into a *new*
    folder; an existing one is refused.

    Raises:
        ModelError: the folder already holds a model, or conversion failed.
    """
    if any((model_dir / f).exists() for f in (MODEL_FILE, TFLITE_FILE, CARD_FILE)):
        raise ModelError(f"{model_dir}: a model already exists there; models are never overwritten")
    tflite = to_tflite(network)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / MODEL_FILE) as tmp:
        keras_tmp = tmp.with_suffix(".keras")
        network.save(keras_tmp)
        os.replace(keras_tmp, tmp)
    write_atomic(model_dir / TFLITE_FILE, tflite)
    card = dict(card, serving=serving_entry(tflite, "float32"))
    write_atomic(model_dir / CARD_FILE, json.dumps(card, indent=2) + "\n")
