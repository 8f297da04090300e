"""The training loop: fit() runs mini-batch gradient descent on a Model as its Settings say and
returns a History of per-epoch losses and accuracies; build_and_fit() builds the network first."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from mnist_nn.augment import make_augmenter
from mnist_nn.builders import build_model
from mnist_nn.model import Model
from mnist_nn.optimizers import Optimizer, make_optimizer, make_schedule
from mnist_nn.parallel import SplitStep
from mnist_nn.preprocess import minibatch_indices
from mnist_nn.provenance import fingerprint
from mnist_nn.settings import NETWORK_FIELDS, Settings
from mnist_nn.threads import SPLIT, ThreadChooser
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


class LearningRateWarning(UserWarning):
    """The loss did not fall in the first epoch: the learning rate may be too high or too low."""


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

    Each epoch visits the samples in a new order drawn from settings.seed. One step per batch:
    forward, loss, backward, L2 weight decay, optimizer step. Raises TrainingDivergedError as
    soon as the loss or a gradient is NaN or inf (the model is back at its weights from that
    epoch's start), and TrainingInterrupted on Ctrl-C (the model keeps its best epoch so far).
    """
    settings = _run_settings(model, settings, changes)
    data = _checked_data(model, X, y, validation_data, settings)
    run = _Run(model, settings, *data, on_batch_end)
    _remember_training_images(model, run.X)
    bar = tqdm(total=settings.n_epochs * run.n_batches, unit="batch", disable=not progress)
    try:
        for epoch in range(1, settings.n_epochs + 1):
            bar.set_description(f"epoch {epoch}/{settings.n_epochs}")
            row = run.epoch(epoch, bar)
            bar.set_postfix(_postfix(row))
            if on_epoch_end is not None:
                on_epoch_end(row)
            if run.should_stop():
                break
    except KeyboardInterrupt:
        run.keep_best()
        raise TrainingInterrupted(run.history) from None
    finally:
        bar.close()
        run.close()
    run.keep_best()
    _remember_best_epoch(model, run.history)
    return run.history


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


def _postfix(row: dict) -> dict:
    shown = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
    return {key: f"{row[key]:.4f}" for key in shown if row[key] is not None}


