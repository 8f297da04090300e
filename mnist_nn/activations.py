"""Activation functions with their derivatives, as plain functions and as parameter-free layers:
ReLU, LeakyReLU, Sigmoid, Tanh and Softmax."""

from __future__ import annotations

import numpy as np

from mnist_nn.layers import Layer, register_layer


def relu(Z: np.ndarray) -> np.ndarray:
    """max(0, z), elementwise."""
    return np.maximum(Z, 0)


def relu_derivative(Z: np.ndarray) -> np.ndarray:
    """1 where z > 0, else 0 (the kink at 0 gets 0)."""
    return (Z > 0).astype(Z.dtype)


def leaky_relu(Z: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """z where z > 0, else alpha * z: negative inputs keep a small slope, so no unit dies."""
    return np.where(Z > 0, Z, alpha * Z)


def leaky_relu_derivative(Z: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """1 where z > 0, else alpha."""
    return np.where(Z > 0, 1.0, alpha).astype(Z.dtype)


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), computed without overflow for any z.

    With e = exp(-|z|) <= 1: sigma(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0, so exp
    never sees a large positive argument.
    """
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0, E) / (1.0 + E)


def sigmoid_derivative(Z: np.ndarray) -> np.ndarray:
    """sigma(z) (1 - sigma(z))."""
    S = sigmoid(Z)
    return S * (1.0 - S)


def tanh(Z: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent, elementwise (NumPy's np.tanh is already stable)."""
    return np.tanh(Z)


def tanh_derivative(Z: np.ndarray) -> np.ndarray:
    """1 - tanh(z)^2."""
    return 1.0 - np.tanh(Z) ** 2


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise log of softmax: log P[i, k] = Z[i, k] - log sum_j exp(Z[i, j]).  (N, C) -> (N, C)

    Subtracting each row's maximum first changes nothing mathematically but keeps exp from
    overflowing (the largest exponent becomes exp(0) = 1) and the log from seeing 0.
    """
    Z_shifted = Z - Z.max(axis=-1, keepdims=True)  # (N, C), each row's maximum is 0
    Z_shifted -= np.log(np.exp(Z_shifted).sum(axis=-1, keepdims=True))
    return Z_shifted


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax: P[i, k] = exp(Z[i, k]) / sum_j exp(Z[i, j]).  (N, C) -> (N, C)

    Computed as exp(log_softmax(Z)): the one stable softmax that the loss and predict_proba use.
    """
    return np.exp(log_softmax(Z))


def softmax_backward(P: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """Gradient through softmax: dZ = P * (dout - sum_k dout_k P_k), row by row.

    Softmax's derivative is a C x C matrix per row, J = diag(p) - p p^T; multiplying dout by J
    simplifies to the expression above, so J is never built.  P, dout (N, C) -> dZ (N, C)
    """
    return P * (dout - np.sum(dout * P, axis=-1, keepdims=True))


@register_layer
class ReLU(Layer):
    """A = max(0, Z);  dZ = dout * [Z > 0].  Any shape -> the same shape.

    The mask [Z > 0] is kept from forward in a reused boolean buffer; backward multiplies by it,
    which is much faster than boolean indexing (dZ[Z <= 0] = 0).
    """

    def __init__(self) -> None:
        super().__init__()
        self.mask: np.ndarray | None = None

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        if self.mask is None or self.mask.shape != X.shape:
            # empty_like keeps X's memory order (channels-last after a Conv2D), so the mask is
            # written and read along X's memory, not across it. Any order gives the same result.
            self.mask = np.empty_like(X, dtype=bool)
        np.greater(X, 0, out=self.mask)
        return np.maximum(X, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.mask


@register_layer
class LeakyReLU(Layer):
    """A = Z where Z > 0, else alpha Z;  dZ = dout * (1 or alpha).  Any shape -> same shape."""

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.slope: np.ndarray | None = None

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        self.slope = leaky_relu_derivative(X, self.alpha)
        return X * self.slope

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.slope

    def get_config(self) -> dict:
        return {"alpha": self.alpha}


@register_layer
class Sigmoid(Layer):
    """A = 1 / (1 + e^-Z);  dZ = dout * A (1 - A).  Any shape -> same shape."""

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        self.A = sigmoid(X)
        return self.A

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.A * (1.0 - self.A)


@register_layer
class Tanh(Layer):
    """A = tanh(Z);  dZ = dout * (1 - A^2).  Any shape -> same shape."""

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        self.A = np.tanh(X)
        return self.A

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1.0 - self.A * self.A)


@register_layer
class Softmax(Layer):
    """P = softmax(Z) row-wise;  dZ = P * (dout - sum_k dout_k P_k).  (N, C) -> (N, C)

    For training use SoftmaxCrossEntropy on the logits instead: fused, its gradient is (P - Y) / N.
    """

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        self.P = softmax(X)
        return self.P

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return softmax_backward(self.P, dout)


ACTIVATIONS: dict[str, type[Layer]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
}
HIDDEN_ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")  # softmax belongs to the loss


def make_activation(name: str, **kwargs) -> Layer:
    """The activation layer called `name` (e.g. "relu"); kwargs go to its constructor."""
    key = str(name).lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid names are {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key](**kwargs)
