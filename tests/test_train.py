"""fit(): learning, reproducibility, History, early stopping, schedules, divergence, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnist_nn.model import Evaluation, build_mlp
from mnist_nn.optimizers import SGD
from mnist_nn.preprocess import normalize
from mnist_nn.train import HISTORY_KEYS, History, TrainingDivergedError, fit

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
LABELS = rng.integers(0, 10, 64).astype(np.uint8)


def weights(model):
    return [param.copy() for param, _ in model.parameters()]


def test_small_network_drives_64_samples_to_100_percent():
    model = build_mlp([784, 64, 10], seed=0)
    history = fit(
        model, IMAGES, LABELS, epochs=40, batch_size=16, learning_rate=3e-3, progress=False
    )
    assert model.evaluate(IMAGES, LABELS).accuracy == 1.0
    assert history["train_loss"][-1] < history["train_loss"][0] / 10


def test_learns_offline_digit_images():
    synthetic = pytest.importorskip("mnist_nn.synthetic")
    (X, y), (X_test, y_test) = synthetic.load_synthetic(n_train=2000, n_test=500, seed=0)
    model = build_mlp([784, 32, 16, 10], seed=0)
    fit(model, X, y, epochs=10, progress=False)
    assert model.evaluate(X_test, y_test).accuracy > 0.9


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_same_seed_gives_bit_identical_weights(optimizer):
    runs = []
    for _ in range(2):
        model = build_mlp([784, 16, 10], dropout=0.2, seed=1)
        history = fit(
            model,
            IMAGES,
            LABELS,
            epochs=3,
            batch_size=10,
            optimizer=optimizer,
            seed=7,
            progress=False,
        )
        runs.append((weights(model), history["train_loss"]))
    (first, first_losses), (second, second_losses) = runs
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert first_losses == second_losses
    model = build_mlp([784, 16, 10], dropout=0.2, seed=1)
    fit(model, IMAGES, LABELS, epochs=3, batch_size=10, optimizer=optimizer, seed=8, progress=False)
    assert not np.array_equal(weights(model)[0], first[0])  # the seed matters


def test_uint8_and_prescaled_float_training_agree_exactly():
    trained = []
    for images in (IMAGES, normalize(IMAGES), normalize(IMAGES).reshape(64, 784)):
        model = build_mlp([784, 16, 10], seed=2)
        fit(model, images, LABELS, epochs=2, batch_size=16, progress=False)
        trained.append(weights(model))
    for other in trained[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(trained[0], other, strict=True))


def test_history_rows_columns_and_callback():
    rows = []
    model = build_mlp([784, 16, 10])
    history = fit(
        model,
        IMAGES,
        LABELS,
        epochs=3,
        batch_size=32,
        schedule="step",
        learning_rate=0.01,
        optimizer="sgd",
        weight_decay=1e-3,
        validation_data=(IMAGES[:20], LABELS[:20]),
        progress=False,
        on_epoch_end=rows.append,
    )
    assert isinstance(history, History) and len(history) == 3 and history.rows == rows
    assert set(HISTORY_KEYS) <= set(history.keys())
    assert history["epoch"] == [1, 2, 3]
    assert history["learning_rate"] == [0.01, 0.01, 0.01]  # step_size 10 epochs
    assert all(0 <= a <= 1 for a in history["train_accuracy"] + history["val_accuracy"])
    assert all(s > 0 for s in history["seconds"]) and history["l2_penalty"][-1] > 0
    assert history.best_epoch == 1 + int(np.argmin(history["val_loss"]))
    assert history["val_loss"][-1] == pytest.approx(model.evaluate(IMAGES[:20], LABELS[:20])[0])
    assert history.as_dict()["config"]["optimizer"] == "sgd"
    no_validation = fit(build_mlp([784, 16, 10]), IMAGES, LABELS, epochs=1, progress=False)
    assert no_validation["val_loss"] == [None] and no_validation.best_epoch is None
    with pytest.raises(KeyError, match="train_loss"):
        no_validation["loss"]


def test_schedules_and_optimizer_objects_set_the_learning_rate():
    model = build_mlp([784, 16, 10])
    history = fit(
        model,
        IMAGES,
        LABELS,
        epochs=4,
        optimizer="sgd",
        learning_rate=0.1,
        schedule="cosine",
        progress=False,
    )
    assert history["learning_rate"] == pytest.approx(
        [0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2, 0.05, 0.1 * (1 - math.cos(math.pi / 4)) / 2]
    )
    optimizer = SGD(model.parameters(), learning_rate=0.02, momentum=0.5)
    history = fit(
        model,
        IMAGES,
        LABELS,
        epochs=2,
        optimizer=optimizer,
        schedule=lambda epoch: 0.02 / (epoch + 1),
        progress=False,
    )
    assert history["learning_rate"] == pytest.approx([0.02, 0.01])
    assert optimizer.step_count == 2 * 1  # 64 samples, batch 128: one step per epoch
    # Training on with the same optimizer schedules from its base rate again, not the last one.
    assert optimizer.learning_rate == 0.02
    for _ in range(2):
        history = fit(model, IMAGES, LABELS, epochs=2, optimizer=optimizer, progress=False)
        assert history["learning_rate"] == pytest.approx([0.02, 0.02])


def test_early_stopping_restores_the_best_weights():
    # Random labels: the network memorises the training set and the validation loss soon rises.
    X_val = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    y_val = rng.integers(0, 10, 64)
    model = build_mlp([784, 64, 10], seed=0)
    history = fit(
        model,
        IMAGES,
        LABELS,
        epochs=50,
        batch_size=8,
        learning_rate=5e-3,
        validation_data=(X_val, y_val),
        early_stopping_patience=2,
        progress=False,
    )
    assert history.stopped_early and len(history) == history.best_epoch + 2
    best_val_loss = history["val_loss"][history.best_epoch - 1]
    assert best_val_loss == min(history["val_loss"])
    assert model.evaluate(X_val, y_val).loss == pytest.approx(best_val_loss, rel=1e-6)


# The stable loss stays finite (if huge) up to about 1e19 here; 1e38 even overflows the weights.
@pytest.mark.parametrize("learning_rate", [1e20, 1e38])
def test_divergence_stops_at_once_with_finite_weights(learning_rate):
    model = build_mlp([784, 16, 10], seed=0)
    with pytest.raises(TrainingDivergedError) as caught:
        fit(
            model,
            IMAGES,
            LABELS,
            epochs=5,
            batch_size=8,
            optimizer="sgd",
            learning_rate=learning_rate,
            progress=False,
        )
    message = str(caught.value)
    assert f"learning rate {learning_rate:g}" in message and "smaller learning rate" in message
    assert "epoch 1, batch" in message and "the loss became nan" in message
    assert caught.value.epoch == 1 and caught.value.batch >= 1
    assert isinstance(caught.value, ArithmeticError)
    assert all(np.isfinite(param).all() for param, _ in model.parameters())


def test_divergence_in_the_last_step_of_training_is_caught_too():
    # One batch per epoch and one epoch: no later batch would see the NaN this step causes.
    model = build_mlp([784, 16, 10], seed=0)
    initial_weights = model.get_weights()
    with pytest.raises(TrainingDivergedError, match="after the epoch's last step"):
        fit(
            model,
            IMAGES,
            LABELS,
            epochs=1,
            batch_size=len(IMAGES),
            optimizer="sgd",
            learning_rate=1e30,
            progress=False,
        )
    for weights, initial in zip(model.get_weights(), initial_weights, strict=True):
        np.testing.assert_array_equal(weights, initial)  # back to the start of epoch 1
    assert np.isfinite(model.predict_proba(IMAGES)).all()


def test_a_validation_loss_of_nan_stops_training_too(monkeypatch):
    # Weights that are fine on every training batch but overflow on some validation image are
    # hard to make on purpose; a stand-in evaluate gives the validation loss fit would see.
    model = build_mlp([784, 16, 10], seed=0)
    monkeypatch.setattr(model, "evaluate", lambda X, y: Evaluation(float("nan"), 0.0))
    initial_weights = model.get_weights()
    with pytest.raises(TrainingDivergedError, match="epoch 1, .*validation loss became nan"):
        fit(model, IMAGES, LABELS, epochs=3, validation_data=(IMAGES, LABELS), progress=False)
    for weights, initial in zip(model.get_weights(), initial_weights, strict=True):
        np.testing.assert_array_equal(weights, initial)


BAD_FITS = [
    (dict(y=LABELS[:60]), "64 images but 60 labels"),
    (dict(y=np.full(64, 12)), r"0\.\.9"),
    (dict(X=IMAGES.astype(np.int16)), "dtype int16"),
    (dict(X=np.where(IMAGES > 200, np.nan, normalize(IMAGES))), "NaN or inf"),
    (dict(X=IMAGES[:0], y=LABELS[:0]), "empty"),
    (dict(X=IMAGES[:, :20]), "shape"),
    (dict(epochs=0), "epochs must be at least 1"),
    (dict(batch_size=0), "batch_size"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(early_stopping_patience=3), "pass validation_data"),
    (dict(optimizer="adagrad"), r"unknown optimizer 'adagrad'.*'sgd'.*'adam'"),
    (dict(schedule="linear"), r"unknown schedule 'linear'.*'cosine'"),
    (dict(learning_rate=-0.1), "positive"),
    (dict(validation_data=(IMAGES, LABELS[:5])), "64 images but 5 labels"),
]


@pytest.mark.parametrize("change, message", BAD_FITS)
def test_bad_input_is_rejected_before_training(change, message):
    model = build_mlp([784, 16, 10])
    before = weights(model)
    arguments = dict(X=IMAGES, y=LABELS, epochs=1, progress=False) | change
    with pytest.raises(ValueError, match=message):
        fit(model, **arguments)
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(model), strict=True))


def test_progress_bar_can_be_turned_off(capsys):
    fit(build_mlp([784, 8, 10]), IMAGES, LABELS, epochs=1, progress=False)
    assert capsys.readouterr().err == ""
    fit(build_mlp([784, 8, 10]), IMAGES, LABELS, epochs=1, progress=True)
    assert "epoch 1/1" in capsys.readouterr().err


def test_uint8_images_are_converted_one_batch_at_a_time(monkeypatch):
    import mnist_nn.model as model_module

    converted_rows = []
    original = model_module.normalize

    def spy(X, dtype=np.float32):
        converted_rows.append(len(X))
        return original(X, dtype)

    monkeypatch.setattr(model_module, "normalize", spy)
    model = build_mlp([784, 8, 10])
    fit(
        model,
        IMAGES,
        LABELS,
        epochs=2,
        batch_size=16,
        progress=False,
        validation_data=(IMAGES, LABELS),
    )
    model.predict(IMAGES, batch_size=20)
    assert max(converted_rows) <= 64 and converted_rows.count(16) == 8
    assert converted_rows[-4:] == [20, 20, 20, 4]
