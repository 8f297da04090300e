"""The command line, `python -m mnist_nn`: download, train, evaluate, predict and bench.

Every subcommand is a function taking the parsed arguments; main() turns the errors a user can
cause (bad arguments, missing files, damaged data) into a message on stderr, one line plus the
library's advice where it gives some (how to place MNIST by hand), and a non-zero exit.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mnist_nn.datasets import DATASET_NAMES

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a process stopped by Ctrl-C (128 + SIGINT)
MODEL_CHOICES = ("mlp", "cnn")
DEFAULT_HIDDEN = (128, 64)  # the mlp's hidden layers
DEFAULT_FILTERS = (16, 32)  # the cnn's filters per conv block


class CommandError(Exception):
    """A problem the user can fix; main() prints its message without a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the fix instead of the usage block."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        choices=DATASET_NAMES,
        default="mnist",
        help="which data set (default: mnist; mnist-test-split: only MNIST's test file, split "
        "8,000/2,000; synthetic: digits drawn in code, offline)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the IDX files (default: $MNIST_NN_DATA or the clone's data/)",
    )


def build_parser() -> argparse.ArgumentParser:
    from mnist_nn.activations import ACTIVATIONS
    from mnist_nn.optimizers import OPTIMIZERS, SCHEDULES

    parser = _Parser(
        prog="python -m mnist_nn",
        description="A neural network from scratch in NumPy that reads handwritten digits.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    download = commands.add_parser(
        "download", help="fetch MNIST (or Fashion-MNIST) into the data folder"
    )
    _add_data_options(download)
    download.set_defaults(run=run_download)

    train = commands.add_parser("train", help="train a network and save it")
    train.add_argument(
        "--model",
        choices=MODEL_CHOICES,
        default="mlp",
        help="mlp: dense layers; cnn: conv 5x5 -> ReLU -> max-pool blocks, then dense "
        "(default: mlp)",
    )
    # None marks "not given", so options that mean nothing for the chosen --model are refused
    # instead of silently ignored.
    train.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=None,
        metavar="UNITS",
        help="hidden layer sizes, mlp only (default: 128 64)",
    )
    train.add_argument(
        "--filters",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="filters of each conv block, cnn only (default: 16 32)",
    )
    train.add_argument(
        "--activation",
        choices=sorted(set(ACTIVATIONS) - {"softmax"}),
        default=None,
        help="hidden activation; the cnn uses relu (default: relu)",
    )
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(default: adam)")
    train.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="(default: the optimizer's: 0.1 sgd, 0.01 momentum/nesterov, 0.001 adam)",
    )
    train.add_argument(
        "--schedule", choices=SCHEDULES, default="constant", help="(default: constant)"
    )
    train.add_argument("--batch-size", type=int, default=128, help="(default: 128)")
    train.add_argument("--epochs", type=int, default=10, help="(default: 10)")
    train.add_argument(
        "--dropout", type=float, default=None, help="dropout rate, mlp only (default: 0)"
    )
    train.add_argument("--l2", type=float, default=0.0, help="L2 weight decay (default: 0)")
    train.add_argument(
        "--patience",
        type=int,
        default=None,
        help="stop after this many epochs without a better validation loss (default: never)",
    )
    train.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of the training images kept for validation (default: 0.1)",
    )
    train.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N training images only, for a quick try",
    )
    train.add_argument("--seed", type=int, default=0, help="(default: 0)")
    _add_data_options(train)
    train.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to save the model (default: runs/mlp.npz or runs/cnn.npz); the learning "
        "curves go next to it as .png",
    )
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser(
        "evaluate", help="test accuracy, per-class accuracy and the confusion matrix"
    )
    evaluate.add_argument("model", type=Path, metavar="MODEL", help="a saved .npz model")
    _add_data_options(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    predict = commands.add_parser("predict", help="read the digit in each image file")
    predict.add_argument("model", type=Path, metavar="MODEL", help="a saved .npz model")
    predict.add_argument(
        "images", type=Path, nargs="+", metavar="IMAGE", help="PNG or JPEG of one digit"
    )
    predict.set_defaults(run=run_predict)

    bench = commands.add_parser("bench", help="time training against PyTorch on the CPU")
    from mnist_nn.bench import add_arguments

    add_arguments(bench)
    _add_data_options(bench)
    bench.set_defaults(run=run_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (e.g. a checksum that differs) as one line, without the source line."""
    print(f"mnist_nn: warning: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from mnist_nn.datasets import DatasetNotFoundError
    from mnist_nn.train import TrainingDivergedError

    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\nmnist_nn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (
        CommandError,
        DatasetNotFoundError,
        TrainingDivergedError,
        FileNotFoundError,
        ValueError,
        OSError,
    ) as error:
        # The first line says what failed; some library messages add advice on further lines
        # (the offline error lists the URLs tried and how to place the files by hand).
        message = str(error).strip() or repr(error)
        print(f"mnist_nn {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _load(args: argparse.Namespace, split: str | None = None):
    from mnist_nn.datasets import load_dataset

    if args.dataset == "synthetic":
        return load_dataset("synthetic", split=split)
    return load_dataset(args.dataset, args.data_dir, split=split, progress=sys.stderr.isatty())


def run_download(args: argparse.Namespace) -> int:
    from mnist_nn.datasets import dataset_folder

    if args.dataset == "synthetic":
        raise CommandError("synthetic digits are drawn in code; there is nothing to download")
    (X_train, _), (X_test, _) = _load(args)
    files = "mnist" if args.dataset == "mnist-test-split" else args.dataset  # MNIST's own files
    folder = dataset_folder(files, args.data_dir)
    print(f"{args.dataset}: {len(X_train):,} training and {len(X_test):,} test images in {folder}")
    return 0


def _check_train_arguments(args: argparse.Namespace) -> None:
    """Refuse bad values and options that mean nothing for --model; fill in the defaults."""
    if args.model == "cnn":
        ignored = {
            "--hidden": args.hidden is not None,
            "--activation": args.activation not in (None, "relu"),
            "--dropout": args.dropout not in (None, 0.0),
        }
        for option, given in ignored.items():
            if given:
                raise CommandError(
                    f"{option} is for --model mlp; the cnn is conv -> relu -> max-pool blocks "
                    "without dropout, sized by --filters"
                )
    elif args.filters is not None:
        raise CommandError("--filters is for --model cnn; size the mlp with --hidden")
    args.hidden = list(DEFAULT_HIDDEN) if args.hidden is None else args.hidden
    args.filters = list(DEFAULT_FILTERS) if args.filters is None else args.filters
    args.activation = "relu" if args.activation is None else args.activation
    args.dropout = 0.0 if args.dropout is None else args.dropout
    if args.out is None:
        args.out = Path(f"runs/{args.model}.npz")
    if args.out.suffix.lower() == ".png":  # the curves' picture would overwrite the model
        raise CommandError(
            f"--out {args.out} is where the model goes; name it .npz (the learning curves are "
            "saved next to it as .png)"
        )

    positive = {"--epochs": args.epochs, "--batch-size": args.batch_size}
    if args.model == "mlp":
        positive["--hidden"] = min(args.hidden)
    else:
        positive["--filters"] = min(args.filters)
    if args.limit is not None:
        positive["--limit"] = args.limit
    if args.patience is not None:
        positive["--patience"] = args.patience
    for option, value in positive.items():
        if value < 1:
            raise CommandError(f"{option} must be at least 1, got {value}")
    if not 0.0 <= args.val_fraction < 1.0:
        raise CommandError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.patience is not None and args.val_fraction == 0.0:
        raise CommandError("--patience watches the validation loss: use --val-fraction > 0")


def image_shape(X: np.ndarray) -> tuple[int, int, int]:
    """Per-image (channels, height, width) of a data set shaped (N, H, W), (N, C, H, W) or (N, D)
    with D a square number of pixels."""
    if X.ndim == 3:
        return (1, *X.shape[1:])
    if X.ndim == 4:
        return tuple(X.shape[1:])
    if X.ndim == 2 and math.isqrt(X.shape[1]) ** 2 == X.shape[1]:
        side = math.isqrt(X.shape[1])
        return (1, side, side)
    raise CommandError(f"cannot tell the image size from data of shape {X.shape}")


def build_model(args: argparse.Namespace, input_shape: Sequence[int], n_classes: int):
    """The network that `--model` names, sized for images of input_shape (C, H, W)."""
    from mnist_nn.model import build_cnn, build_mlp

    if args.model == "mlp":
        return build_mlp(
            [int(np.prod(input_shape)), *args.hidden, n_classes],
            activation=args.activation,
            dropout=args.dropout,
            seed=args.seed,
        )
    if args.model == "cnn":
        try:
            return build_cnn(
                input_shape, n_filters=args.filters, n_classes=n_classes, seed=args.seed
            )
        except ValueError as error:  # each block halves the image: too many blocks shrink it away
            height, width = input_shape[1:]
            raise CommandError(
                f"--filters gives {len(args.filters)} conv blocks, too many for {height}x{width} "
                f"images, which each block halves; give fewer numbers ({error})"
            ) from None
    raise CommandError(f"unknown model {args.model!r}; choose one of {list(MODEL_CHOICES)}")


def run_train(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from mnist_nn.plots import plot_history
    from mnist_nn.preprocess import train_val_split
    from mnist_nn.train import History, fit

    _check_train_arguments(args)
    (X, y), (X_test, y_test) = _load(args)
    if args.limit is not None:
        X, y = X[: args.limit], y[: args.limit]
    validation_data = None
    if args.val_fraction > 0.0:
        (X, y), validation_data = train_val_split(
            X, y, val_fraction=args.val_fraction, seed=args.seed
        )
    n_classes = int(max(y.max(), y_test.max())) + 1
    model = build_model(args, image_shape(X), n_classes)
    print(model.summary())
    print(f"training on {len(X):,} images, validating on {_count(validation_data)} images")

    # The best epoch so far (lowest validation loss, or simply the latest without validation)
    # is copied after every epoch, so Ctrl-C can stop at any moment and still keep it.
    best = {"loss": math.inf, "epoch": None, "weights": None}
    rows: list[dict] = []

    def after_epoch(row: dict) -> None:
        rows.append(row)
        tqdm.write(_epoch_line(row, args.epochs))
        if row["val_loss"] is None or row["val_loss"] < best["loss"]:
            best.update(loss=row["val_loss"], epoch=row["epoch"], weights=model.get_weights())

    interrupted = False
    try:
        fit(
            model,
            X,
            y,
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            learning_rate=args.learning_rate,
            schedule=args.schedule,
            weight_decay=args.l2,
            validation_data=validation_data,
            early_stopping_patience=args.patience,
            seed=args.seed,
            progress=sys.stderr.isatty(),
            on_epoch_end=after_epoch,
        )
    except KeyboardInterrupt:
        interrupted = True
        if best["weights"] is None:
            print("\ninterrupted before the first epoch ended: no model saved", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"\ninterrupted: keeping epoch {best['epoch']}, the best so far", file=sys.stderr)
    model.set_weights(best["weights"])

    path = model.save(args.out)
    history = History()
    for row in rows:
        history.append(row)
    figure_path = path.with_suffix(".png")
    plot_history(history).savefig(figure_path, dpi=100)
    test = model.evaluate(X_test, y_test)
    print(
        f"test accuracy {test.accuracy:.2%} (loss {test.loss:.4f}), model of epoch {best['epoch']}"
    )
    print(f"saved the model to {path} and the learning curves to {figure_path}")
    return EXIT_INTERRUPTED if interrupted else 0


def _count(data) -> str:
    return "no" if data is None else f"{len(data[0]):,}"


def _epoch_line(row: dict, n_epochs: int) -> str:
    width = len(str(n_epochs))
    line = (
        f"epoch {row['epoch']:>{width}}/{n_epochs}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_accuracy']:.2%}"
    )
    if row["val_loss"] is not None:
        line += f"  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.2%}"
    return line + f"  {row['seconds']:.1f} s"


def _load_model(path: Path):
    from mnist_nn.model import load_model

    return load_model(path)


def run_evaluate(args: argparse.Namespace) -> int:
    from mnist_nn.datasets import class_names
    from mnist_nn.metrics import confusion_matrix, precision_recall

    model = _load_model(args.model)
    X_test, y_test = _load(args, split="test")
    result = model.evaluate(X_test, y_test)
    y_pred = model.predict(X_test)
    C = confusion_matrix(y_test, y_pred, n_classes=model.n_classes)
    _, per_class = precision_recall(y_test, y_pred, n_classes=model.n_classes)  # recall
    print(
        f"{args.model}: test accuracy {result.accuracy:.2%} (loss {result.loss:.4f}) on "
        f"{len(y_test):,} {args.dataset} images"
    )
    names = class_names(args.dataset) if len(per_class) == 10 else []
    print("\naccuracy per class:")
    for label, share in enumerate(per_class):
        name = f" {names[label]}" if names and names[label] != str(label) else ""
        print(f"  {label}{name}: {share:.2%}")
    print("\nconfusion matrix (rows: true class, columns: predicted):")
    print(format_confusion_matrix(C))
    return 0


def format_confusion_matrix(C: np.ndarray) -> str:
    """A text table of counts with class numbers along both edges."""
    width = max(len(str(C.max())), len(str(len(C) - 1))) + 1
    header = " " * 4 + "".join(f"{label:>{width}}" for label in range(len(C)))
    rows = [
        f"{label:>3} " + "".join(f"{count:>{width}}" for count in row)
        for label, row in enumerate(C)
    ]
    return "\n".join([header, *rows])


def run_predict(args: argparse.Namespace) -> int:
    from mnist_nn.images import load_digit_image

    model = _load_model(args.model)
    failed = 0
    for path in args.images:
        try:
            image = load_digit_image(path)
        except (FileNotFoundError, ValueError) as error:
            print(f"mnist_nn predict: error: {error}", file=sys.stderr)
            failed += 1
            continue
        P = model.predict_proba(image[None])[0]  # (C,)
        top = np.argsort(P)[::-1][:3]
        ranked = ", ".join(f"{label} {P[label]:.1%}" for label in top)
        print(f"{path}: {top[0]}  ({ranked})")
    return EXIT_ERROR if failed else 0


def run_bench(args: argparse.Namespace) -> int:
    from mnist_nn.bench import run

    return run(args)
