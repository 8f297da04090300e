"""The training loop: fit() runs mini-batch gradient descent on a Model and returns a History of
per-epoch losses and accuracies. Settings live in the frozen TrainConfig."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from mnist_nn.model import Model, check_images, check_labels
from mnist_nn.optimizers import Optimizer, make_optimizer, make_schedule
from mnist_nn.preprocess import minibatch_indices


class TrainingDivergedError(ArithmeticError):
    """The loss or a gradient became NaN or inf. Carries epoch, batch and learning_rate."""

    def __init__(self, epoch: int, batch: int, learning_rate: float, what: str) -> None:
        self.epoch, self.batch, self.learning_rate = epoch, batch, learning_rate
        super().__init__(
            f"training diverged in epoch {epoch}, batch {batch}: {what} with learning rate "
            f"{learning_rate:g}. Try a smaller learning rate, e.g. {learning_rate / 10:g}. "
            f"The model is back at its weights from the start of epoch {epoch}."
        )


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (see fit for their meaning); fit(model, X, y,
    **dataclasses.asdict(config)) runs it. optimizer and schedule hold names here."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float | None = None
    schedule: str = "constant"
    weight_decay: float = 0.0
    early_stopping_patience: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.weight_decay < 0.0 or not math.isfinite(self.weight_decay):
            raise ValueError(f"weight_decay must be 0 or positive, got {self.weight_decay}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError(
                f"early_stopping_patience must be at least 1 (or None to turn it off), "
                f"got {self.early_stopping_patience}"
            )


HISTORY_KEYS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
)


class History:
    """Per-epoch results of fit: one row per epoch, and columns by name.

    history["val_loss"] is a list (None where nothing was measured), history.rows the rows as
    dicts. train_loss and val_loss are both the mean cross-entropy (weight decay's penalty is
    kept apart in "l2_penalty", so the two curves compare like with like); train_* are averaged
    over the epoch's batches while the weights were changing and dropout was on.
    """

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config
        self.rows: list[dict] = []
        self.best_epoch: int | None = None
        self.stopped_early = False

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def __getitem__(self, key: str) -> list:
        if self.rows and key not in self.rows[0]:
            raise KeyError(f"{key!r}; the history has {list(self.rows[0])}")
        if not self.rows and key not in HISTORY_KEYS:
            raise KeyError(key)
        return [row[key] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def keys(self) -> list[str]:
        return list(self.rows[0]) if self.rows else list(HISTORY_KEYS)

    def as_dict(self) -> dict:
        """Plain data, e.g. for json.dump."""
        return {
            "config": None if self.config is None else asdict(self.config),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "rows": self.rows,
        }

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, best_epoch={self.best_epoch})"


def _all_finite(arrays: Sequence[np.ndarray]) -> bool:
    # One reduction per array and no boolean temporary: a NaN or inf anywhere makes the sum
    # non-finite. A sum that overflows although every value is finite also counts: gradients
    # that large mean training has diverged anyway.
    return all(math.isfinite(float(np.sum(array))) for array in arrays)


def fit(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: str | Optimizer = "adam",
    learning_rate: float | None = None,
    schedule: str | Callable[[int], float] = "constant",
    weight_decay: float = 0.0,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    early_stopping_patience: int | None = None,
    seed: int = 0,
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> History:
    """Train `model` on images X (uint8 or scaled floats) and labels y (0..C-1), in place.

    Each epoch visits the samples in a new order drawn from `seed` (only index arrays are
    shuffled; each batch is gathered and, for uint8, scaled to floats on its own). One step per
    batch: forward, loss, backward, optional L2 weight decay, optimizer step.

    optimizer: "sgd", "momentum", "nesterov", "adam", or an Optimizer built on
        model.parameters(). learning_rate=None uses the optimizer's default.
    schedule: "constant", "step", "cosine", or a callable epoch index (from 0) -> learning rate.
    weight_decay: lambda of the L2 penalty (lambda / 2) sum W^2 on the weights (not biases).
    validation_data: (X_val, y_val), evaluated after every epoch with dropout off.
    early_stopping_patience: stop after this many epochs without a lower validation loss and
        restore the weights of the best epoch (needs validation_data).
    progress: show a tqdm progress bar (notebook or terminal). on_epoch_end(row) is called after
        every epoch with the History row, e.g. to print it.

    Raises TrainingDivergedError (an ArithmeticError) as soon as the loss or a gradient is NaN or
    inf, or the last step of an epoch leaves weights whose loss is; the model then goes back to
    its weights from the start of that epoch, which gave a finite loss.
    """
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        learning_rate=learning_rate,
        schedule=schedule if isinstance(schedule, str) else "custom",
        weight_decay=weight_decay,
        early_stopping_patience=early_stopping_patience,
        seed=seed,
    )
    X = check_images(X, model.input_shape)
    y = check_labels(y, len(X), model.n_classes)
    if validation_data is not None:
        X_val, y_val = validation_data
        X_val = check_images(X_val, model.input_shape)
        y_val = check_labels(y_val, len(X_val), model.n_classes)
    elif early_stopping_patience is not None:
        raise ValueError("early stopping watches the validation loss: pass validation_data too")

    if isinstance(optimizer, Optimizer):
        if learning_rate is not None:
            optimizer.learning_rate = learning_rate
    else:
        optimizer = make_optimizer(optimizer, model.parameters(), learning_rate)
    base_learning_rate = optimizer.learning_rate
    if callable(schedule):
        learning_rate_at = schedule
    else:
        learning_rate_at = make_schedule(schedule, base_learning_rate, n_epochs=epochs)

    history = History(config)
    rng = np.random.default_rng(seed)
    best_loss, best_weights, epochs_without_improvement = math.inf, None, 0
    n_batches = math.ceil(len(X) / batch_size)
    bar = tqdm(total=epochs * n_batches, unit="batch", disable=not progress, leave=True)
    try:
        for epoch in range(1, epochs + 1):
            optimizer.learning_rate = learning_rate_at(epoch - 1)
            bar.set_description(f"epoch {epoch}/{epochs}")
            start_time = time.perf_counter()
            start_weights = model.get_weights()  # finite: the previous epoch checked them
            row = {"epoch": epoch}
            row["train_loss"], row["train_accuracy"], penalty = _train_one_epoch(
                model, X, y, optimizer, batch_size, weight_decay, rng, epoch, start_weights, bar
            )
            row["val_loss"], row["val_accuracy"] = None, None
            if validation_data is not None:
                with np.errstate(over="ignore", invalid="ignore"):
                    row["val_loss"], row["val_accuracy"] = model.evaluate(X_val, y_val)
                if not math.isfinite(row["val_loss"]):
                    what = f"the validation loss became {row['val_loss']}"
                    _stop(model, start_weights, epoch, n_batches, optimizer, what)
            row["learning_rate"] = optimizer.learning_rate
            row["seconds"] = time.perf_counter() - start_time
            row["l2_penalty"] = penalty  # (lambda / 2) sum W^2 at the epoch's last step
            history.append(row)
            shown = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
            bar.set_postfix({key: f"{row[key]:.4f}" for key in shown if row[key] is not None})
            if on_epoch_end is not None:
                on_epoch_end(row)

            if validation_data is None:
                continue
            if row["val_loss"] < best_loss:
                best_loss, history.best_epoch, epochs_without_improvement = (
                    row["val_loss"],
                    epoch,
                    0,
                )
                if early_stopping_patience is not None:
                    best_weights = model.get_weights()
            else:
                epochs_without_improvement += 1
            if early_stopping_patience is not None:
                if epochs_without_improvement >= early_stopping_patience:
                    history.stopped_early = epoch < epochs
                    break
    finally:
        bar.close()
        # The schedule changed the rate epoch by epoch. Hand an optimizer passed in back at its
        # base rate, so that another fit with it schedules from the same start.
        optimizer.learning_rate = base_learning_rate
    if best_weights is not None:
        model.set_weights(best_weights)
    return history


def _train_one_epoch(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    optimizer: Optimizer,
    batch_size: int,
    weight_decay: float,
    rng: np.random.Generator,
    epoch: int,
    start_weights: list[np.ndarray],
    bar: tqdm,
) -> tuple[float, float, float]:
    """One pass over (X, y) in a new random order; returns mean loss, accuracy, L2 penalty.

    start_weights: the weights at the epoch's start, put back if training diverges.
    """
    loss_function = model.loss_function
    grads = [grad for _, grad in model.parameters()]
    loss_sum, n_correct, penalty = 0.0, 0, 0.0
    # Overflow warnings are expected when training diverges; it is detected and reported below
    # with a clearer message than NumPy's.
    with np.errstate(over="ignore", invalid="ignore"):
        for batch, index in enumerate(minibatch_indices(len(X), batch_size, rng), start=1):
            X_batch = model.prepare_input(X[index])  # (B, *input_shape), the model's dtype
            y_batch = y[index]  # (B,)
            Z = model.forward(X_batch, training=True)  # (B, C)
            loss = loss_function.forward(Z, y_batch)
            if not math.isfinite(loss):
                what = f"the loss became {loss}"
                _stop(model, start_weights, epoch, batch, optimizer, what)
            model.backward(loss_function.backward())
            penalty = model.apply_weight_decay(weight_decay)
            if not _all_finite(grads):
                what = "a gradient became NaN or inf"
                _stop(model, start_weights, epoch, batch, optimizer, what)
            optimizer.step()
            loss_sum += loss * len(index)
            n_correct += int(np.count_nonzero(Z.argmax(axis=1) == y_batch))
            bar.update()
        # Each step is checked by the next batch's loss; the epoch's last step is checked here,
        # on its own batch, so an epoch never hands on weights that give NaN.
        loss = loss_function.forward(model.forward(X_batch), y_batch)
        if not math.isfinite(loss):
            what = f"the loss became {loss} after the epoch's last step"
            _stop(model, start_weights, epoch, batch, optimizer, what)
    return loss_sum / len(X), n_correct / len(X), penalty


def _stop(model, epoch_start_weights, epoch, batch, optimizer, what) -> None:
    """Put back the weights from the start of the epoch, then raise.

    The last step's weights may be finite and still give NaN (weights of 1e30 overflow the
    logits); the epoch's start weights are known to give a finite loss, as the previous epoch
    checked them.
    """
    model.set_weights(epoch_start_weights)
    raise TrainingDivergedError(epoch, batch, optimizer.learning_rate, what)
