"""The training loop, as the walkthrough writes it by hand (section 9): each epoch, the batches in
a new seeded order, forward -> loss -> backward -> weight decay -> optimizer step, then validation.
fit() (train.py) runs this same loop and adds its guard rails around it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from mnist_nn.model import Model
from mnist_nn.optimizers import Optimizer

if TYPE_CHECKING:
    from mnist_nn.settings import Settings


def train_epochs(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    optimizer: Optimizer,
    settings: Settings,
    *,
    learning_rate_at: Callable[[int], float] | None = None,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    augment: Callable[[np.ndarray], np.ndarray] | None = None,
    step: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]] | None = None,
    after_step: Callable[[int, int, float], None] | None = None,
) -> Iterator[dict]:
    """Train `model` on images X (N, *model.input_shape), uint8 or floats in [0, 1], and labels
    y (N,) for settings.n_epochs epochs; yields each epoch's History row. Nothing is checked.

    From settings: n_epochs, batch_size, seed (the batch order), weight_decay. learning_rate_at
    (epoch index) sets each epoch's rate, augment(X) distorts each batch. The hooks are how fit
    adds its guard rails: step(X, y) -> (Z, loss) replaces model.train_step (threads.py splits
    the batch over the cores), after_step(epoch, batch, loss) runs after each update.
    """
    rng = np.random.default_rng(settings.seed)
    step, batch_size = step or model.train_step, settings.batch_size
    for epoch in range(1, settings.n_epochs + 1):
        if learning_rate_at is not None:  # optimizers.make_schedule
            optimizer.learning_rate = learning_rate_at(epoch - 1)
        start_time, order = time.perf_counter(), rng.permutation(len(X))  # a new order each epoch
        loss_sum, n_correct, penalty = 0.0, 0, 0.0
        for batch, start in enumerate(range(0, len(X), batch_size), start=1):
            index = order[start : start + batch_size]
            X_batch = X[index] if augment is None else augment(X[index])
            X_batch, y_batch = model.prepare_input(X_batch), y[index]  # (B, ...) floats, (B,)
            Z, loss = step(X_batch, y_batch)  # forward -> loss -> backward
            penalty = model.apply_weight_decay(settings.weight_decay)  # dW += lambda W
            optimizer.step()
            loss_sum += loss * len(index)
            n_correct += int(np.count_nonzero(Z.argmax(axis=1) == y_batch))
            if after_step is not None:
                after_step(epoch, batch, loss)
        # train_*: averaged while the weights changed; l2_penalty: (lambda / 2) sum W^2 at the end
        row = dict(epoch=epoch, train_loss=loss_sum / len(X), train_accuracy=n_correct / len(X))
        row.update(l2_penalty=penalty, val_loss=None, val_accuracy=None)
        if validation_data is not None:
            row["val_loss"], row["val_accuracy"] = model.loss_and_accuracy(*validation_data)
        row["learning_rate"] = optimizer.learning_rate
        row["seconds"] = time.perf_counter() - start_time
        yield row
