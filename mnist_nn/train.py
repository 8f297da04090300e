"""fit(): the training loop of loop.py run as Settings say, with the guard rails around it, and a
History of per-epoch losses and accuracies; build_and_fit() builds the network first.

The guard rails: the settings and inputs checked, divergence stopped and rolled back, the
learning-rate warnings, the best epoch kept and early stopping, Ctrl-C, the progress bar, the
training images' fingerprint, and the cores used as threads.py chooses. None changes the loop's
arithmetic: fit(n_threads=1) gives the weights and History rows of train_epochs bit for bit.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from mnist_nn.augment import make_augmenter
from mnist_nn.builders import build_model
from mnist_nn.loop import train_epochs
from mnist_nn.model import Model
from mnist_nn.optimizers import DEFAULT_LEARNING_RATES, Optimizer, make_optimizer, make_schedule
from mnist_nn.provenance import fingerprint
from mnist_nn.settings import NETWORK_FIELDS, Settings
from mnist_nn.threads import steps_for
from mnist_nn.validation import check_images, check_labels

HISTORY_KEYS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
    "l2_penalty",
    "threads",
)


# A loss this many times its starting value (or ln C, if larger) means training has blown up,
# even while every number is still finite (Adam at a learning rate of 1e6 reaches 1e21).
EXPLODED = 100.0
# After the first epoch, the loss on the first batch_size training images should have fallen by
# at least this share; checked only with this many batches, fewer prove nothing.
FIRST_EPOCH_DROP = 0.01
FIRST_EPOCH_MIN_BATCHES = 20
# A run whose training loss ends within this share of the class frequencies' entropy (what
# predicting those frequencies scores) learned nothing; judged with FIRST_EPOCH_MIN_BATCHES.
NOTHING_LEARNED = 0.01


class LearningRateWarning(UserWarning):
    """The loss did not fall in the first epoch: the learning rate may be too high or too low."""


class NothingLearnedWarning(LearningRateWarning):
    """Training ended no better than predicting the class frequencies (e.g. momentum at a
    learning rate of 1: a loss of ln 10 every epoch, 10% accuracy)."""


class TrainingDivergedError(ArithmeticError):
    """The loss or a gradient became NaN or inf. Carries epoch, batch and learning_rate."""

    def __init__(self, epoch: int, batch: int, learning_rate: float, what: str) -> None:
        self.epoch, self.batch, self.learning_rate = epoch, batch, learning_rate
        super().__init__(
            f"training diverged in epoch {epoch}, batch {batch}: {what} with learning rate "
            f"{learning_rate:g}. Try a smaller learning rate, e.g. {learning_rate / 10:g}. "
            f"The model is back at its weights from the start of epoch {epoch}."
        )


class History:
    """Per-epoch results of fit: one row per epoch, and columns by name.

    history["val_loss"] is a list (None where nothing was measured), history.rows the rows as
    dicts, history.settings the Settings of the run. train_loss and val_loss are both the mean
    cross-entropy (weight decay's penalty is kept apart in "l2_penalty", so the two curves compare
    like with like); train_* are averaged over the epoch's batches while the weights were
    changing and dropout was on. best_epoch is the epoch whose weights the model has at the end.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rows: list[dict] = []
        self.best_epoch: int | None = None
        self.stopped_early = False

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def __getitem__(self, key: str) -> list:
        if key not in HISTORY_KEYS:
            raise KeyError(f"{key!r}; the history has {list(HISTORY_KEYS)}")
        return [row[key] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def keys(self) -> list[str]:
        return list(HISTORY_KEYS)

    def as_dict(self) -> dict:
        """Plain data, e.g. for json.dump."""
        return {
            "settings": self.settings.to_dict(),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "rows": self.rows,
        }

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, best_epoch={self.best_epoch})"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or the notebook's stop button) during fit. The model is back at its best epoch so
    far, and ``history`` holds the epochs that finished (none if the first did not)."""

    def __init__(self, history: History) -> None:
        self.history = history
        kept = f"the model keeps epoch {history.best_epoch}, the best so far"
        if history.best_epoch is None:
            kept = "no epoch had finished"
        super().__init__(f"training interrupted after {len(history)} epochs; {kept}")


def fit(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    settings: Settings | None = None,
    *,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
    on_batch_end: Callable[[dict], None] | None = None,
    **changes,
) -> History:
    """Train `model` on images X (uint8 or scaled floats) and labels y (0..C-1), in place.

    settings: a Settings (default: the model's own, from build_mlp, build_cnn or build_model);
        keyword arguments change it, e.g. fit(model, X, y, n_epochs=5, learning_rate=1e-3);
        the network settings come from the model. Recorded in history.settings, model.settings.
    validation_data: (X_val, y_val), evaluated after every epoch with dropout off. Then the model
        ends at its best epoch (lowest validation loss), and patience can stop training early.
    progress: a tqdm bar. on_epoch_end(row) and on_batch_end({epoch, batch, n_batches, loss}),
        e.g. live curves, are called after each epoch and step; KeyboardInterrupt in one stops.

    The loop is loop.train_epochs. Raises TrainingDivergedError as soon as the loss or a
    gradient is NaN or inf (the model is back at its weights from that epoch's start), and
    TrainingInterrupted on Ctrl-C (the model keeps its best epoch so far).
    """
    settings = _run_settings(model, settings, changes)
    X, y, validation_data = _checked_data(model, X, y, validation_data, settings)
    _remember_training_images(model, X)
    callbacks = _Callbacks(progress, on_epoch_end, on_batch_end)
    history, warned = _train(model, X, y, settings, validation_data, callbacks)
    _remember_best_epoch(model, history)
    if not warned:  # one learning-rate warning per run is enough
        _warn_if_nothing_learned(history, y, settings)
    return history


def _remember_training_images(model: Model, X: np.ndarray) -> None:
    """Add X to the model's fingerprint of its training images (see provenance.py)."""
    known = model.train_fingerprint
    new = fingerprint(X)
    model.train_fingerprint = new if known is None else np.union1d(known, new)
    model.provenance["n_train"] = model.provenance.get("n_train", 0) + len(X)


def _remember_best_epoch(model: Model, history: History) -> None:
    if history.best_epoch is not None:
        row = history.rows[history.best_epoch - 1]
        model.provenance.update(
            best_epoch=row["epoch"], val_loss=row["val_loss"], val_accuracy=row["val_accuracy"]
        )


def build_and_fit(
    X: np.ndarray,
    y: np.ndarray,
    settings: Settings | None = None,
    *,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
    on_batch_end: Callable[[dict], None] | None = None,
    n_classes: int = 10,
    **changes,
) -> tuple[Model, History]:
    """Build the network `settings` describe, for X's image size and n_classes outputs, and fit
    it; returns (model, history). The one recipe of the command line, tuning and the benchmark."""
    settings = (settings or Settings()).replace(**changes)
    model = build_model(settings, np.shape(X)[1:], n_classes)
    history = fit(
        model,
        X,
        y,
        settings,
        validation_data=validation_data,
        progress=progress,
        on_epoch_end=on_epoch_end,
        on_batch_end=on_batch_end,
    )
    return model, history


def _run_settings(model: Model, settings: Settings | None, changes: dict) -> Settings:
    """The settings fit runs with: `settings` (or the model's) with `changes`, the network part
    taken from the model; recorded in model.settings."""
    network_changes = sorted(set(changes) & set(NETWORK_FIELDS))
    if network_changes:
        raise ValueError(
            f"{network_changes} describe the network, which fit does not change; build a new one "
            "with build_model(settings, ...) or build_and_fit"
        )
    settings = (settings or model.settings or Settings()).replace(**changes)
    if model.settings is not None:
        network = {name: getattr(model.settings, name) for name in NETWORK_FIELDS}
        settings = settings.replace(**network)
    model.settings = settings
    return settings


def _checked_data(model, X, y, validation_data, settings) -> tuple:
    X = check_images(X, model.input_shape)
    y = check_labels(y, len(X), model.n_classes)
    if validation_data is None:
        if settings.patience is not None:
            raise ValueError("early stopping watches the validation loss: pass validation_data")
        return X, y, None
    if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
        raise ValueError(
            "validation_data must be a pair (X_val, y_val) of images and labels, got "
            f"{type(validation_data).__name__} {getattr(validation_data, 'shape', '')}".rstrip()
        )
    X_val, y_val = validation_data
    X_val = check_images(X_val, model.input_shape)
    return X, y, (X_val, check_labels(y_val, len(X_val), model.n_classes, "validation labels"))


def _train(model, X, y, settings, validation_data, callbacks) -> tuple[History, bool]:
    """The plain loop (loop.train_epochs) with the guard rails around it; returns the History
    and whether the first epoch's learning-rate warning was given."""
    optimizer = make_optimizer(settings.optimizer, model.parameters(), settings.learning_rate)
    history, n_batches = History(settings), math.ceil(len(X) / settings.batch_size)
    divergence, best = _Divergence(model, optimizer), _BestEpoch(model, history, settings.patience)
    probe = lambda: _loss_on(model, X[: settings.batch_size], y[: settings.batch_size])  # noqa: E731
    schedule = make_schedule(settings.schedule, optimizer.learning_rate, n_epochs=settings.n_epochs)
    augment = (
        make_augmenter(settings.augment, settings.seed) if settings.augment != "none" else None
    )
    bar, warned = callbacks.bar(settings.n_epochs * n_batches), False
    try:
        with steps_for(model, settings.n_threads, settings.batch_size) as (chooser, step):
            epochs = train_epochs(
                model, X, y, optimizer, settings, validation_data=validation_data,
                learning_rate_at=schedule, augment=augment, step=step,
                after_step=callbacks.after_step(divergence, bar, n_batches, settings.n_epochs),
            )  # fmt: skip
            for row, probed in _checked_epochs(epochs, divergence, chooser, n_batches, probe):
                history.append(row)
                best.remember(row)
                warned = warned or _warn_if_loss_did_not_fall(probed, optimizer, len(X), settings)
                callbacks.epoch_end(bar, row)
                if best.should_stop(settings.n_epochs):
                    break
    except KeyboardInterrupt:
        best.restore(divergence.start_weights)
        _remember_best_epoch(model, history)  # the model saved after Ctrl-C says which epoch
        raise TrainingInterrupted(history) from None
    finally:
        bar.close()
    best.restore(divergence.start_weights)
    return history, warned


def _checked_epochs(epochs, divergence, chooser, n_batches, probe) -> Iterator[tuple]:
    """The loop's epochs, each run with BLAS limited as the thread choice says, the start weights
    kept for a rollback, and the epoch's last step and validation loss checked. Yields each row
    with, after the first epoch (of FIRST_EPOCH_MIN_BATCHES batches or more), probe(), the loss
    on the first training images, before and after it (the learning-rate probe)."""
    for epoch in itertools.count(1):
        divergence.start_epoch()
        # Overflow warnings are expected when training diverges; it is detected and reported
        # with a clearer message than NumPy's.
        with chooser.outside_steps(), np.errstate(over="ignore", invalid="ignore"):
            before = probe() if epoch == 1 and n_batches >= FIRST_EPOCH_MIN_BATCHES else None
            row = next(epochs, None)
            if row is None:
                return
            # Each step is checked by the next batch's loss, the epoch's last one here, so an
            # epoch never hands on weights that give NaN.
            after = probe()
            divergence.check(epoch, n_batches, after, " after the epoch's last step")
            if row["val_loss"] is not None:
                divergence.check(epoch, n_batches, row["val_loss"], name="the validation loss")
        row["threads"] = chooser.current
        chooser.epoch_done(row["seconds"] / n_batches)
        yield row, None if before is None else (before, after)


def _loss_on(model: Model, X: np.ndarray, y: np.ndarray) -> float:
    """The mean loss on images X (validated), labels y, dropout off, weights unchanged."""
    return model.loss_function.forward(model.forward(model.prepare_input(X)), y)


class _Callbacks:
    """The progress bar and the caller's on_epoch_end and on_batch_end."""

    def __init__(self, progress: bool, on_epoch_end, on_batch_end) -> None:
        self.progress, self.on_epoch_end, self.on_batch_end = progress, on_epoch_end, on_batch_end

    def bar(self, total: int) -> tqdm:
        return tqdm(total=total, unit="batch", disable=not self.progress)

    def after_step(self, divergence: _Divergence, bar: tqdm, n_batches: int, n_epochs: int):
        """The loop's after_step hook: check the step, move the bar, call on_batch_end."""

        def after_step(epoch: int, batch: int, loss: float) -> None:
            divergence.check_step(epoch, batch, loss)
            if batch == 1:
                bar.set_description(f"epoch {epoch}/{n_epochs}")
            bar.update()
            if self.on_batch_end is not None:
                self.on_batch_end(
                    {"epoch": epoch, "batch": batch, "n_batches": n_batches, "loss": loss}
                )

        return after_step

    def epoch_end(self, bar: tqdm, row: dict) -> None:
        shown = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
        bar.set_postfix({key: f"{row[key]:.4f}" for key in shown if row[key] is not None})
        if self.on_epoch_end is not None:
            self.on_epoch_end(row)


class _Divergence:
    """Stops training when the loss or a gradient is NaN or inf, or the loss exploded far above
    where it started; the model goes back to its weights from the start of the epoch."""

    def __init__(self, model: Model, optimizer: Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.first_loss: float | None = None
        self.start_weights: list[np.ndarray] | None = None

    def start_epoch(self) -> None:
        self.start_weights = self.model.get_weights()  # finite: the previous epoch checked them

    def check_step(self, epoch: int, batch: int, loss: float) -> None:
        """After an update: its loss, and the gradients it used."""
        self.check(epoch, batch, loss)
        if not _all_finite(grad for _, grad in self.model.parameters()):
            self.diverged(epoch, batch, "a gradient became NaN or inf")

    def check(
        self, epoch: int, batch: int, loss: float, when: str = "", name: str = "the loss"
    ) -> None:
        if not math.isfinite(loss):
            self.diverged(epoch, batch, f"{name} became {loss}{when}")
        if self.first_loss is None:
            self.first_loss = loss
        elif loss > EXPLODED * max(self.first_loss, math.log(self.model.n_classes)):
            what = f"{name} exploded to {loss:.3g}{when} (it started at {self.first_loss:.3g})"
            self.diverged(epoch, batch, what)

    def diverged(self, epoch: int, batch: int, what: str) -> None:
        """Put back the weights from the start of the epoch, then raise.

        The last step's weights may be finite and still give NaN (weights of 1e30 overflow the
        logits); the epoch's start weights are known to give a finite loss.
        """
        self.model.set_weights(self.start_weights)
        raise TrainingDivergedError(epoch, batch, self.optimizer.learning_rate, what)


class _BestEpoch:
    """The best epoch so far (the lowest validation loss, or simply the latest epoch without
    validation data) and its weights; early stopping after `patience` epochs without one."""

    def __init__(self, model: Model, history: History, patience: int | None) -> None:
        self.model, self.history, self.patience = model, history, patience
        self.loss, self.weights, self.epochs_without_improvement = math.inf, None, 0

    def remember(self, row: dict) -> None:
        loss = -row["epoch"] if row["val_loss"] is None else row["val_loss"]
        if loss < self.loss:
            self.loss, self.history.best_epoch = loss, row["epoch"]
            self.weights = self.model.get_weights()
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1

    def should_stop(self, n_epochs: int) -> bool:
        stop = self.patience is not None and self.epochs_without_improvement >= self.patience
        self.history.stopped_early = stop and len(self.history) < n_epochs
        return stop

    def restore(self, fallback: list[np.ndarray] | None) -> None:
        """End at the best epoch's weights (`fallback`, the start weights, if none finished)."""
        weights = self.weights or fallback
        if weights is not None:
            self.model.set_weights(weights)


def _warn_if_loss_did_not_fall(
    probed: tuple[float, float] | None, optimizer: Optimizer, n_images: int, settings: Settings
) -> bool:
    """Warn if the probe's loss fell by less than FIRST_EPOCH_DROP; returns whether it warned."""
    if probed is None or probed[1] < (1 - FIRST_EPOCH_DROP) * probed[0]:
        return False
    (before, after), rate = probed, optimizer.learning_rate
    likely, instead = ("too high", rate / 10) if after >= before else ("too low", rate * 10)
    warnings.warn(
        f"the training loss did not fall in the first epoch ({before:.4g} -> {after:.4g} on "
        f"the first {min(n_images, settings.batch_size)} training images): the "
        f"learning rate {rate:g} may be {likely}; try {instead:g}",
        LearningRateWarning,
        stacklevel=4,  # the caller of fit
    )
    return True


def _warn_if_nothing_learned(history: History, y: np.ndarray, settings: Settings) -> None:
    """Warn if the model ends no better than predicting the class frequencies of y: a training
    loss within NOTHING_LEARNED of their entropy, -sum p_c ln p_c (ln 10 for balanced digits)."""
    n_batches = math.ceil(len(y) / settings.batch_size)
    if history.best_epoch is None or n_batches < FIRST_EPOCH_MIN_BATCHES:
        return  # too few batches to judge, as for the first epoch's warning
    shares = np.bincount(y) / len(y)
    entropy = float(-np.sum(shares[shares > 0] * np.log(shares[shares > 0])))
    row = history.rows[history.best_epoch - 1]
    if row["train_loss"] < (1 - NOTHING_LEARNED) * entropy:
        return
    rate, usual = row["learning_rate"], DEFAULT_LEARNING_RATES[settings.optimizer]
    likely, instead = ("too high", rate / 10) if rate > usual else ("too low", rate * 10)
    warnings.warn(
        f"the network learned nothing: its training loss {row['train_loss']:.4g} (accuracy "
        f"{row['train_accuracy']:.1%}) is no better than predicting the class frequencies "
        f"({entropy:.4g}); the learning rate {rate:g} may be {likely} for {settings.optimizer} "
        f"(usually {usual:g}): try {instead:g}, or find one with find_learning_rate",
        NothingLearnedWarning,
        stacklevel=3,  # the caller of fit
    )


def _all_finite(arrays) -> bool:
    # One reduction per array and no boolean temporary: a NaN or inf anywhere makes the sum
    # non-finite. A sum that overflows although every value is finite also counts: gradients
    # that large mean training has diverged anyway.
    return all(math.isfinite(float(np.sum(array))) for array in arrays)
