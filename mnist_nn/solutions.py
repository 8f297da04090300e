"""The exercises' reference solutions and their hints: hint(name) gives a first hint, a second on
the next call, then the solution (the very function the checker and the tests use)."""

from __future__ import annotations

import inspect

import numpy as np


def relu(Z):
    return np.maximum(Z, 0)  # (N, D), a new array: Z itself stays as it was


def relu_backward(dA, Z):
    return dA * (Z > 0)  # (N, D): the gradient passes only where the unit was active


def softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))  # (N, C); the shift keeps exp from overflowing
    return E / E.sum(axis=1, keepdims=True)  # each row divided by its own sum, (N, 1)


def cross_entropy(P, Y):
    return -np.log(P[Y == 1]).mean()  # minus the log of each right class's P, averaged over N


def softmax_cross_entropy_backward(P, Y):
    return (P - Y) / len(P)  # (N, C): the 1/N of the mean over the batch


def dense_forward(X, W, b):
    return X @ W + b  # (N, D) @ (D, M) + (M,) -> (N, M)


def dense_backward(X, W, dZ):
    dX = dZ @ W.T  # (N, M) @ (M, D) -> (N, D)
    dW = X.T @ dZ  # (D, N) @ (N, M) -> (D, M): the sum over the batch of outer products
    db = dZ.sum(axis=0)  # (M,): b was added to every row
    return dX, dW, db


def hidden_layer_backward(dA, X, W, Z):
    dZ = dA * (Z > 0)  # through the ReLU first, (N, M)
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)  # then through the dense layer


def sgd_step(W, dW, learning_rate):
    return W - learning_rate * dW