@dataclass
class _Run:
    """One call of fit: the model, its optimizer and data, and the best epoch so far."""

    model: Model
    settings: Settings
    X: np.ndarray
    y: np.ndarray
    validation_data: tuple[np.ndarray, np.ndarray] | None
    on_batch_end: Callable[[dict], None] | None = None
    optimizer: Optimizer = field(init=False)
    history: History = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.optimizer = make_optimizer(
            settings.optimizer, self.model.parameters(), settings.learning_rate
        )
        self.learning_rate_at = make_schedule(
            settings.schedule, self.optimizer.learning_rate, n_epochs=settings.n_epochs
        )
        self.history = History(settings)
        self.rng = np.random.default_rng(settings.seed)
        self.augment = make_augmenter(settings.augment, settings.seed)  # X -> X for "none"
        self.n_batches = math.ceil(len(self.X) / settings.batch_size)
        self.best_loss, self.best_weights = math.inf, None
        self.epochs_without_improvement = 0
        self.first_loss: float | None = None
        work_per_step = 3 * sum(self.model.multiply_adds_per_sample()) * settings.batch_size
        self.threads = ThreadChooser(settings.n_threads, work_per_step, can_split=True)
        self.split_step: SplitStep | None = None  # made at the first split step

    def epoch(self, epoch: int, bar: tqdm) -> dict:
        """Train one epoch, validate, and record the row in the history."""
        start_time = time.perf_counter()
        self.optimizer.learning_rate = self.learning_rate_at(epoch - 1)
        self.start_weights = self.model.get_weights()  # finite: the previous epoch checked them
        probe = epoch == 1 and self.n_batches >= FIRST_EPOCH_MIN_BATCHES
        loss_before = self._probe_loss() if probe else None
        row = {"epoch": epoch, **self._train(epoch, bar), "val_loss": None, "val_accuracy": None}
        if loss_before is not None:
            self._warn_if_loss_did_not_fall(loss_before, self._probe_loss())
        if self.validation_data is not None:
            row["val_loss"], row["val_accuracy"] = self._validate(epoch)
        row["learning_rate"] = self.optimizer.learning_rate
        row["seconds"] = time.perf_counter() - start_time
        row["threads"] = self.threads.current
        self.threads.epoch_done(row["seconds"] / self.n_batches)
        self.history.append(row)
        self._remember_if_best(row)
        return row

    def _train(self, epoch: int, bar: tqdm) -> dict:
        """One pass over the data in a new random order: mean loss, accuracy, L2 penalty."""
        loss_sum, n_correct, penalty = 0.0, 0, 0.0
        batches = minibatch_indices(len(self.X), self.settings.batch_size, self.rng)
        # Overflow warnings are expected when training diverges; it is detected and reported
        # with a clearer message than NumPy's.
        with np.errstate(over="ignore", invalid="ignore"):
            for batch, index in enumerate(batches, start=1):
                with self.threads.step() as choice:
                    loss, correct, penalty = self._step(epoch, batch, index, choice == SPLIT)
                loss_sum, n_correct = loss_sum + loss * len(index), n_correct + correct
                bar.update()
                if self.on_batch_end is not None:
                    step = {"epoch": epoch, "batch": batch, "n_batches": self.n_batches}
                    self.on_batch_end({**step, "loss": loss})
            with self.threads.step(measure=False):
                self._check_last_step(epoch, batch, index)
        return {
            "train_loss": loss_sum / len(self.X),
            "train_accuracy": n_correct / len(self.X),
            "l2_penalty": penalty,  # (lambda / 2) sum W^2 at the epoch's last step
        }

    def _step(
        self, epoch: int, batch: int, index: np.ndarray, split: bool
    ) -> tuple[float, int, float]:
        """Forward, loss, backward (split over the cores, or not), weight decay and one optimizer
        step on one batch."""
        model = self.model
        X_batch = model.prepare_input(self.augment(self.X[index]))  # (B, *input_shape)
        y_batch = self.y[index]  # (B,)
        if split:
            if self.split_step is None:
                self.split_step = SplitStep(model, self.threads.most)
            Z, loss = self.split_step.forward_backward(X_batch, y_batch)  # Z (B, C)
        else:
            Z = model.forward(X_batch, training=True)  # (B, C)
            loss = model.loss_function.forward(Z, y_batch)
            model.backward(model.loss_function.backward())
        self._check_loss(epoch, batch, loss)
        penalty = model.apply_weight_decay(self.settings.weight_decay)
        if not _all_finite(grad for _, grad in model.parameters()):
            self._diverged(epoch, batch, "a gradient became NaN or inf")
        self.optimizer.step()
        return loss, int(np.count_nonzero(Z.argmax(axis=1) == y_batch)), penalty

    def _check_last_step(self, epoch: int, batch: int, index: np.ndarray) -> None:
        # Each step is checked by the next batch's loss; the epoch's last step is checked here,
        # on its own batch, so an epoch never hands on weights that give NaN.
        self._check_loss(epoch, batch, self._loss_on(index), " after the epoch's last step")

    def _loss_on(self, index: np.ndarray | slice) -> float:
        """The mean loss on the training images at `index`, dropout off, weights unchanged."""
        Z = self.model.forward(self.model.prepare_input(self.X[index]))
        return self.model.loss_function.forward(Z, self.y[index])

    def _check_loss(
        self, epoch: int, batch: int, loss: float, when: str = "", name: str = "the loss"
    ) -> None:
        """Stop on a NaN or inf loss, and on one that exploded far above where it started."""
        if not math.isfinite(loss):
            self._diverged(epoch, batch, f"{name} became {loss}{when}")
        if self.first_loss is None:
            self.first_loss = loss
        elif loss > EXPLODED * max(self.first_loss, math.log(self.model.n_classes)):
            what = f"{name} exploded to {loss:.3g}{when} (it started at {self.first_loss:.3g})"
            self._diverged(epoch, batch, what)

    def _probe_loss(self) -> float:
        """The loss on the first batch_size training images, dropout off: the same images
        before and after the first epoch, so the two losses compare like with like."""
        with np.errstate(over="ignore", invalid="ignore"), self.threads.step(measure=False):
            return self._loss_on(slice(self.settings.batch_size))

    def _warn_if_loss_did_not_fall(self, before: float, after: float) -> None:
        if after < (1 - FIRST_EPOCH_DROP) * before:
            return
        rate = self.optimizer.learning_rate
        likely, instead = ("too high", rate / 10) if after >= before else ("too low", rate * 10)
        warnings.warn(
            f"the training loss did not fall in the first epoch ({before:.4g} -> {after:.4g} on "
            f"the first {min(len(self.X), self.settings.batch_size)} training images): the "
            f"learning rate {rate:g} may be {likely}; try {instead:g}",
            LearningRateWarning,
            stacklevel=4,  # the caller of fit
        )

    def _validate(self, epoch: int) -> tuple[float, float]:
        with np.errstate(over="ignore", invalid="ignore"), self.threads.step(measure=False):
            loss, accuracy = self.model.evaluate(*self.validation_data)
        self._check_loss(epoch, self.n_batches, loss, name="the validation loss")
        return loss, accuracy

    def _diverged(self, epoch: int, batch: int, what: str) -> None:
        """Put back the weights from the start of the epoch, then raise.

        The last step's weights may be finite and still give NaN (weights of 1e30 overflow the
        logits); the epoch's start weights are known to give a finite loss.
        """
        self.model.set_weights(self.start_weights)
        raise TrainingDivergedError(epoch, batch, self.optimizer.learning_rate, what)

    def _remember_if_best(self, row: dict) -> None:
        """Copy the weights of the best epoch so far: the lowest validation loss, or simply the
        latest epoch when there is no validation data."""
        loss = -row["epoch"] if row["val_loss"] is None else row["val_loss"]
        if loss < self.best_loss:
            self.best_loss, self.history.best_epoch = loss, row["epoch"]
            self.best_weights = self.model.get_weights()
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1

    def should_stop(self) -> bool:
        """Early stopping: `patience` epochs in a row without a lower validation loss."""
        patience = self.settings.patience
        stop = patience is not None and self.epochs_without_improvement >= patience
        self.history.stopped_early = stop and len(self.history) < self.settings.n_epochs
        return stop

    def close(self) -> None:
        """End the split step's threads, if it was made."""
        if self.split_step is not None:
            self.split_step.close()

    def keep_best(self) -> None:
        """End at the best epoch's weights (the start weights if no epoch finished)."""
        weights = self.best_weights or getattr(self, "start_weights", None)
        if weights is not None:
            self.model.set_weights(weights)


def _all_finite(arrays) -> bool:
    # One reduction per array and no boolean temporary: a NaN or inf anywhere makes the sum
    # non-finite. A sum that overflows although every value is finite also counts: gradients
    # that large mean training has diverged anyway.
    return all(math.isfinite(float(np.sum(array))) for array in arrays)
