"""The command line, `python -m mnist_nn`: download, train, evaluate, predict and bench.

Every subcommand is a function taking the parsed arguments; main() turns the errors a user can
cause (bad arguments, missing files, damaged data) into a message on stderr, one line plus the
library's advice where it gives some (how to place MNIST by hand), and a non-zero exit. The train
options are the fields of Settings, spelled the same (n_epochs is --n-epochs). Nothing here
imports the benchmark until `bench` runs.

`train` saves the model before it tests it. Ctrl-C or SIGTERM (`timeout`, `docker stop`) after
the first epoch ends training at the best epoch so far, and any interrupt after that keeps the
saved model; either way the last line says what was kept.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mnist_nn.datasets import DATASET_NAMES
from mnist_nn.settings import CHOICES, FIELD_NAMES, Settings

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a process stopped by Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # ... and by SIGTERM (128 + 15)
MLP_ONLY, CNN_ONLY = ("hidden_sizes", "activation", "dropout"), ("n_filters",)


class CommandError(Exception):
    """A problem the user can fix; main() prints its message without a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the fix instead of the usage block, and
    an unknown option is reported by its command, with the option it most resembles."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._command_parser(getattr(namespace, "command", None))
            command.error(
                f"unrecognized arguments: {' '.join(extras)}{_suggestion(command, extras)}"
            )
        return namespace

    def _command_parser(self, command: str | None) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                return action.choices[command]
        return self