def adam_step(W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * dW
    v = beta2 * v + (1 - beta2) * dW**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return W - learning_rate * m_hat / (np.sqrt(v_hat) + eps), m, v


def dropout_forward(X, rate, training, rng):
    if not training:
        return X
    keep = rng.random(X.shape) >= rate  # (N, D): True with probability 1 - rate
    return X * keep / (1 - rate)


def conv2d_forward(X, W, b, padding=0):
    N, C, H, Wd = X.shape
    F, _, K, _ = W.shape
    X_pad = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH, OW = H + 2 * padding - K + 1, Wd + 2 * padding - K + 1
    Z = np.zeros((N, F, OH, OW))
    for i in range(OH):
        for j in range(OW):
            window = X_pad[:, :, i : i + K, j : j + K]  # (N, C, K, K)
            Z[:, :, i, j] = np.tensordot(window, W, axes=([1, 2, 3], [1, 2, 3])) + b
    return Z


def maxpool_backward(dout, X):
    N, C, H, Wd = X.shape
    windows = X.reshape(N, C, H // 2, 2, Wd // 2, 2)  # each 2 x 2 window on axes 3 and 5
    is_max = windows == windows.max(axis=(3, 5), keepdims=True)  # where each maximum was
    dX = is_max * dout[:, :, :, None, :, None]  # the gradient goes to the maximum only
    return dX.reshape(N, C, H, Wd)


SOLUTIONS = {
    function.__name__: function
    for function in (
        relu,
        relu_backward,
        softmax,
        cross_entropy,
        softmax_cross_entropy_backward,
        dense_forward,
        dense_backward,
        hidden_layer_backward,
        sgd_step,
        adam_step,
        dropout_forward,
        conv2d_forward,
        maxpool_backward,
    )
}

HINTS = {
    "relu": (
        "ReLU keeps z where z > 0 and gives 0 elsewhere, entry by entry.",
        "np.maximum(Z, 0) compares every entry with 0 and returns a new array.",
    ),
    "relu_backward": (
        "A = max(0, Z) has slope 1 where Z > 0 and slope 0 where Z < 0 (and 0 at exactly 0, "
        "by convention).",
        "Multiply the incoming gradient dA by the mask (Z > 0): the mask comes from Z, the "
        "forward pass's input, not from dA.",
    ),
    "softmax": (
        "exp of each logit, then divide each row by that row's sum; subtract each row's "
        "maximum first so exp never overflows.",
        "Z.max(axis=1, keepdims=True) and E.sum(axis=1, keepdims=True) have shape (N, 1), "
        "which lines up with the rows of an (N, C) array.",
    ),
    "cross_entropy": (
        "Only the right class of each image counts: L = mean over images of -log P[i, y_i].",
        "P[Y == 1] picks the right class's probability of each row, shape (N,); take -log "
        "and the mean. Never clip P: a right class with P = 1e-5 must cost 11.5.",
    ),
    "softmax_cross_entropy_backward": (
        "For one image, dL/dz_k = p_k - y_k: the derivation is in section 8.",
        "The loss is the mean over N images, so each image's gradient is divided by N: "
        "(P - Y) / N, shape (N, C).",
    ),
    "dense_forward": (
        "Z = X W + b: a matrix product, then the bias added to every row.",
        "X is (N, D) and W is (D, M): X @ W is (N, M), and + b (shape (M,)) broadcasts over "
        "the N rows.",
    ),
    "dense_backward": (
        "Each output must have the shape of what it is the gradient of: dX (N, D), dW (D, M), "
        "db (M,). Only one product of the arrays gives each shape.",
        "dX = dZ @ W.T, dW = X.T @ dZ (the sum over the batch of outer products), and db sums "
        "dZ over the batch (axis 0). dZ already holds the 1/N: do not divide again.",
    ),
    "hidden_layer_backward": (
        "Two steps, in reverse order of the forward pass: first back through the ReLU, "
        "then through the dense layer.",
        "dZ = dA * (Z > 0); then dX = dZ @ W.T, dW = X.T @ dZ, db = dZ.sum(axis=0).",
    ),
    "sgd_step": (
        "The gradient points uphill: step the other way, by the learning rate times it.",
        "Return W - learning_rate * dW.",
    ),
    "adam_step": (
        "Update m and v first (running averages of dW and dW**2), then correct both for "
        "their start at 0, then step.",
        "m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t), and W moves by "
        "learning_rate * m_hat / (np.sqrt(v_hat) + eps). Return the new W, m and v (not the "
        "hats).",
    ),
    "dropout_forward": (
        "At inference return X unchanged; while training zero each value with probability "
        "rate and scale the rest up.",
        "keep = rng.random(X.shape) >= rate; return X * keep / (1 - rate).",
    ),
    "conv2d_forward": (
        "Pad only height and width, then slide the K x K window: each output value is the sum "
        "of window * filter over channels and the K x K positions, plus the filter's bias.",
        "Loop over the OH x OW output positions; for each, np.tensordot(window, W, "
        "axes=([1, 2, 3], [1, 2, 3])) gives all N images and F filters at once.",
    ),
    "maxpool_backward": (
        "Each output of a 2 x 2 max pool came from one input, the window's maximum: the "
        "gradient goes back to that input only, the other three get 0.",
        "X.reshape(N, C, H // 2, 2, W // 2, 2) puts each window on axes 3 and 5; compare with "
        "its max (keepdims) for the mask, multiply by dout broadcast the same way, reshape back.",
    ),
}

_asked: dict[str, int] = {}


def hint(name: str) -> str:
    """The next help for exercise `name`: a first hint, then a second, then the solution."""
    if name not in HINTS:
        raise ValueError(f"unknown exercise {name!r}; the exercises are {list(HINTS)}")
    level = _asked.get(name, 0)
    _asked[name] = level + 1
    if level < len(HINTS[name]):
        text = f"Hint {level + 1} of {len(HINTS[name])} for {name}: {HINTS[name][level]}"
        if level + 1 == len(HINTS[name]):
            text += f'\n(Ask once more, exercises.hint("{name}"), for the solution.)'
        return _Text(text)
    return _Text(f"A solution for {name}:\n\n{inspect.getsource(SOLUTIONS[name])}")


class _Text(str):
    """A string that a notebook shows as plain text, line breaks and all (not as its repr)."""

    def __repr__(self) -> str:
        return str(self)
