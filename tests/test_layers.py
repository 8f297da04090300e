"""Dense and Dropout layers: values, gradients, initialisation, configuration."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.activations import ACTIVATIONS
from mnist_nn.gradcheck import check_layer
from mnist_nn.layers import LAYER_TYPES, Dense, Dropout


def test_dense_forward_is_affine():
    layer = Dense(4, 3, seed=0, dtype=np.float64)
    layer.params["b"][:] = [1.0, 2.0, 3.0]
    X = np.random.default_rng(0).standard_normal((5, 4))
    assert np.allclose(layer.forward(X), X @ layer.params["W"] + layer.params["b"])


@pytest.mark.parametrize("init", ["he", "glorot"])
def test_dense_passes_gradient_check(init):
    layer = Dense(6, 4, init=init, seed=1, dtype=np.float64)
    layer.params["b"][:] = np.random.default_rng(2).standard_normal(4)
    errors = check_layer(layer, np.random.default_rng(3).standard_normal((5, 6)))
    assert set(errors) == {"X", "W", "b"}
    assert max(errors.values()) < 1e-6, errors


def test_dense_skips_input_gradient_when_not_needed_and_keeps_grad_arrays():
    layer = Dense(3, 2, dtype=np.float64)
    grad_W, grad_b = layer.grads["W"], layer.grads["b"]
    X = np.arange(6.0).reshape(2, 3)
    dout = np.array([[1.0, -1.0], [0.5, 2.0]])
    layer.forward(X)
    assert layer.backward(dout).shape == X.shape
    layer.forward(X)
    assert layer.backward(dout, needs_input_grad=False) is None
    assert layer.grads["W"] is grad_W and layer.grads["b"] is grad_b  # optimizers keep these
    assert np.allclose(grad_W, X.T @ dout) and np.allclose(grad_b, dout.sum(axis=0))


def test_initialisation_scale_seed_and_dtype():
    he = Dense(1000, 200, init="he", seed=0)
    assert he.params["W"].dtype == np.float32
    assert abs(he.params["W"].std() - np.sqrt(2 / 1000)) < 0.002
    glorot = Dense(300, 100, init="glorot", seed=0, dtype="float64")
    limit = np.sqrt(6 / 400)
    assert glorot.params["W"].dtype == np.float64
    assert np.abs(glorot.params["W"]).max() <= limit
    assert abs(glorot.params["W"].std() - limit / np.sqrt(3)) < 0.002
    assert not glorot.params["b"].any()
    assert np.array_equal(Dense(5, 3, seed=7).params["W"], Dense(5, 3, seed=7).params["W"])
    assert not np.array_equal(Dense(5, 3, seed=7).params["W"], Dense(5, 3, seed=8).params["W"])


def test_dense_rejects_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="'he' and 'glorot'"):
        Dense(3, 2, init="xavier")
    with pytest.raises(ValueError, match="float32 or float64"):
        Dense(3, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="at least one"):
        Dense(0, 2)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(3,\)"):
        Dense(3, 2).output_shape((4,))


def test_dropout_is_identity_at_inference():
    X = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    layer = Dropout(0.5, seed=0)
    assert layer.forward(X) is X
    assert np.array_equal(layer.backward(X), X)


def test_dropout_training_drops_the_rate_and_keeps_the_mean():
    X = np.ones((200, 500), dtype=np.float32)
    layer = Dropout(0.3, seed=0)
    out = layer.forward(X, training=True)
    assert out.dtype == np.float32
    assert abs(np.mean(out == 0) - 0.3) < 0.01
    assert np.allclose(out[out != 0], 1 / 0.7)
    assert abs(out.mean() - 1.0) < 0.01
    assert np.array_equal(layer.backward(X), out)  # the same mask scales the gradient
    again = Dropout(0.3, seed=0).forward(X, training=True)
    assert np.array_equal(out, again)


def test_dropout_in_training_mode_passes_gradient_check():
    # check_layer gives the layer's rng the same state before every forward pass, so each
    # call draws the same mask.
    X = np.random.default_rng(1).standard_normal((4, 6))
    layer = Dropout(0.5, seed=1)
    errors = check_layer(layer, X, training=True)
    assert errors["X"] < 1e-6
    assert set(np.unique(layer.mask)) == {0.0, 2.0}  # a real mask: some dropped, some scaled
    assert np.array_equal(layer.forward(X, training=True), X * layer.mask)


def test_dropout_rejects_bad_rate():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


def test_registry_rebuilds_every_layer_from_its_config():
    assert {"Dense", "Dropout"} | {cls.__name__ for cls in ACTIVATIONS.values()} <= set(LAYER_TYPES)
    for layer in (Dense(3, 2, init="glorot", dtype=np.float64), Dropout(0.25, seed=3)):
        rebuilt = LAYER_TYPES[type(layer).__name__](**layer.get_config())
        assert rebuilt.get_config() == layer.get_config()


def test_parameter_shapes_match_the_built_layer_without_building_it():
    assert Dense.parameter_shapes(n_inputs=5, n_outputs=3) == {"W": (5, 3), "b": (3,)}
    assert Dense.parameter_shapes(**Dense(7, 2, init="glorot").get_config()) == {
        name: param.shape for name, param in Dense(7, 2).params.items()
    }
    # Sizes far too large to allocate are only multiplied out, never built.
    assert Dense.parameter_shapes(n_inputs=10**7, n_outputs=10**7)["W"] == (10**7, 10**7)
    assert Dropout.parameter_shapes(**Dropout(0.3).get_config()) == {} == Dropout(0.3).params
