"""Settings: defaults, plain normalised values, replace, the exact dict/JSON round trip, and a
ValueError naming the setting for every value out of range."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mnist_nn.settings import FIELD_NAMES, Settings, env_flag

NON_DEFAULT = [
    Settings(hidden_sizes=(32, 16), activation="tanh", dropout=0.25, n_epochs=3, seed=7),
    Settings(hidden_sizes=(), optimizer="sgd", learning_rate=0.05, schedule="step"),
    Settings(optimizer="nesterov", batch_size=10, weight_decay=1e-4, patience=2),
    Settings(model="cnn", n_filters=(4, 8, 8), schedule="cosine", learning_rate=3e-3, seed=123),
]


def test_defaults_are_the_documented_network_and_training():
    settings = Settings()
    assert settings.model == "mlp" and settings.hidden_sizes == (128, 64)
    assert (settings.activation, settings.dropout) == ("relu", 0.0)
    assert (settings.optimizer, settings.schedule) == ("adam", "constant")
    assert settings.learning_rate is None  # the optimizer's own default
    assert (settings.batch_size, settings.n_epochs, settings.patience) == (128, 10, None)
    assert settings.weight_decay == 0.0 and settings.seed == 0
    assert FIELD_NAMES == tuple(field.name for field in dataclasses.fields(Settings))
    assert "n_epochs" in FIELD_NAMES and "epochs" not in FIELD_NAMES


def test_settings_are_frozen_and_replace_makes_a_changed_copy():
    settings = Settings(n_epochs=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.n_epochs = 5
    changed = settings.replace(n_epochs=5, learning_rate=0.1)
    assert (changed.n_epochs, changed.learning_rate) == (5, 0.1)
    assert (settings.n_epochs, settings.learning_rate) == (3, None)
    assert changed.replace(n_epochs=3, learning_rate=None) == settings
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['epochs'\].*'n_epochs'"):
        settings.replace(epochs=5)


def test_values_are_normalised_so_equal_settings_compare_and_hash_equal():
    plain = Settings(hidden_sizes=(64,), batch_size=32, learning_rate=0.5, activation="leaky_relu")
    spelled_differently = Settings(
        hidden_sizes=np.array([64]),
        batch_size=np.int64(32),
        learning_rate=np.float32(0.5),
        activation="Leaky-ReLU",
    )
    assert spelled_differently == plain and hash(spelled_differently) == hash(plain)
    assert Settings(hidden_sizes=64).hidden_sizes == (64,)
    assert Settings(hidden_sizes=[128, 64]).hidden_sizes == (128, 64)
    assert type(spelled_differently.batch_size) is int
    assert type(spelled_differently.learning_rate) is float
    assert type(spelled_differently.hidden_sizes[0]) is int
    assert type(Settings(dropout=0).dropout) is float


@pytest.mark.parametrize("settings", NON_DEFAULT, ids=range(len(NON_DEFAULT)))
def test_to_dict_and_from_dict_round_trip_exactly_through_json(settings):
    values = settings.to_dict()
    assert list(values) == list(FIELD_NAMES)
    assert json.loads(json.dumps(values)) == values  # plain data: tuples became lists
    assert Settings.from_dict(json.loads(json.dumps(values))) == settings
    assert settings != Settings()


def test_from_dict_takes_defaults_for_missing_names_and_refuses_unknown_ones():
    assert Settings.from_dict({"n_epochs": 4}) == Settings(n_epochs=4)
    assert Settings.from_dict({}) == Settings()
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['early_stopping_patience'\]"):
        Settings.from_dict({"early_stopping_patience": 3})


BAD_SETTINGS = [
    (dict(model="rnn"), "unknown model 'rnn'"),
    (dict(hidden_sizes=(0,)), "hidden_sizes must be at least 1"),
    (dict(hidden_sizes="64"), "hidden_sizes must be a list of whole numbers"),
    (dict(hidden_sizes=(1.5,)), "hidden_sizes must be a whole number"),
    (dict(activation="softmax"), "unknown activation 'softmax'.*relu"),
    (dict(activation="gelu"), "unknown activation 'gelu'"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(dropout=-0.1), "dropout"),
    (dict(dropout=float("nan")), "dropout"),
    (dict(dropout=None), "dropout"),
    (dict(n_filters=(4, 0)), "n_filters must be at least 1"),
    (dict(optimizer="adagrad"), "unknown optimizer 'adagrad'.*'sgd'"),
    (dict(learning_rate=0.0), "learning_rate must be a positive number"),
    (dict(learning_rate=-0.1), "learning_rate"),
    (dict(learning_rate=float("inf")), "learning_rate"),
    (dict(learning_rate="fast"), "learning_rate"),
    (dict(schedule="linear"), "unknown schedule 'linear'.*'cosine'"),
    (dict(batch_size=0), "batch_size must be at least 1"),
    (dict(batch_size=32.0), "batch_size must be a whole number"),
    (dict(batch_size=True), "batch_size must be a whole number"),
    (dict(n_epochs=0), "n_epochs must be at least 1"),
    (dict(weight_decay=-1e-4), "weight_decay must be 0 or positive"),
    (dict(weight_decay=float("nan")), "weight_decay"),
    (dict(patience=0), "patience must be at least 1"),
    (dict(seed=-1), "seed must be 0 or positive"),
    (dict(seed=1.5), "seed must be a whole number"),
    (dict(model="cnn", dropout=0.2), "dropout and activation are for the mlp"),
    (dict(model="cnn", activation="tanh"), "dropout and activation are for the mlp"),
]


@pytest.mark.parametrize("values, message", BAD_SETTINGS)
def test_bad_values_raise_a_value_error_naming_the_setting(values, message):
    with pytest.raises(ValueError, match=message):
        Settings(**values)
    with pytest.raises(ValueError, match=message):
        Settings().replace(**values)  # replace checks the copy as well


@pytest.mark.parametrize("value", ["1", "true", "True", "YES", "on", " On "])
def test_env_flag_accepts_the_usual_words_for_true(monkeypatch, value):
    monkeypatch.setenv("MNIST_NN_QUICK", value)
    assert env_flag("MNIST_NN_QUICK") is True


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off", "2", "quick"])
def test_env_flag_is_false_otherwise(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("MNIST_NN_QUICK", raising=False)
    else:
        monkeypatch.setenv("MNIST_NN_QUICK", value)
    assert env_flag("MNIST_NN_QUICK") is False
