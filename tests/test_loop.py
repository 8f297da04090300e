"""The plain training loop: it learns, and fit (the loop with its guard rails) gives the same
weights and History rows bit for bit, over optimizers, schedules, dropout, weight decay, early
stopping and a CNN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mnist_nn.builders import build_mlp, build_model
from mnist_nn.loop import train_epochs
from mnist_nn.optimizers import SGD, make_optimizer, make_schedule
from mnist_nn.settings import Settings
from mnist_nn.synthetic import load_synthetic
from mnist_nn.train import HISTORY_KEYS, fit

(X_TRAIN, Y_TRAIN), (X_VAL, Y_VAL) = load_synthetic(n_train=384, n_test=96)
# Every column but the two that fit measures (the plain loop leaves them out).
COMPARED = tuple(key for key in HISTORY_KEYS if key not in ("seconds", "threads"))


def test_the_plain_loop_learns_the_synthetic_digits():
    model = build_mlp((32,), seed=0)
    optimizer = SGD(model.parameters(), learning_rate=0.5)
    X = shaped(model, X_TRAIN)  # (N, 784), as nn.flatten in the walkthrough
    rows = list(train_epochs(model, X, Y_TRAIN, optimizer, Settings(n_epochs=8, batch_size=32)))
    assert [row["epoch"] for row in rows] == list(range(1, 9))
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
    assert model.evaluate(X_VAL, Y_VAL).accuracy > 0.8


def plain_run(model, settings: Settings, validation_data) -> list[dict]:
    """fit's arithmetic by hand: the plain loop, and the best epoch kept (early stopping)."""
    optimizer = make_optimizer(settings.optimizer, model.parameters(), settings.learning_rate)
    schedule = make_schedule(settings.schedule, optimizer.learning_rate, n_epochs=settings.n_epochs)
    epochs = train_epochs(
        model, shaped(model, X_TRAIN), Y_TRAIN, optimizer, settings,
        learning_rate_at=schedule, validation_data=validation_data,
    )  # fmt: skip
    with threadpool_limits(1, user_api="blas"):  # as fit(n_threads=1), validation included
        return run_keeping_the_best(model, epochs, settings.patience)


def run_keeping_the_best(model, epochs, patience: int | None) -> list[dict]:
    """The epochs' rows; the model ends at its best epoch, as with fit."""
    rows, best_loss, best_weights, waited = [], math.inf, None, 0
    for row in epochs:
        rows.append(row)
        loss = -row["epoch"] if row["val_loss"] is None else row["val_loss"]
        if loss < best_loss:
            best_loss, best_weights, waited = loss, model.get_weights(), 0
        else:
            waited += 1
        if patience is not None and waited >= patience:
            break
    model.set_weights(best_weights)
    return rows


def shaped(model, X: np.ndarray) -> np.ndarray:
    return X.reshape((len(X), *model.input_shape))  # as fit's input check leaves them


CASES = {
    "sgd, no validation data": dict(optimizer="sgd", learning_rate=0.3),
    "momentum, step schedule": dict(optimizer="momentum", learning_rate=0.05, schedule="step"),
    "nesterov, cosine schedule": dict(optimizer="nesterov", learning_rate=0.05, schedule="cosine"),
    "adam": dict(optimizer="adam", learning_rate=3e-3),
    "dropout": dict(dropout=0.3),
    "weight decay": dict(weight_decay=1e-3),
    "early stopping": dict(optimizer="sgd", learning_rate=2.0, patience=1),
    "cnn": dict(model="cnn", n_filters=(4,), learning_rate=3e-3),
}


@pytest.mark.parametrize("case", CASES)
def test_fit_gives_the_plain_loops_weights_and_rows_bit_for_bit(case):
    base = Settings(hidden_sizes=(24,), n_epochs=4, batch_size=32, seed=3, n_threads=1)
    settings = base.replace(**CASES[case])
    wrapped, plain = (build_model(settings, (28, 28), 10) for _ in range(2))
    validation = None if "no validation" in case else (shaped(plain, X_VAL), Y_VAL)
    history = fit(wrapped, X_TRAIN, Y_TRAIN, settings, validation_data=validation, progress=False)
    rows = plain_run(plain, settings, validation)
    assert [[row[key] for key in COMPARED] for row in history.rows] == [
        [row[key] for key in COMPARED] for row in rows
    ]
    for got, want in zip(wrapped.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    if case == "early stopping":
        assert history.stopped_early and len(rows) < settings.n_epochs
