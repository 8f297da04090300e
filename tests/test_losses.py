"""Softmax cross-entropy: value, stability, fused gradient, and L2 weight decay."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.builders import build_mlp
from mnist_nn.gradcheck import check_model, numerical_gradient, relative_error
from mnist_nn.losses import SoftmaxCrossEntropy

rng = np.random.default_rng(0)
Z = rng.standard_normal((6, 4)) * 2
y = np.array([0, 3, 1, 1, 2, 0])


def test_loss_is_mean_negative_log_probability():
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(P[np.arange(6), y]))
    assert SoftmaxCrossEntropy().forward(Z, y) == pytest.approx(expected, rel=1e-12)


def test_gradient_is_p_minus_y_over_n_and_matches_central_differences():
    loss = SoftmaxCrossEntropy()
    loss.forward(Z, y)
    dZ = loss.backward()
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    assert np.allclose(dZ, (P - np.eye(4)[y]) / 6)
    numeric = numerical_gradient(lambda Z: SoftmaxCrossEntropy().forward(Z, y), Z.copy())
    assert relative_error(dZ, numeric) < 1e-6


def test_stable_for_huge_logits_and_no_log_of_zero():
    loss = SoftmaxCrossEntropy()
    Z_big = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        assert loss.forward(Z_big, np.array([0, 1])) == 0.0  # certain and right
        wrong = loss.forward(Z_big, np.array([2, 0]))  # certain and wrong: large, finite
    assert np.isfinite(wrong) and wrong == pytest.approx(2e4, rel=1e-6)
    assert np.isfinite(loss.backward()).all()


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_loss_gradient_check_with_and_without_weight_decay(weight_decay):
    model = build_mlp((4,), n_inputs=5, n_classes=3, seed=0, dtype=np.float64)
    X = rng.standard_normal((7, 5))
    errors = check_model(model, X, rng.integers(0, 3, 7), weight_decay=weight_decay)
    assert max(errors.values()) < 1e-6, errors


def test_weight_decay_penalty_and_gradient_values():
    model = build_mlp((), n_inputs=2, n_classes=2, seed=0, dtype=np.float64)
    W = model.layers[0].params["W"]
    W[:] = [[1.0, -2.0], [0.5, 0.0]]
    model.layers[0].params["b"][:] = 3.0  # biases are not decayed
    model.layers[0].grads["W"][:] = 0.0
    model.layers[0].grads["b"][:] = 0.0
    expected = 0.5 * 0.1 * (1 + 4 + 0.25)
    assert model.weight_penalty(0.1) == pytest.approx(expected)
    assert not model.layers[0].grads["W"].any()  # the penalty alone changes no gradient
    penalty = model.apply_weight_decay(0.1)
    assert penalty == pytest.approx(expected)
    assert np.allclose(model.layers[0].grads["W"], 0.1 * W)
    assert not model.layers[0].grads["b"].any()
    assert model.apply_weight_decay(0.0) == 0.0 == model.weight_penalty(0.0)
