"""The gradient checker itself: it must find right gradients right and wrong ones wrong."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.gradcheck import check_layer, numerical_gradient, relative_error
from mnist_nn.layers import Dense


def test_numerical_gradient_of_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda x: float(np.sum(x**3)), x)
    assert np.allclose(grad, 3 * x**2, rtol=1e-8)
    assert np.array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # x restored


def test_numerical_gradient_refuses_float32():
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(lambda x: 0.0, np.zeros(3, np.float32))


def test_relative_error():
    a = np.array([1.0, 2.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert relative_error(a, -a) == 1.0
    assert relative_error(a, a * (1 + 1e-9)) < 1e-9


class BrokenDense(Dense):
    """A Dense layer whose weight gradient is off by a factor of 2."""

    def backward(self, dout):
        dX = super().backward(dout)
        self.grads["W"] *= 2
        return dX


def test_check_layer_catches_a_wrong_backward():
    X = np.random.default_rng(0).standard_normal((4, 3))
    good = check_layer(Dense(3, 2, dtype=np.float64), X)
    bad = check_layer(BrokenDense(3, 2, dtype=np.float64), X)
    assert max(good.values()) < 1e-6
    assert bad["W"] > 0.1 and bad["X"] < 1e-6
