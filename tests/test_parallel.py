"""The split step: replicas share the model's parameters, the slices' gradients add up to the whole
batch's, and fit with the split repeats exactly, dropout included."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn import threads
from mnist_nn.builders import build_cnn, build_mlp
from mnist_nn.parallel import SplitStep, replicate
from mnist_nn.threads import SPLIT, ThreadChooser
from mnist_nn.train import fit


def full_batch_gradients(model, X, y) -> list[np.ndarray]:
    Z = model.forward(X, training=True)
    model.loss_function.forward(Z, y)
    model.backward(model.loss_function.backward())
    return [grad.copy() for _, grad in model.parameters()]


def test_a_replica_shares_the_parameters_but_not_the_gradients():
    model = build_mlp((8,), n_inputs=12, n_classes=3, seed=0)
    replica = replicate(model)
    for (param, grad), (replica_param, replica_grad) in zip(
        model.parameters(), replica.parameters(), strict=True
    ):
        assert replica_param is param and replica_grad is not grad


@pytest.mark.parametrize("n_images", [1, 7, 16])  # one slice, unequal halves, equal halves
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_the_split_gradients_equal_the_whole_batch_gradients(network, n_images):
    rng = np.random.default_rng(0)
    if network == "mlp":
        model = build_mlp((16, 8), n_inputs=20, n_classes=5, seed=1, dtype=np.float64)
        X = rng.normal(size=(n_images, 20))
    else:
        model = build_cnn((4, 6), input_shape=(1, 8, 8), n_classes=5, seed=1, dtype=np.float64)
        X = rng.normal(size=(n_images, 1, 8, 8))
    y = rng.integers(0, 5, n_images)
    expected = full_batch_gradients(model, X, y)
    Z_expected = model.forward(X)
    loss_expected = model.loss_function.forward(Z_expected, y)
    split = SplitStep(model, n_parts=2)
    Z, loss = split.forward_backward(X, y)
    split.close()
    np.testing.assert_allclose(Z, Z_expected, rtol=1e-12)
    assert loss == pytest.approx(loss_expected, rel=1e-12)
    for want, (_, got) in zip(expected, model.parameters(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_the_split_is_a_candidate_only_when_asked_and_the_work_is_large(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "_blas_threads_now", lambda controller: 2)  # BLAS not limited
    big = 10 * threads.MIN_WORK_TO_MEASURE
    assert ThreadChooser(None, big, can_split=True).candidates == [1, 2, SPLIT]
    assert ThreadChooser(None, big).candidates == [1, 2]
    assert ThreadChooser(None, 1000, can_split=True).candidates == [1]
    assert ThreadChooser(1, big, can_split=True).current == 1  # a fixed count never splits


def fit_with_the_split(monkeypatch, X, y, seed: int) -> tuple[list, list]:
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "_blas_threads_now", lambda controller: 2)  # BLAS not limited
    monkeypatch.setattr(threads, "STEPS_PER_CHOICE", 1)
    monkeypatch.setattr(ThreadChooser, "_fastest", lambda self: SPLIT)
    # The same choice throughout: no new measurement (with its steps on 1 and 2 threads)
    # after an epoch that happened to run slowly.
    monkeypatch.setattr(threads, "SLOWDOWN_TO_RECHECK", float("inf"))
    model = build_mlp((64,), dropout=0.3, seed=seed)
    history = fit(model, X, y, n_epochs=3, batch_size=100, progress=False)
    return [param.copy() for param, _ in model.parameters()], history["threads"]


def test_fit_with_the_split_repeats_exactly_with_dropout(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), rng.integers(0, 10, 300)
    weights, chosen = fit_with_the_split(monkeypatch, X, y, seed=3)
    again, _ = fit_with_the_split(monkeypatch, X, y, seed=3)
    other_seed, _ = fit_with_the_split(monkeypatch, X, y, seed=4)
    assert chosen == [SPLIT] * 3
    assert all(np.array_equal(a, b) for a, b in zip(weights, again, strict=True))
    assert not np.array_equal(weights[0], other_seed[0])
