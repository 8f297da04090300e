"""fit() and build_and_fit(): learning, reproducibility from Settings, History, the best epoch,
early stopping, schedules, Ctrl-C, divergence and bad input."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from mnist_nn.builders import build_mlp, build_model
from mnist_nn.losses import SoftmaxCrossEntropy
from mnist_nn.model import Evaluation
from mnist_nn.optimizers import SGD
from mnist_nn.preprocess import normalize
from mnist_nn.settings import Settings
from mnist_nn.synthetic import load_synthetic
from mnist_nn.train import (
    HISTORY_KEYS,
    History,
    LearningRateWarning,
    NothingLearnedWarning,
    TrainingDivergedError,
    TrainingInterrupted,
    build_and_fit,
    fit,
)

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
LABELS = rng.integers(0, 10, 64).astype(np.uint8)
# Random labels: the network memorises the training set and the validation loss soon rises.
X_VAL = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
Y_VAL = rng.integers(0, 10, 64)


def weights(model):
    return [param.copy() for param, _ in model.parameters()]


def same(first, second) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_small_network_drives_64_samples_to_100_percent():
    model = build_mlp((64,), seed=0)
    history = fit(
        model, IMAGES, LABELS, n_epochs=40, batch_size=16, learning_rate=3e-3, progress=False
    )
    assert model.evaluate(IMAGES, LABELS).accuracy == 1.0
    assert history["train_loss"][-1] < history["train_loss"][0] / 10


def test_learns_offline_digit_images():
    (X, y), (X_test, y_test) = load_synthetic(n_train=2000, n_test=500, seed=0)
    model = build_mlp((32, 16), seed=0)
    fit(model, X, y, n_epochs=10, progress=False)
    assert model.evaluate(X_test, y_test).accuracy > 0.9


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_same_seed_gives_bit_identical_weights(optimizer):
    runs = []
    for _ in range(2):
        model = build_mlp((16,), dropout=0.2, seed=1)
        history = fit(
            model,
            IMAGES,
            LABELS,
            n_epochs=3,
            batch_size=10,
            optimizer=optimizer,
            seed=7,
            progress=False,
        )
        runs.append((weights(model), history["train_loss"]))
    (first, first_losses), (second, second_losses) = runs
    assert same(first, second)
    assert first_losses == second_losses
    model = build_mlp((16,), dropout=0.2, seed=1)
    fit(
        model,
        IMAGES,
        LABELS,
        n_epochs=3,
        batch_size=10,
        optimizer=optimizer,
        seed=8,
        progress=False,
    )
    assert not np.array_equal(weights(model)[0], first[0])  # the seed matters


def test_history_settings_reproduce_the_run_exactly():
    model = build_mlp((16,), dropout=0.2, seed=1)
    history = fit(
        model,
        IMAGES,
        LABELS,
        n_epochs=3,
        batch_size=10,
        optimizer="momentum",
        learning_rate=0.02,
        schedule="cosine",
        weight_decay=1e-3,
        seed=7,
        progress=False,
    )
    settings = history.settings
    assert (settings.n_epochs, settings.optimizer, settings.seed) == (3, "momentum", 7)
    # Written to JSON and read back (as in a saved model or a run log), they still reproduce it.
    settings = Settings.from_dict(json.loads(json.dumps(history.as_dict()["settings"])))
    assert settings == history.settings
    again = build_mlp((16,), dropout=0.2, seed=1)
    again_history = fit(again, IMAGES, LABELS, settings, progress=False)
    assert same(weights(again), weights(model))
    assert again_history["train_loss"] == history["train_loss"]


def test_build_and_fit_builds_the_network_of_the_settings_and_trains_it():
    settings = Settings(hidden_sizes=(16,), n_epochs=2, batch_size=16, seed=3)
    model, history = build_and_fit(IMAGES, LABELS, settings, learning_rate=3e-3, progress=False)
    assert model.settings == history.settings == settings.replace(learning_rate=3e-3)
    assert [layer.params["W"].shape for layer in model.layers if layer.params] == [
        (784, 16),
        (16, 10),
    ]
    by_hand = build_model(history.settings, (28, 28), 10)
    fit(by_hand, IMAGES, LABELS, history.settings, progress=False)
    assert same(weights(by_hand), weights(model))  # the same recipe, step by step
    three, _ = build_and_fit(IMAGES, LABELS % 3, settings, n_classes=3, progress=False)
    assert three.n_classes == 3


def test_fit_starts_from_the_models_settings_and_records_the_run_in_them():
    settings = Settings(hidden_sizes=(16,), n_epochs=2, batch_size=16, seed=3)
    model = build_model(settings, (28, 28), 10)
    history = fit(model, IMAGES, LABELS, progress=False)
    assert len(history) == 2 and history.settings == settings
    history = fit(model, IMAGES, LABELS, Settings(n_epochs=1), progress=False)
    # The network part comes from the model, whatever settings are passed.
    assert history.settings == Settings(n_epochs=1).replace(hidden_sizes=(16,))
    assert model.settings == history.settings
    with pytest.raises(ValueError, match=r"\['hidden_sizes'\] describe the network"):
        fit(model, IMAGES, LABELS, hidden_sizes=(32,), progress=False)


def test_uint8_and_prescaled_float_training_agree_exactly():
    trained = []
    for images in (IMAGES, normalize(IMAGES), normalize(IMAGES).reshape(64, 784)):
        model = build_mlp((16,), seed=2)
        fit(model, images, LABELS, n_epochs=2, batch_size=16, progress=False)
        trained.append(weights(model))
    for other in trained[1:]:
        assert same(trained[0], other)


def test_history_rows_columns_and_callback():
    rows = []
    model = build_mlp((16,))
    history = fit(
        model,
        IMAGES,
        LABELS,
        n_epochs=3,
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
    # The model ends at its best epoch, whose validation loss it gives again.
    best_val_loss = history["val_loss"][history.best_epoch - 1]
    assert model.evaluate(IMAGES[:20], LABELS[:20])[0] == pytest.approx(best_val_loss, rel=1e-6)
    as_dict = history.as_dict()
    assert as_dict["settings"]["optimizer"] == "sgd" and as_dict["best_epoch"] == history.best_epoch
    assert json.loads(json.dumps(as_dict)) == as_dict  # plain data
    no_validation = fit(build_mlp((16,)), IMAGES, LABELS, n_epochs=1, progress=False)
    # Without validation data the best epoch is simply the last one, the weights it ends with.
    assert no_validation["val_loss"] == [None] and no_validation.best_epoch == 1
    assert not no_validation.stopped_early
    with pytest.raises(KeyError, match="train_loss"):
        no_validation["loss"]


def test_history_starts_empty_with_its_settings():
    settings = Settings(n_epochs=2)
    history = History(settings)
    assert history.settings is settings and len(history) == 0 and history.best_epoch is None
    assert history["l2_penalty"] == [] and "l2_penalty" in HISTORY_KEYS


def test_named_schedules_set_the_learning_rate_of_every_epoch():
    model = build_mlp((16,))
    history = fit(
        model,
        IMAGES,
        LABELS,
        n_epochs=4,
        optimizer="sgd",
        learning_rate=0.1,
        schedule="cosine",
        progress=False,
    )
    cosine = [
        0.1,
        0.1 * (1 + math.cos(math.pi / 4)) / 2,
        0.05,
        0.1 * (1 - math.cos(math.pi / 4)) / 2,
    ]
    assert history["learning_rate"] == pytest.approx(cosine)
    # Training on schedules from the settings' rate again, not from where the last run ended.
    history = fit(model, IMAGES, LABELS, history.settings, progress=False)
    assert history["learning_rate"] == pytest.approx(cosine)
    history = fit(
        model, IMAGES, LABELS, n_epochs=12, optimizer="sgd", learning_rate=0.1, schedule="step",
        progress=False,
    )  # fmt: skip
    assert history["learning_rate"] == pytest.approx([0.1] * 10 + [0.05] * 2)  # halved at 10


def test_optimizer_objects_and_callable_schedules_are_refused():
    # fit builds its optimizer and schedule from their names, so that Settings describe a run.
    model = build_mlp((16,))
    before = weights(model)
    with pytest.raises(ValueError, match="unknown optimizer.*'sgd'"):
        fit(model, IMAGES, LABELS, optimizer=SGD(model.parameters()), progress=False)
    with pytest.raises(ValueError, match="unknown schedule.*'cosine'"):
        fit(model, IMAGES, LABELS, schedule=lambda epoch: 0.1, progress=False)
    assert same(before, weights(model))


def test_early_stopping_restores_the_best_weights():
    model = build_mlp((64,), seed=0)
    history = fit(
        model,
        IMAGES,
        LABELS,
        n_epochs=50,
        batch_size=8,
        learning_rate=5e-3,
        validation_data=(X_VAL, Y_VAL),
        patience=2,
        progress=False,
    )
    assert history.stopped_early and len(history) == history.best_epoch + 2
    best_val_loss = history["val_loss"][history.best_epoch - 1]
    assert best_val_loss == min(history["val_loss"])
    assert model.evaluate(X_VAL, Y_VAL).loss == pytest.approx(best_val_loss, rel=1e-6)


def test_with_validation_data_the_model_ends_at_its_best_epoch_without_patience():
    model = build_mlp((16,), seed=0)
    history = fit(
        model,
        IMAGES,
        LABELS,
        n_epochs=6,
        batch_size=16,
        learning_rate=3e-2,
        validation_data=(X_VAL, Y_VAL),
        progress=False,
    )
    assert len(history) == 6 and not history.stopped_early
    assert history.best_epoch < 6  # the setup: the validation loss rises towards the end
    best_val_loss = history["val_loss"][history.best_epoch - 1]
    assert best_val_loss == min(history["val_loss"])
    assert model.evaluate(X_VAL, Y_VAL).loss == pytest.approx(best_val_loss, rel=1e-6)


def test_ctrl_c_after_an_epoch_keeps_the_best_epoch_and_the_history():
    model = build_mlp((16,), seed=0)
    weights_after = {}

    def on_epoch_end(row):
        weights_after[row["epoch"]] = weights(model)
        if row["epoch"] == 3:
            raise KeyboardInterrupt  # the user presses Ctrl-C

    with pytest.raises(TrainingInterrupted) as caught:
        fit(
            model,
            IMAGES,
            LABELS,
            n_epochs=6,
            batch_size=16,
            learning_rate=3e-2,
            validation_data=(X_VAL, Y_VAL),
            progress=False,
            on_epoch_end=on_epoch_end,
        )
    assert isinstance(caught.value, KeyboardInterrupt)  # a plain Ctrl-C handler still works
    history = caught.value.history
    assert history["epoch"] == [1, 2, 3]
    assert history.best_epoch == 1 + int(np.argmin(history["val_loss"]))
    assert history.best_epoch != 3  # the setup: epoch 3 is not the best one
    assert same(weights(model), weights_after[history.best_epoch])
    assert f"keeps epoch {history.best_epoch}" in str(caught.value)
    assert model.provenance["best_epoch"] == history.best_epoch  # a model saved now says so


def test_more_threads_than_cores_are_capped_with_a_warning(monkeypatch):
    from mnist_nn import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    with pytest.warns(UserWarning, match="n_threads=64 is more than the 2 usable cores"):
        history = fit(
            build_mlp((8,), seed=0), IMAGES, LABELS, n_epochs=1, n_threads=64, progress=False
        )
    assert history["threads"] == [2]


class InterruptibleLoss(SoftmaxCrossEntropy):
    """The cross-entropy, until `calls_left` training batches have gone through."""

    calls_left: int | None = None

    def forward(self, Z, y):
        if self.calls_left is not None:
            if self.calls_left == 0:
                raise KeyboardInterrupt
            self.calls_left -= 1
        return super().forward(Z, y)


@pytest.mark.parametrize("interrupted_epoch", [1, 3])
def test_ctrl_c_inside_an_epoch_goes_back_to_the_last_finished_one(interrupted_epoch):
    model = build_mlp((16,), seed=0)
    model.loss_function = loss = InterruptibleLoss()
    initial = weights(model)
    weights_after = {}

    def on_epoch_end(row):
        weights_after[row["epoch"]] = weights(model)
        if row["epoch"] == interrupted_epoch - 1:
            loss.calls_left = 2  # Ctrl-C in the third batch of the next epoch

    if interrupted_epoch == 1:
        loss.calls_left = 2
    with pytest.raises(TrainingInterrupted) as caught:
        fit(
            model,
            IMAGES,
            LABELS,
            n_epochs=5,
            batch_size=16,
            progress=False,
            on_epoch_end=on_epoch_end,
        )
    history = caught.value.history
    assert len(history) == interrupted_epoch - 1
    if interrupted_epoch == 1:
        assert history.best_epoch is None and "no epoch had finished" in str(caught.value)
        assert same(weights(model), initial)  # not the half-trained weights of batch 2
    else:
        assert history.best_epoch == 2  # without validation data: the last finished epoch
        assert same(weights(model), weights_after[2])


# The stable loss stays finite (if huge) up to about 1e19 here; 1e38 even overflows the weights.
@pytest.mark.parametrize("learning_rate", [1e20, 1e38])
def test_divergence_stops_at_once_with_finite_weights(learning_rate):
    model = build_mlp((16,), seed=0)
    with pytest.raises(TrainingDivergedError) as caught:
        fit(
            model,
            IMAGES,
            LABELS,
            n_epochs=5,
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
    model = build_mlp((16,), seed=0)
    initial_weights = model.get_weights()
    with pytest.raises(TrainingDivergedError, match="after the epoch's last step"):
        fit(
            model,
            IMAGES,
            LABELS,
            n_epochs=1,
            batch_size=len(IMAGES),
            optimizer="sgd",
            learning_rate=1e30,
            progress=False,
        )
    for weights_now, initial in zip(model.get_weights(), initial_weights, strict=True):
        np.testing.assert_array_equal(weights_now, initial)  # back to the start of epoch 1
    assert np.isfinite(model.predict_proba(IMAGES)).all()


def test_a_validation_loss_of_nan_stops_training_too(monkeypatch):
    # Weights that are fine on every training batch but overflow on some validation image are
    # hard to make on purpose; a stand-in loss_and_accuracy (evaluate without the checks, as
    # the loop calls it) gives the validation loss fit would see.
    model = build_mlp((16,), seed=0)
    monkeypatch.setattr(model, "loss_and_accuracy", lambda X, y: Evaluation(float("nan"), 0.0))
    initial_weights = model.get_weights()
    with pytest.raises(TrainingDivergedError, match="epoch 1, .*validation loss became nan"):
        fit(model, IMAGES, LABELS, n_epochs=3, validation_data=(IMAGES, LABELS), progress=False)
    for weights_now, initial in zip(model.get_weights(), initial_weights, strict=True):
        np.testing.assert_array_equal(weights_now, initial)


BAD_FITS = [
    (dict(y=LABELS[:60]), "64 images but 60 labels"),
    (dict(y=np.full(64, 12)), r"0\.\.9"),
    (dict(X=IMAGES.astype(np.int16)), "dtype int16"),
    (dict(X=np.where(IMAGES > 200, np.nan, normalize(IMAGES))), "NaN or inf"),
    (dict(X=IMAGES[:0], y=LABELS[:0]), "empty"),
    (dict(X=IMAGES[:, :20]), "shape"),
    (dict(n_epochs=0), "n_epochs must be at least 1"),
    (dict(epochs=3), r"unknown setting\(s\) \['epochs'\].*'n_epochs'"),
    (dict(batch_size=0), "batch_size"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(patience=3), "pass validation_data"),
    (dict(patience=0, validation_data=(IMAGES, LABELS)), "patience must be at least 1"),
    (dict(optimizer="adagrad"), r"unknown optimizer 'adagrad'.*'sgd'.*'adam'"),
    (dict(schedule="linear"), r"unknown schedule 'linear'.*'cosine'"),
    (dict(learning_rate=-0.1), "positive"),
    (dict(validation_data=(IMAGES, LABELS[:5])), "64 images but 5 validation labels"),
    (dict(validation_data=(IMAGES, np.full(64, 10))), r"validation labels must lie in 0\.\.9"),
]


@pytest.mark.parametrize("change, message", BAD_FITS)
def test_bad_input_is_rejected_before_training(change, message):
    model = build_mlp((16,))
    before = weights(model)
    arguments = dict(X=IMAGES, y=LABELS, n_epochs=1, progress=False) | change
    with pytest.raises(ValueError, match=message):
        fit(model, **arguments)
    assert same(before, weights(model))


def test_progress_bar_can_be_turned_off(capsys):
    fit(build_mlp((8,)), IMAGES, LABELS, n_epochs=1, progress=False)
    assert capsys.readouterr().err == ""
    fit(build_mlp((8,)), IMAGES, LABELS, n_epochs=1, progress=True)
    assert "epoch 1/1" in capsys.readouterr().err


def test_uint8_images_are_converted_one_batch_at_a_time(monkeypatch):
    from mnist_nn.model import Model

    converted_rows = []
    original = Model.prepare_input

    def spy(self, X_chunk):
        if X_chunk.dtype == np.uint8:
            converted_rows.append(len(X_chunk))
        return original(self, X_chunk)

    monkeypatch.setattr(Model, "prepare_input", spy)
    model = build_mlp((8,))
    fit(model, IMAGES, LABELS, n_epochs=2, batch_size=16, progress=False)
    assert converted_rows and max(converted_rows) <= 16  # never the whole training set
    converted_rows.clear()
    model.predict(IMAGES, batch_size=20)
    assert sum(converted_rows) == 64 and max(converted_rows) <= 20


def test_a_loss_that_explodes_while_finite_stops_training_as_divergence():
    rng = np.random.default_rng(1)
    X, y = rng.random((512, 784), dtype=np.float32), rng.integers(0, 10, 512)
    model = build_mlp((32,), seed=0)
    with pytest.raises(TrainingDivergedError, match="exploded"):
        fit(model, X, y, optimizer="adam", learning_rate=1e6, n_epochs=3, batch_size=32,
            progress=False)  # fmt: skip


def test_an_outlier_in_standardised_inputs_is_named_not_blamed_on_the_learning_rate():
    X = np.random.default_rng(2).standard_normal((64, 784)).astype(np.float32)
    X[5, 100] = 1e30
    with pytest.raises(ValueError, match="outlier"):
        fit(build_mlp((8,)), X, LABELS, n_epochs=1, progress=False)


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(n_epochs=2.5), "n_epochs must be a whole number"),
        (dict(batch_size=16.0), "batch_size must be a whole number"),
        (dict(validation_data=IMAGES[:10]), "validation_data must be a pair"),
    ],
)
def test_float_counts_and_a_lone_validation_array_get_clear_errors(changes, words):
    with pytest.raises(ValueError, match=words):
        fit(build_mlp((8,)), IMAGES, LABELS, progress=False, **changes)


@pytest.mark.parametrize(
    "optimizer, learning_rate, words",
    [("sgd", 1e-7, "may be too low; try 1e-06"), ("sgd", 10.0, "may be too high; try 1")],
)
def test_a_loss_that_did_not_fall_in_the_first_epoch_warns_about_the_learning_rate(
    optimizer, learning_rate, words
):
    (X, y), _ = load_synthetic(n_train=640, n_test=10)  # 20 batches of 32
    with pytest.warns(LearningRateWarning, match="did not fall in the first epoch") as caught:
        fit(build_mlp((16,)), X, y, optimizer=optimizer, learning_rate=learning_rate,
            batch_size=32, n_epochs=2, progress=False)  # fmt: skip
    assert len(caught) == 1 and words in str(caught[0].message)
    assert caught[0].filename == __file__  # points at the call of fit


def test_no_learning_rate_warning_when_the_loss_falls_or_there_are_few_batches():
    (X, y), _ = load_synthetic(n_train=640, n_test=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearningRateWarning)
        fit(build_mlp((16,)), X, y, learning_rate=1e-3, batch_size=32, n_epochs=1, progress=False)
        # 19 batches are too few to judge, even at a learning rate that learns nothing.
        fit(build_mlp((16,)), X[:608], y[:608], optimizer="sgd", learning_rate=1e-7,
            batch_size=32, n_epochs=1, progress=False)  # fmt: skip


def test_a_network_that_learned_nothing_gets_a_warning_even_when_the_first_epoch_seemed_fine():
    # Momentum at a learning rate of 1: the loss on the first 32 images happened to fall in the
    # first epoch (no first-epoch warning), but every epoch ends near ln 10, at chance.
    (X, y), _ = load_synthetic(n_train=640, n_test=10)  # 20 batches of 32
    with pytest.warns(LearningRateWarning) as caught:
        history = fit(build_mlp((16,), seed=1), X, y, optimizer="momentum", learning_rate=1.0,
                      batch_size=32, n_epochs=3, seed=1, progress=False)  # fmt: skip
    assert history["train_accuracy"][-1] < 0.15
    assert [warning.category for warning in caught] == [NothingLearnedWarning]
    message = str(caught[0].message)
    assert "learned nothing" in message and "\n" not in message
    assert "learning rate 1 may be too high for momentum (usually 0.01): try 0.1" in message
    assert caught[0].filename == __file__  # points at the call of fit


def test_no_learned_nothing_warning_for_a_network_that_learns():
    (X, y), _ = load_synthetic(n_train=640, n_test=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearningRateWarning)
        fit(build_mlp((16,), seed=1), X, y, optimizer="momentum", learning_rate=0.05,
            batch_size=32, n_epochs=3, seed=1, progress=False)  # fmt: skip
