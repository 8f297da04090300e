"""Activation functions, their derivatives and their layers."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn import activations as act
from mnist_nn.gradcheck import check_layer

rng = np.random.default_rng(0)
Z = rng.standard_normal((5, 7)) * 3


def elementwise_numeric(f, Z, eps=1e-6):
    return (f(Z + eps) - f(Z - eps)) / (2 * eps)


@pytest.mark.parametrize(
    "function, derivative",
    [
        (act.relu, act.relu_derivative),
        (act.leaky_relu, act.leaky_relu_derivative),
        (act.sigmoid, act.sigmoid_derivative),
        (act.tanh, act.tanh_derivative),
    ],
)
def test_derivatives_match_central_differences(function, derivative):
    assert np.allclose(derivative(Z), elementwise_numeric(function, Z), atol=1e-8)


def test_values_against_definitions():
    assert np.array_equal(act.relu(np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])
    assert np.allclose(act.leaky_relu(np.array([-2.0, 3.0]), alpha=0.1), [-0.2, 3.0])
    assert np.allclose(act.sigmoid(Z), 1 / (1 + np.exp(-Z)))
    assert np.allclose(act.tanh(Z), np.tanh(Z))
    P = act.softmax(Z)
    assert np.allclose(P, np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True))


def test_sigmoid_and_softmax_are_stable_for_huge_inputs():
    big = np.array([[-1000.0, 0.0, 1000.0]])
    with np.errstate(
        over="raise", divide="raise", invalid="raise"
    ):  # any overflow would raise here
        assert np.allclose(act.sigmoid(big), [[0.0, 0.5, 1.0]])
        assert np.allclose(act.softmax(big), [[0.0, 0.0, 1.0]])
        assert np.allclose(act.softmax(np.full((1, 4), 1e4, np.float32)), 0.25)
    assert act.sigmoid(np.float32(-100)) > 0  # no underflow to 0 in the formula's branch


def test_log_softmax_is_the_log_of_softmax_and_stays_finite():
    log_P = act.log_softmax(Z)
    assert np.allclose(log_P, np.log(np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)))
    assert np.allclose(np.exp(log_P).sum(axis=1), 1.0)
    np.testing.assert_array_equal(act.softmax(Z), np.exp(log_P))  # one formula for both
    big = np.array([[-1000.0, 0.0, 1000.0]])
    copy = big.copy()
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        log_big = act.log_softmax(big)  # log(softmax) would give log(0) = -inf here
    assert np.allclose(log_big, [[-2000.0, -1000.0, 0.0]])
    np.testing.assert_array_equal(big, copy)  # the input is left alone
    assert act.log_softmax(np.zeros((2, 4), np.float32)).dtype == np.float32


def test_hidden_activations_are_the_registered_ones_except_softmax():
    assert set(act.HIDDEN_ACTIVATIONS) == set(act.ACTIVATIONS) - {"softmax"}
    for name in act.HIDDEN_ACTIVATIONS:
        assert isinstance(act.make_activation(name), act.ACTIVATIONS[name])


def test_softmax_backward_equals_jacobian_product():
    P = act.softmax(Z)
    dout = rng.standard_normal(Z.shape)
    expected = np.stack([(np.diag(p) - np.outer(p, p)) @ d for p, d in zip(P, dout, strict=True)])
    assert np.allclose(act.softmax_backward(P, dout), expected)


@pytest.mark.parametrize("name", sorted(act.ACTIVATIONS))
def test_activation_layers_pass_gradient_check(name):
    layer = act.make_activation(name)
    X = np.random.default_rng(1).standard_normal((4, 6))
    errors = check_layer(layer, X)
    assert set(errors) == {"X"}
    assert errors["X"] < 1e-6


@pytest.mark.parametrize("name", sorted(act.ACTIVATIONS))
def test_layers_keep_dtype_and_shape(name):
    layer = act.make_activation(name)
    X = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    out = layer.forward(X, training=True)
    dX = layer.backward(np.ones_like(out))
    assert out.dtype == dX.dtype == np.float32 and out.shape == dX.shape == X.shape


def test_relu_backward_uses_the_last_forward_pass_and_leaves_dout_alone():
    layer = act.ReLU()
    X = np.array([[-1.0, 2.0], [3.0, -4.0]])
    layer.forward(X)
    dout = np.ones_like(X)
    assert np.array_equal(layer.backward(dout), [[0.0, 1.0], [1.0, 0.0]])
    assert np.array_equal(dout, np.ones_like(X))
    layer.forward(-X)  # same shape, other signs: backward follows the new pass
    assert np.array_equal(layer.backward(dout), [[1.0, 0.0], [0.0, 1.0]])


def test_leaky_relu_config_round_trip():
    layer = act.LeakyReLU(alpha=0.2)
    assert act.LeakyReLU(**layer.get_config()).alpha == 0.2


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'swish'.*relu.*sigmoid"):
        act.make_activation("swish")
    assert isinstance(act.make_activation("Leaky-ReLU"), act.LeakyReLU)
