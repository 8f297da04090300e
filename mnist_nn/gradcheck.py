"""Gradient checking: compare backpropagation with central differences in float64, to show (and
test) that every backward pass is right."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mnist_nn.layers import Layer
from mnist_nn.model import Model


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """df/dx by central differences: (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for each entry i.

    x is changed in place one entry at a time (and restored), so f may also read it through a
    layer or model that holds it, e.g. f = lambda W: loss(model). The error of the estimate
    shrinks like eps^2; x must be float64, because in float32 rounding swamps the difference.
    """
    if x.dtype != np.float64:
        raise ValueError(f"gradient checks need float64 arrays, got {x.dtype}; use dtype=float64")
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)  # views: writing them changes x, grad
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        f_plus = f(x)
        flat_x[i] = original - eps
        f_minus = f(x)
        flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||): 0 for equal arrays, about 1e-8 or less for a correct gradient.

    Norms of whole arrays rather than entry by entry, so tiny entries do not blow up the ratio.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denominator == 0.0 else float(np.linalg.norm(a - b) / denominator)


def check_layer(
    layer: Layer, X: np.ndarray, training: bool = False, seed: int = 0, eps: float = 1e-6
) -> dict[str, float]:
    """Relative errors between backward() and numerical gradients for X and each parameter.

    The layer's output is turned into a number with a fixed random projection,
    f = sum(forward(X) * G), so dL/dout = G is what backward receives. A layer that draws random
    numbers (Dropout, from its ``rng``) is given the same random state before every forward pass,
    so every call sees the same mask.
    """
    X = np.array(X, dtype=np.float64)
    rng_state = _random_state(layer)

    def forward() -> np.ndarray:
        if rng_state is not None:
            layer.rng.bit_generator.state = rng_state
        return layer.forward(X, training)

    G = np.random.default_rng(seed).standard_normal(forward().shape)
    forward()
    analytic = {"X": layer.backward(G)}
    analytic.update({name: grad.copy() for name, grad in layer.grads.items()})

    def f(_: np.ndarray) -> float:
        return float(np.sum(forward() * G))

    numeric = {"X": numerical_gradient(f, X, eps)}
    for name, param in layer.params.items():
        numeric[name] = numerical_gradient(f, param, eps)
    return {name: relative_error(analytic[name], numeric[name]) for name in analytic}


def _random_state(layer: Layer) -> dict | None:
    rng = getattr(layer, "rng", None)
    return None if rng is None else rng.bit_generator.state


def check_model(
    model: Model, X: np.ndarray, y: np.ndarray, weight_decay: float = 0.0, eps: float = 1e-6
) -> dict[str, float]:
    """Relative error per parameter ("layer0.W", ...) of the model's backpropagated gradient of
    the total loss, cross-entropy + (weight_decay / 2) sum W^2, against central differences.
    Dropout is off (training=False); use a float64 model and a handful of samples.
    """
    X = np.asarray(X, dtype=np.float64)
    loss_function = model.loss_function

    def total_loss(_: np.ndarray) -> float:
        return loss_function.forward(model.forward(X), y) + model.weight_penalty(weight_decay)

    loss_function.forward(model.forward(X), y)
    model.backward(loss_function.backward())
    model.apply_weight_decay(weight_decay)
    analytic = {name: grad.copy() for name, grad in model.named_gradients().items()}
    return {
        name: relative_error(analytic[name], numerical_gradient(total_loss, param, eps))
        for name, param in model.named_parameters().items()
    }
