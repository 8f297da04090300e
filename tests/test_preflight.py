"""Pre-flight checks: overfit_batch passes a correct setup and names what is wrong otherwise;
find_learning_rate's curve falls then rises, and its suggestion trains."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.model import build_mlp
from mnist_nn.preflight import find_learning_rate, overfit_batch
from mnist_nn.synthetic import load_synthetic, make_synthetic_digits

(X, y), _ = load_synthetic(n_train=256, n_test=10, seed=0)


def test_a_correct_network_memorises_one_batch_and_keeps_its_weights():
    model = build_mlp((32,), seed=0)
    before = model.get_weights()
    report = overfit_batch(model, X, y)
    assert report.passed and report.accuracy == 1.0
    assert report.losses[-1] < 0.1 * report.losses[0]
    assert "work" in report.diagnosis and "passed" in str(report)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_a_tiny_learning_rate_is_named():
    report = overfit_batch(build_mlp((32,)), X, y, learning_rate=1e-7)
    assert not report.passed
    assert "too small" in report.diagnosis and "1e-06" in report.diagnosis


def test_a_huge_learning_rate_is_named():
    report = overfit_batch(build_mlp((32,)), X, y, optimizer="sgd", learning_rate=1e4)
    assert not report.passed and "too large" in report.diagnosis


@pytest.mark.parametrize(
    ("images", "labels", "expected"),
    [
        (X.astype(np.float32), y, "divide by 255"),  # raw pixels as floats
        (X / 255.0 / 255.0, y, "divided by 255 twice"),
        (X, np.sort(y), "sorted by class"),  # batches of one class
        (X, np.eye(10)[y], "labels"),  # one-hot instead of class indices
        (X, y + 1, "labels"),  # 1..10 instead of 0..9
        (np.zeros_like(X), y, "blank"),
    ],
)
def test_data_mistakes_are_named_before_training(images, labels, expected):
    report = overfit_batch(build_mlp((32,)), images, labels)
    assert not report.passed and report.losses == []
    assert expected in report.diagnosis


def test_the_range_test_falls_then_rises_and_suggests_a_rate_that_trains():
    model = build_mlp((32,), seed=0)
    before = model.get_weights()
    result = find_learning_rate(model, X, y, n_steps=80)
    assert len(result.learning_rates) == len(result.losses) <= 80
    assert np.all(np.diff(result.learning_rates) > 0)
    assert result.losses.min() < 0.8 * result.losses[0]  # it found rates that learn
    assert result.losses[-1] > 2 * result.losses.min()  # and stopped once the loss turned up
    assert 1e-4 <= result.suggested <= 0.1  # Adam on a small MLP: around 1e-3
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    good = overfit_batch(build_mlp((32,)), X, y, learning_rate=result.suggested, n_steps=60)
    slow = overfit_batch(build_mlp((32,)), X, y, learning_rate=result.learning_rates[0])
    assert good.losses[-1] < 0.5 * slow.losses[-1]


def test_the_default_rate_lets_a_narrow_network_memorise_its_batch():
    # 784-32-16-10, the walkthrough's first network: 60 steps at Adam's own 1e-3 left it at 97%
    # of a real MNIST batch (and of this one); the bolder default must pass a correct network.
    X, y = make_synthetic_digits(64, seed=1)
    assert not overfit_batch(build_mlp((32, 16), seed=0), X, y, learning_rate=1e-3).passed
    assert overfit_batch(build_mlp((32, 16), seed=0), X, y).passed