def _suggestion(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """The hint for --epochs, "; did you mean --n-epochs?", if some option is close enough."""
    import difflib

    options = [option for action in parser._actions for option in action.option_strings]
    for extra in extras:
        if extra.startswith("--"):
            close = difflib.get_close_matches(extra.split("=")[0], options, n=1, cutoff=0.6)
            if close:
                return f"; did you mean {close[0]}?"
    return ""


def user_path(text: str) -> Path:
    """A path option with ~ expanded; an unknown ~user is a usage error, not a traceback."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text.split("/", 1)[0].removeprefix("~")
        why = f"no user {user!r}" if user else "HOME is not set (nor a home in passwd)"
        raise argparse.ArgumentTypeError(f"cannot expand {text}: {why}; give a full path") from None


def option_name(setting: str) -> str:
    """The command-line spelling of a setting: n_epochs -> --n-epochs."""
    return "--" + setting.replace("_", "-")


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _add_data_options(
    parser: argparse.ArgumentParser, default: str | None = "mnist", downloads: bool = True
) -> None:
    shown = default or "the one the model was trained on, else mnist"
    parser.add_argument(
        "--dataset",
        choices=DATASET_NAMES,
        default=default,
        help=f"which data set (default: {shown}; mnist-test-split: only MNIST's test file, split "
        "8,000/2,000; synthetic: digits drawn in code, offline)",
    )
    parser.add_argument(
        "--data-dir",
        type=user_path,
        default=None,
        help="folder with the IDX files (default: $MNIST_NN_DATA or the clone's data/)",
    )
    if downloads:
        parser.add_argument(
            "--timeout",
            type=seconds,
            default=None,
            metavar="SECONDS",
            help="how long a download mirror may stay silent before the next one is tried, "
            "e.g. 5 on a network known to be down (default: 30, and 5 to connect)",
        )


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    """One option per Settings field. Their default is None, "not given", so that an option
    that means nothing for the chosen --model is refused instead of silently ignored."""
    for knob in dataclasses.fields(Settings):
        default = knob.default
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = knob.metadata["help"]
        if "(default:" not in help_text:  # some say what their None default means
            help_text += f" (default: {shown})"
        options = {"default": None, "help": help_text}
        if knob.name in CHOICES:
            options["choices"] = CHOICES[knob.name]
        elif isinstance(default, tuple):
            options.update(type=int, nargs="+", metavar="N")
        else:
            options["type"] = float if knob.name in ("learning_rate", "dropout") else type(default)
            if default is None:  # learning_rate and patience: None means "the default"
                options["type"] = float if knob.name == "learning_rate" else int
        parser.add_argument(option_name(knob.name), **options)


def _add_bench_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework (default: 3)")
    parser.add_argument(
        "--n-epochs",
        type=int,
        default=3,
        help="epochs per run; the first is a warm-up and not timed when there are more "
        "(default: 3)",
    )
    parser.add_argument(
        "--case",
        dest="cases",
        action="append",
        metavar="NAME",
        help='run only this case, e.g. "cnn 16-32 adam b128" (repeatable; default: all)',
    )
    parser.add_argument("--no-torch", action="store_true", help="time mnist_nn alone")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a seconds-long smoke run: 2,000 synthetic images, one epoch, the default mlp (or "
        "the --case networks)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("runs/bench.json"),
        help="where to write the results (default: runs/bench.json)",
    )


def _add_train_command(commands) -> None:
    train = commands.add_parser("train", help="train a network and save it")
    _add_settings_options(train)
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
    _add_data_options(train)
    train.add_argument(
        "--out",
        type=user_path,
        default=None,
        help="where to save the model (default: runs/mlp.npz or runs/cnn.npz); the learning "
        "curves go next to it as .png",
    )
    train.set_defaults(run=run_train)


def build_parser() -> argparse.ArgumentParser:
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

    _add_train_command(commands)

    evaluate = commands.add_parser(
        "evaluate", help="test accuracy, per-class accuracy and the confusion matrix"
    )
    evaluate.add_argument("model", type=Path, metavar="MODEL", help="a saved .npz model")
    _add_data_options(evaluate, default=None)
    evaluate.add_argument(
        "--allow-overlap",
        action="store_true",
        help="evaluate even on images the model was trained on (the accuracy is then flattering)",
    )
    evaluate.set_defaults(run=run_evaluate)

    predict = commands.add_parser("predict", help="read the digit in each image file")
    predict.add_argument("model", type=Path, metavar="MODEL", help="a saved .npz model")
    predict.add_argument(
        "images", type=Path, nargs="+", metavar="IMAGE", help="PNG or JPEG of one digit"
    )
    predict.add_argument(
        "--debug-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write DIR/<image>-prepared.png for each image: the picture, each preparation "
        "step and the 28x28 input the network saw",
    )
    predict.set_defaults(run=run_predict)

    bench = commands.add_parser("bench", help="time training against PyTorch on the CPU")
    _add_bench_options(bench)
    _add_data_options(bench, downloads=False)  # the benchmark never downloads
    bench.set_defaults(run=run_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 on success)."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 still print
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (e.g. a checksum that differs) as one line, without the source line."""
    _warn(message)


def _warn(message) -> None:
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
    except MemoryError:
        print(
            f"mnist_nn {args.command}: error: not enough memory; try a smaller network, "
            "--batch-size or --limit",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except Exception as error:  # a bug or a broken installation: still one line, no traceback
        print(
            f"mnist_nn {args.command}: error: unexpected {type(error).__name__}: {error} "
            "(please report it, with the command you ran)",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _load(args: argparse.Namespace, split: str | None = None):
    from mnist_nn.datasets import load_dataset

    if args.dataset == "synthetic":
        return load_dataset("synthetic", split=split)
    progress = sys.stderr.isatty()
    return load_dataset(args.dataset, args.data_dir, split, progress=progress, timeout=args.timeout)


def run_download(args: argparse.Namespace) -> int:
    from mnist_nn.datasets import dataset_folder

    if args.dataset == "synthetic":
        raise CommandError("synthetic digits are drawn in code; there is nothing to download")
    (X_train, _), (X_test, _) = _load(args)
    files = "mnist" if args.dataset == "mnist-test-split" else args.dataset  # MNIST's own files
    folder = dataset_folder(files, args.data_dir)
    print(f"{args.dataset}: {len(X_train):,} training and {len(X_test):,} test images in {folder}")
    return 0


def settings_from_arguments(args: argparse.Namespace) -> Settings:
    """The Settings the train options give; options foreign to --model are refused."""
    given = {name: getattr(args, name) for name in FIELD_NAMES if getattr(args, name) is not None}
    model = given.get("model", "mlp")
    foreign = CNN_ONLY if model == "mlp" else MLP_ONLY
    for name in foreign:
        if name in given and given[name] != getattr(Settings(), name):
            other = "cnn" if model == "mlp" else "mlp"
            sized_by = "--hidden-sizes" if model == "mlp" else "--n-filters"
            raise CommandError(
                f"{option_name(name)} is for --model {other}; the {model} is sized by {sized_by}"
            )
    try:
        return Settings(**given)
    except ValueError as error:
        raise CommandError(_with_option_names(str(error))) from None


def _with_option_names(message: str) -> str:
    """A Settings error in the command line's words: n_epochs -> --n-epochs."""
    for name in FIELD_NAMES:
        message = re.sub(rf"\b{name}\b", option_name(name), message)
    return message


def _check_train_options(args: argparse.Namespace, settings: Settings) -> Path:
    """Refuse bad data options; return where the model goes."""
    if args.limit is not None and args.limit < 1:
        raise CommandError(f"--limit must be at least 1, got {args.limit}")
    if not 0.0 <= args.val_fraction < 1.0:
        raise CommandError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if settings.patience is not None and args.val_fraction == 0.0:
        raise CommandError("--patience watches the validation loss: use --val-fraction > 0")
    out = args.out or Path(f"runs/{settings.model}.npz")
    if out.suffix.lower() == ".png":  # the curves' picture would overwrite the model
        raise CommandError(
            f"--out {out} is where the model goes; name it .npz (the learning curves are saved "
            "next to it as .png)"
        )
    _check_writable(out)
    _check_writable(out.with_suffix(".png"))
    return out


def _check_writable(path: Path) -> None:
    """Before any training: refuse an output that could not be written, or that is not a plain
    file (a folder, a device such as /dev/null), which a save must never replace. Writing is
    tried for real (a temporary file where the save would put its own, removed at once): the
    permission bits say nothing about /proc, a read-only mount or root."""
    import tempfile

    from mnist_nn.files import existing_folder

    if path.exists() and not path.is_file():
        raise CommandError(f"{path} exists and is not a regular file; choose another --out")
    try:
        folder = existing_folder(path.parent, "the folder")
    except NotADirectoryError as error:  # a file or a broken link in the way, named
        raise CommandError(f"--out {path}: {error}") from None
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".mnist_nn-check.", suffix=".tmp")
    except OSError as error:
        # /proc answers "No such file or directory" for a folder that is there
        reason = "it takes no new files" if error.errno == errno.ENOENT else error.strerror
        raise CommandError(
            f"--out {path}: cannot write in {folder} ({reason}); choose another --out"
        ) from None
    os.close(handle)
    os.unlink(temporary)


def _training_data(args: argparse.Namespace, settings: Settings):
    """(X, y), validation data or None, and the test split, as the data options say."""
    from mnist_nn.preprocess import train_val_split

    (X, y), test = _load(args)
    if args.limit is not None:
        X, y = X[: args.limit], y[: args.limit]
    if args.val_fraction == 0.0:
        return (X, y), None, test
    train, validation = train_val_split(X, y, val_fraction=args.val_fraction, seed=settings.seed)
    return train, validation, test


def run_train(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from mnist_nn.train import TrainingInterrupted, fit

    settings = _within_usable_cores(settings_from_arguments(args))
    out = _check_train_options(args, settings)
    (X, y), validation_data, test_data = _training_data(args, settings)
    model = _build_model(settings, X.shape[1:])
    print(model.summary())
    print(f"training on {len(X):,} images, validating on {_count(validation_data)} images")
    with _Stops() as stops:
        try:
            history = fit(
                model,
                X,
                y,
                settings,
                validation_data=validation_data,
                progress=sys.stderr.isatty(),
                on_epoch_end=lambda row: tqdm.write(_epoch_line(row, settings.n_epochs)),
            )
        except TrainingInterrupted as stop:
            stops.interrupted()
            if stop.history.best_epoch is None:
                print(
                    f"\n{stops.reason} before the first epoch ended: no model saved",
                    file=sys.stderr,
                )
                return stops.exit_code
            print(f"\n{stops.reason}: {stop}", file=sys.stderr)
            history = stop.history
        digits = _digit_check_images(args.dataset, X, validation_data)
        return _save_and_test(model, history, out, args.dataset, test_data, stops, digits)


def _within_usable_cores(settings: Settings) -> Settings:
    """--n-threads capped at the cores this process may use: more threads than cores only
    wait for each other (64 threads on 2 cores ran 60-400x slower)."""
    from mnist_nn.threads import available_cores

    cores = available_cores()
    if settings.n_threads is None or settings.n_threads <= cores:
        return settings
    _warn(f"--n-threads {settings.n_threads} is more than the {cores} usable cores; using {cores}")
    return settings.replace(n_threads=cores)


def _build_model(settings: Settings, input_shape: tuple[int, ...]):
    """The network the settings describe, refused before training if a saved copy would not
    load (its forward pass would cost more than a model file may ask)."""
    from mnist_nn.builders import build_model
    from mnist_nn.model_file import MAX_MULTIPLY_ADDS_PER_SAMPLE

    try:
        model = build_model(settings, input_shape, n_classes=10)
    except ValueError as error:
        raise CommandError(_with_option_names(str(error))) from None
    work = sum(model.multiply_adds_per_sample())
    if work > MAX_MULTIPLY_ADDS_PER_SAMPLE:
        raise CommandError(
            f"this network needs {work:,} multiply-adds per image, more than the "
            f"{MAX_MULTIPLY_ADDS_PER_SAMPLE:,} a saved model may ask; use fewer --n-filters or "
            "--hidden-sizes"
        )
    return model


# predict's "not sure" check is calibrated after training (digit_check.py) on this many
# non-digits of each kind, about 25 s; on fewer training images than this it is not worth it.
NON_DIGITS_PER_KIND = 200
MIN_IMAGES_FOR_DIGIT_CHECK = 5000


def _digit_check_images(dataset: str, X: np.ndarray, validation_data):
    """Training and held-out digits to calibrate predict's "not sure" check on, or None where
    the images are not handwritten digits, too few, or nothing was held out."""
    if dataset == "fashion-mnist" or validation_data is None:
        return None
    if len(X) < MIN_IMAGES_FOR_DIGIT_CHECK:
        return None
    return X[:5000], validation_data[0]


def _save_and_test(model, history, out: Path, dataset: str, test_data, stops, digits) -> int:
    """Save the model first, then test it, then save it again with its test accuracy. Any
    interrupt after training (Ctrl-C, SIGTERM) keeps the model, saved before it is tested or
    at once if the interrupt comes first, and says so."""
    done: dict[str, str | None] = {}  # "saved": None or the reason it failed; "tested"
    try:
        _record_provenance(model, dataset, history)
        _save_then_test(model, history, out, test_data, stops, done, digits)
    except KeyboardInterrupt:
        stops.interrupted()
        if "saved" not in done:  # interrupted before the save began: save now all the same
            _record_provenance(model, dataset, history)
            with contextlib.suppress(KeyboardInterrupt), stops.deferred():
                done["saved"] = _save(model, out)
        if "saved" in done and done["saved"] is None:
            without = "" if "tested" in done else ", without its test accuracy"
            kept = f"the model of epoch {history.best_epoch} is saved in {out}{without}"
        else:
            kept = f"the model is not saved: {done.get('saved') or 'interrupted before it was'}"
        print(f"\n{stops.reason}: {kept}", file=sys.stderr)
        return stops.exit_code
    return stops.exit_code if stops.reason else 0


def _save_then_test(model, history, out: Path, test_data, stops, done: dict, digits) -> None:
    with stops.deferred():  # a save is short; an interrupt waits for it, so none is half done
        done["saved"] = _save(model, out)
    if digits is not None:  # after the first save: an interrupt here loses nothing
        from mnist_nn.digit_check import calibrate_digit_check

        print("calibrating predict's check for pictures that are not digits", file=sys.stderr)
        calibrate_digit_check(model, *digits, n_per_kind=NON_DIGITS_PER_KIND)
    _report_test_accuracy(model, history, test_data)
    done["tested"] = None
    if done["saved"] is not None:  # the disk refused: the accuracy is given, then the error
        raise CommandError(f"the model is not saved: {done['saved']}")
    with stops.deferred():
        problem = _save(model, out)
    if problem is not None:
        _warn(f"the saved model lacks its test accuracy: {problem}")
    figure_path = _save_learning_curves(history, out)
    curves = f" and the learning curves to {figure_path}" if figure_path else ""
    print(f"saved the model to {out}{curves}")


def _report_test_accuracy(model, history, test_data) -> None:
    X_test, y_test = test_data
    test = model.evaluate(X_test, y_test)
    model.provenance.update(test_accuracy=test.accuracy, test_loss=test.loss, n_test=len(X_test))
    print(
        f"test accuracy {test.accuracy:.2%} (loss {test.loss:.4f}), model of epoch "
        f"{history.best_epoch}"
    )


def _save(model, out: Path) -> str | None:
    """Save the model (whole or not at all); None, or what went wrong and what to do."""
    try:
        model.save(out)
    except OSError as error:
        reason = error.strerror or str(error)
        advice = "choose another --out"
        if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):  # disk, quota
            advice = "free some space or choose another --out"
        return f"could not write {out} ({reason}); {advice}"
    return None


def _save_learning_curves(history, out: Path) -> Path | None:
    """The learning curves next to the model; a failure is a warning, the model is saved."""
    from mnist_nn.plots import plot_history

    figure_path = out.with_suffix(".png")
    try:
        plot_history(history).savefig(figure_path, dpi=100)
    except (OSError, ValueError, MemoryError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        _warn(
            f"could not write the learning curves to {figure_path} ({reason}); the model is saved"
        )
        figure_path.unlink(missing_ok=True)  # no half-written picture
        return None
    return figure_path


def _record_provenance(model, dataset: str, history) -> None:
    """What the model was trained on, and its best epoch (also after an interrupt)."""
    from mnist_nn import __version__
    from mnist_nn.datasets import class_names

    model.provenance.update(
        dataset=dataset,
        class_names=class_names(dataset),
        input="28x28 grey images, light ink on black; uint8 pixels scaled by 1/255",
        mnist_nn_version=__version__,
    )
    if history.best_epoch is not None:
        row = history.rows[history.best_epoch - 1]
        model.provenance.update(
            best_epoch=row["epoch"], val_loss=row["val_loss"], val_accuracy=row["val_accuracy"]
        )


class _Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, docker stop, a job scheduler), raised where Ctrl-C would be."""


class _Stops:
    """Within the block, SIGTERM stops training like Ctrl-C: the model keeps its best epoch and
    is saved. Only in the main thread and where the platform has SIGTERM; a SIGTERM that was
    ignored stays ignored. `reason` says what stopped the run, if anything did."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous = None

    def __enter__(self) -> _Stops:
        if _can_handle_signals():
            previous = signal.getsignal(signal.SIGTERM)
            if previous not in (None, signal.SIG_IGN):
                self._previous = previous
                signal.signal(signal.SIGTERM, self._terminate)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def interrupted(self) -> None:
        """Note a KeyboardInterrupt: Ctrl-C, unless SIGTERM raised it."""
        self.reason = self.reason or "interrupted"

    def _terminate(self, signum, frame) -> None:
        self.reason = "terminated (SIGTERM)"
        raise _Terminated(self.reason)

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.reason == "terminated (SIGTERM)" else EXIT_INTERRUPTED

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Ctrl-C or SIGTERM in the block waits until it ends (then is raised as usual)."""
        if not _can_handle_signals():
            yield
            return
        arrived: list[int] = []
        handled = (signal.SIGINT, signal.SIGTERM)
        names = [name for name in handled if signal.getsignal(name) not in (None, signal.SIG_IGN)]
        handlers = {
            name: signal.signal(name, lambda signum, frame: arrived.append(signum))
            for name in names
        }
        try:
            yield
        finally:
            for name, handler in handlers.items():
                signal.signal(name, handler)
        if signal.SIGINT in arrived:
            raise KeyboardInterrupt
        if arrived:
            self._terminate(None, None)


def _can_handle_signals() -> bool:
    return hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread()


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
    from mnist_nn.model_file import load_model

    if path.is_dir():
        models = sorted(path.glob("*.npz"))
        example = f", such as {models[0]}" if models else ""
        raise CommandError(f"{path} is a folder; give the model's .npz file in it{example}")
    return load_model(path)


def run_evaluate(args: argparse.Namespace) -> int:
    from mnist_nn.metrics import confusion_matrix, precision_recall

    model = _load_model(args.model)
    trained_on = model.provenance.get("dataset")
    args.dataset = args.dataset or trained_on or "mnist"
    X_test, y_test = _load(args, split="test")
    _check_overlap(model, X_test, args)
    if trained_on and trained_on != args.dataset:
        print(f"note: {args.model} was trained on {trained_on}, evaluated here on {args.dataset}")
    result = model.evaluate(X_test, y_test)
    y_pred = model.predict(X_test)
    C = confusion_matrix(y_test, y_pred, n_classes=model.n_classes)
    _, per_class = precision_recall(y_test, y_pred, n_classes=model.n_classes)  # recall
    print(
        f"{args.model}: test accuracy {result.accuracy:.2%} (loss {result.loss:.4f}) on "
        f"{len(y_test):,} {args.dataset} images"
    )
    names = model.class_names(args.dataset)
    print("\naccuracy per class:")
    for label, share in enumerate(per_class):
        name = f" {names[label]}" if names[label] != str(label) else ""
        print(f"  {label}{name}: {share:.2%}")
    print("\nconfusion matrix (rows: true class, columns: predicted):")
    print(format_confusion_matrix(C))
    return 0


def _check_overlap(model, X_test: np.ndarray, args: argparse.Namespace) -> None:
    """Refuse test images the model was trained on, unless --allow-overlap says otherwise."""
    from mnist_nn.provenance import overlap_fraction

    if model.train_fingerprint is None:
        return
    share = overlap_fraction(model.train_fingerprint, X_test)
    if share <= 0.01:  # a few exact duplicates between independent sets are possible
        return
    message = (
        f"about {share:.0%} of these {len(X_test):,} {args.dataset} test images were among "
        f"{args.model}'s training images"
    )
    if not args.allow_overlap:
        raise CommandError(
            f"{message}, so its accuracy on them says little; evaluate it on the data set it was "
            f"trained on ({model.provenance.get('dataset', 'see train')}), or pass "
            "--allow-overlap"
        )
    print(f"note: {message} (--allow-overlap: the accuracy below is flattering)")


def format_confusion_matrix(C: np.ndarray) -> str:
    """A text table of counts with class numbers along both edges."""
    from mnist_nn.tables import format_table

    labels = [str(label) for label in range(len(C))]
    rows = [["", *labels], *([label, *map(str, row)] for label, row in zip(labels, C, strict=True))]
    return format_table(rows, right_aligned=range(len(C) + 1))


def run_predict(args: argparse.Namespace) -> int:
    from mnist_nn.digit_check import digit_verdict

    model = _load_model(args.model)
    if args.debug_dir is not None:  # before any image: a file in the way stops them all
        from mnist_nn.files import make_folder

        make_folder(args.debug_dir, "--debug-dir")
    failed = 0
    for path, picture in zip(
        args.images, _debug_pictures(args.images, args.debug_dir), strict=True
    ):
        try:
            digit = _prepared_digit(path, picture)
        except (FileNotFoundError, ValueError) as error:
            print(f"mnist_nn predict: error: {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: {digit_verdict(model, digit).message}")
    return EXIT_ERROR if failed else 0


def _debug_pictures(paths: Sequence[Path], debug_dir: Path | None) -> list[Path | None]:
    """Where each image's steps go: DIR/<name>-prepared.png, with -2, -3, ... added to a name
    already taken in this run (a/digit.png and b/digit.png), so no picture replaces another."""
    if debug_dir is None:
        return [None] * len(paths)
    taken: set[str] = set()
    pictures = []
    for path in paths:
        name, number = path.stem, 1
        while name.casefold() in taken:  # casefold: one file on case-insensitive disks
            number += 1
            name = f"{path.stem}-{number}"
        taken.add(name.casefold())
        pictures.append(debug_dir / f"{name}-prepared.png")
    return pictures


def _prepared_digit(path: Path, picture: Path | None) -> np.ndarray:
    """The 28x28 input made from the image file; with `picture`, also a picture of the steps
    there: the file as stored, turned upright (if its EXIF says so), each preparation step."""
    from mnist_nn.images import (
        DigitNotFoundError,
        digit_image_steps,
        read_image_as_stored,
        turn_upright,
    )

    stored, orientation = read_image_as_stored(path)
    image = turn_upright(stored, orientation)
    try:
        steps = digit_image_steps(image)
    except DigitNotFoundError as error:  # the steps up to the refusal show why
        _plot_steps(path, picture, stored, orientation, image, error.steps)
        raise ValueError(f"{path}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    _plot_steps(path, picture, stored, orientation, image, steps)
    return steps["digit"]


def _plot_steps(
    path: Path,
    picture: Path | None,
    stored: np.ndarray,
    orientation: int,
    image: np.ndarray,
    steps: dict,
) -> None:
    """With `picture`, the steps drawn there: the file as stored, upright, each step made."""
    if picture is None:
        return
    from mnist_nn.images import EXIF_ORIENTATIONS
    from mnist_nn.plots import plot_digit_steps

    if orientation != 1:
        steps = {f"upright (EXIF: {EXIF_ORIENTATIONS[orientation][1]})": image, **steps}
    plot_digit_steps(stored, steps, title=str(path)).savefig(picture, dpi=80)
    print(f"{path}: the steps are in {picture}")


def run_bench(args: argparse.Namespace) -> int:
    from mnist_nn.bench import BenchmarkFailed, run

    try:
        return run(args)
    except BenchmarkFailed as error:
        raise CommandError(str(error)) from None
