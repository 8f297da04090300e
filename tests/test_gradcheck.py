"""The gradient checker itself (it must find right gradients right and wrong ones wrong), and
one gradient check for every registered layer type."""

from __future__ import annotations

import numpy as np
import pytest

import mnist_nn  # noqa: F401  (registers every layer type the package defines)
from mnist_nn.builders import build_mlp
from mnist_nn.gradcheck import check_layer, check_model, numerical_gradient, relative_error
from mnist_nn.layers import LAYER_TYPES, Dense
from mnist_nn.losses import SoftmaxCrossEntropy


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


# One gradient check per registered layer type: constructor arguments (float64 where the layer
# has a dtype) and an input shape. A new layer type needs an entry here.
LAYER_CASES = {
    "Dense": (dict(n_inputs=4, n_outputs=3, dtype="float64"), (5, 4)),
    "Dropout": (dict(rate=0.5, seed=1), (4, 6)),
    "ReLU": ({}, (4, 6)),
    "LeakyReLU": (dict(alpha=0.1), (4, 6)),
    "Sigmoid": ({}, (4, 6)),
    "Tanh": ({}, (4, 6)),
    "Softmax": ({}, (3, 5)),
    "Conv2D": (
        dict(n_channels=2, n_filters=3, kernel_size=3, stride=2, padding=1, dtype="float64"),
        (2, 2, 7, 6),
    ),
    "MaxPool2D": (dict(pool_size=2), (2, 2, 4, 6)),
    "Flatten": ({}, (2, 3, 2, 2)),
}


@pytest.mark.parametrize("name", sorted(LAYER_TYPES))
def test_every_registered_layer_passes_gradient_check(name):
    arguments, input_shape = LAYER_CASES[name]
    layer = LAYER_TYPES[name](**arguments)
    rng = np.random.default_rng(4)
    for param in layer.params.values():  # nonzero biases, so their gradients count too
        param[...] = rng.standard_normal(param.shape)
    # Dropout only drops in training mode; the other layers are the same in both modes.
    errors = check_layer(layer, rng.standard_normal(input_shape), training=True)
    assert set(errors) == {"X", *layer.params}
    assert max(errors.values()) < 1e-6, errors


def test_every_registered_layer_type_has_a_gradient_check_case():
    missing = sorted(set(LAYER_TYPES) - set(LAYER_CASES))
    assert not missing, f"add a LAYER_CASES entry for {missing}"
    assert set(LAYER_CASES) == set(LAYER_TYPES)  # and no entry for a layer that is gone


class ScaledLoss(SoftmaxCrossEntropy):
    """The cross-entropy with a gradient twice too large."""

    def backward(self):
        return 2 * super().backward()


def test_check_model_uses_the_models_own_loss_function():
    model = build_mlp((4,), n_inputs=3, n_classes=2, seed=0, dtype=np.float64)
    X, y = np.random.default_rng(5).standard_normal((6, 3)), np.array([0, 1, 1, 0, 1, 0])
    assert max(check_model(model, X, y).values()) < 1e-6
    model.loss_function = ScaledLoss()
    errors = check_model(model, X, y)
    assert min(errors.values()) > 0.3  # |2g - g| / (|2g| + |g|) = 1/3
