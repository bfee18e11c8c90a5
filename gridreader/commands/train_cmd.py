"""``gridreader train`` and ``gridreader finetune``."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from gridreader.classes import parse_classes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="pretrain a new model on synthetic cells")
    p.add_argument(
        "--classes", default="0-36", help="integers to read, e.g. 0-36 or 0-99 (default 0-36)"
    )
    p.add_argument(
        "--mnist",
        default=None,
        help="MNIST digits: keras .npz, IDX .gz folder, or label-first CSV (default: download)",
    )
    p.add_argument("--out", required=True, type=Path, help="new model folder, e.g. models/NAME")
    p.add_argument("--samples", type=int, default=120_000, help="synthetic training cells")
    p.add_argument("--val-samples", type=int, default=6_000, help="synthetic validation cells")
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--handwritten-share",
        type=float,
        default=0.35,
        help="share of synthetic cells written by hand (MNIST) rather than in fonts",
    )
    p.add_argument(
        "--small-text-share",
        type=float,
        default=0.0,
        help="share of printed cells drawn with tiny (4.5-9 px) text",
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="continue from this model's weights instead of from scratch",
    )
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--workers", type=int, default=2, help="processes generating cells")
    p.add_argument(
        "--exclude-fonts",
        default="",
        help="comma-separated font family substrings to hold out of training",
    )
    p.add_argument(
        "--stage",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="a stage of the schedule, repeatable: fresh cells and their own learning rate, "
        "e.g. samples=60000,epochs=2,lr=3e-4,handwritten=0.5,small_text=0.5 "
        "(keys left out take the flags' values)",
    )
    p.add_argument(
        "--mixed-bfloat16",
        action="store_true",
        help="train with bfloat16 activations (about twice as fast where the CPU has "
        "bfloat16 units); the saved model is float32",
    )
    p.set_defaults(func=run_train)

    f = sub.add_parser("finetune", help="fine-tune a model on hand-labelled cells")
    f.add_argument(
        "--model", type=Path, default=None, help="base model folder (default: the default model)"
    )
    f.add_argument(
        "--labels",
        required=True,
        type=Path,
        help="folder per class, CSV of path,label, or the labeller's .db",
    )
    f.add_argument("--out", required=True, type=Path, help="new model folder (never overwritten)")
    f.add_argument("--epochs", type=int, default=8)
    f.add_argument("--val-fraction", type=float, default=0.2)
    f.add_argument(
        "--replay",
        type=int,
        default=4_000,
        help="synthetic cells mixed in against forgetting (default 4000; 0 for none)",
    )
    f.add_argument(
        "--mnist",
        default=None,
        help="MNIST source for the replayed cells (default: the one in the base model's card)",
    )
    f.add_argument("--learning-rate", type=float, default=3e-4)
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=run_finetune)

    e = sub.add_parser(
        "export", help="write model.tflite (what read, batch and eval run) from model.keras"
    )
    e.add_argument("model_dir", type=Path, help="model folder holding model.keras and card.json")
    e.add_argument(
        "--precision",
        choices=("float32", "float16", "int8-dynamic"),
        default="float32",
        help="weights to serve; float16 or int8-dynamic only if no class changes and "
        "confidences stay within 0.01 on the check images (else float32)",
    )
    e.add_argument(
        "--check",
        type=Path,
        action="append",
        default=[],
        help="folder of images (and sub-folders) to check a quantised model on "
        "(default: data/bench/dev)",
    )
    e.set_defaults(func=run_export)


def _command(args: argparse.Namespace) -> str:
    return "gridreader " + " ".join(shlex.quote(a) for a in args.argv)


def run_train(args: argparse.Namespace) -> int:
    from gridreader.errors import DataError
    from gridreader.train import PretrainConfig, Stage, parse_stage, pretrain

    if args.samples < 1 or args.epochs < 1 or args.val_samples < 1:
        raise DataError("--samples, --val-samples and --epochs must be positive")
    flags = Stage(
        args.samples,
        args.epochs,
        args.learning_rate,
        args.handwritten_share,
        args.small_text_share,
    )
    stages = tuple(parse_stage(text, flags) for text in args.stage)
    cfg = PretrainConfig(
        classes=parse_classes(args.classes),
        mnist=args.mnist,
        samples=args.samples,
        val_samples=args.val_samples,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        workers=max(1, args.workers),
        exclude_fonts=tuple(s.strip() for s in args.exclude_fonts.split(",") if s.strip()),
        handwritten_share=args.handwritten_share,
        small_text_share=args.small_text_share,
        init_from=args.init_from,
        learning_rate=args.learning_rate,
        stages=stages,
        mixed_bfloat16=args.mixed_bfloat16,
    )
    pretrain(cfg, args.out, _command(args))
    return 0


def run_finetune(args: argparse.Namespace) -> int:
    from gridreader.train import finetune
    from labeller.store import read_labelled

    # Without --mnist, replay with the MNIST file the base model was trained on.
    mnist = args.mnist or _card_mnist(args.model)
    finetune(
        args.model,
        args.labels,
        args.out,
        _command(args),
        epochs=args.epochs,
        val_fraction=args.val_fraction,
        replay=args.replay if mnist else 0,
        seed=args.seed,
        mnist=mnist,
        learning_rate=args.learning_rate,
        read_store=read_labelled,
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from gridreader.export import export_model

    export_model(args.model_dir, args.precision, args.check)
    return 0


def _card_mnist(model: Path | None) -> str | None:
    """The MNIST file the base model was trained with, when it is still there."""
    from gridreader.errors import ModelError
    from gridreader.model import default_model_path, read_card

    try:
        card = read_card(model if model is not None else default_model_path())
    except ModelError:
        return None  # finetune itself reports the broken model
    source = card.get("data", {}).get("mnist_source")
    return source if isinstance(source, str) and Path(source).exists() else None
