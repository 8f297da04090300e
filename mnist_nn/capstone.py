"""The walkthrough's capstone: the learner's own functions assembled into a network (assemble),
falling back to the reference for an exercise not attempted, and diagnose, which runs each of
their functions beside the package's layers on the same weights and batch and names the first
whose output differs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mnist_nn.exercises import NOT_ATTEMPTED, check
from mnist_nn.model import build_mlp
from mnist_nn.solutions import SOLUTIONS

PIECES = (
    "dense_forward",
    "relu",
    "softmax",
    "cross_entropy",
    "softmax_cross_entropy_backward",
    "dense_backward",
    "relu_backward",
    "sgd_step",
)


@dataclass(frozen=True)
class Pieces:
    """The functions a network is built from (pieces.relu, pieces.dense_backward, ...) and, for
    each, whose it is: "your" or "the reference"."""

    functions: Mapping[str, Callable]
    whose: Mapping[str, str]
    failing: tuple[str, ...] = ()  # the learner's pieces whose check fails

    def __getattr__(self, name: str) -> Callable:
        try:
            return self.functions[name]
        except KeyError:
            raise AttributeError(name) from None

    def __str__(self) -> str:
        said = ", ".join(f"{self.whose[name]} {name}" for name in PIECES)
        text = f"This network runs {said}."
        if self.failing:
            text += f" Your {', '.join(self.failing)} still fails its check: expect trouble."
        return text

    def __repr__(self) -> str:
        return str(self)


def assemble(functions: Mapping[str, Callable]) -> Pieces:
    """Each piece of PIECES: the learner's function when they attempted it (even if its check
    fails, so that they see what it does), else the reference solution."""
    chosen, whose, failing = {}, {}, []
    for name in PIECES:
        function = functions.get(name)
        result = check(name, function, verbose=False) if function is not None else None
        if result is None or result.mistake == NOT_ATTEMPTED:
            chosen[name], whose[name] = SOLUTIONS[name], "the reference"
        else:
            chosen[name], whose[name] = function, "your"
            if not result.passed:
                failing.append(name)
    return Pieces(chosen, whose, tuple(failing))


def reference() -> Pieces:
    """Every piece from the reference solutions."""
    return assemble({})


def diagnose(
    pieces: Pieces,
    weights: Sequence[np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    learning_rate: float = 0.1,
) -> str:
    """Run the package's network (784-...-10, ReLU) on one batch with `weights` in float64, and
    each of the learner's pieces on exactly the inputs the package's layer got; name the first
    piece, in the order a training step calls them, whose output differs. Biases that are all
    0 (a fresh network's) get small random values first, so that a forgotten bias shows."""
    rng = np.random.default_rng(0)
    weights = [
        0.1 * rng.standard_normal(w.shape) if w.ndim == 1 and not np.any(w) else w for w in weights
    ]
    for name, args, expected in _package_calls(weights, X, y, learning_rate):
        if pieces.whose[name] != "your":
            continue
        copies = [np.copy(arg) if isinstance(arg, np.ndarray) else arg for arg in args]
        try:
            with np.errstate(all="ignore"):
                got = pieces.functions[name](*copies)
        except Exception as error:  # the learner's code: what it raises is the finding
            return f"✗ your {name} raised {type(error).__name__}: {error}"
        got = got if isinstance(got, tuple | list) else (got,)
        difference = _largest_difference(got, expected)
        if difference is not None:
            return (
                f"✗ your {name} differs from the package's on the same weights and batch "
                f"({difference}); run exercises.check({name!r}, ...) on it again"
            )
    return "✓ every one of your pieces gives the package's outputs on this batch"


def _package_calls(weights, X, y, learning_rate) -> list[tuple[str, tuple, tuple]]:
    """(piece, its inputs, the package's outputs) for each call of one training step."""
    hidden = [W.shape[1] for W in weights[0:-2:2]]
    model = build_mlp(hidden, n_inputs=weights[0].shape[0], dtype=np.float64)
    model.set_weights(weights)
    calls, A, inputs = [], np.asarray(X, dtype=np.float64), []
    for layer in model.layers:
        inputs.append(A)
        out = layer.forward(A)
        if "W" in layer.params:
            calls.append(("dense_forward", (A, layer.params["W"], layer.params["b"]), (out,)))
        else:
            calls.append(("relu", (A,), (out,)))
        A = out
    Y = np.eye(A.shape[1])[y]
    loss = model.loss_function.forward(A, y)
    P = model.loss_function.P
    calls.append(("softmax", (A,), (P,)))
    calls.append(("cross_entropy", (P, Y), (loss,)))
    dZ = model.loss_function.backward()
    calls.append(("softmax_cross_entropy_backward", (P, Y), (dZ,)))
    for layer, A_in in zip(reversed(model.layers), reversed(inputs), strict=True):
        dX = layer.backward(dZ)
        if "W" in layer.params:
            W, grads = layer.params["W"], (dX, layer.grads["W"], layer.grads["b"])
            calls.append(("dense_backward", (A_in, W, dZ), grads))
        else:
            calls.append(("relu_backward", (dZ, A_in), (dX,)))
        dZ = dX
    W, dW = model.layers[0].params["W"], model.layers[0].grads["W"]
    calls.append(("sgd_step", (W, dW, learning_rate), (W - learning_rate * dW,)))
    return calls


def _largest_difference(got: Sequence, expected: Sequence) -> str | None:
    if len(got) != len(expected):
        return f"{len(got)} outputs instead of {len(expected)}"
    for index, (value, right) in enumerate(zip(got, expected, strict=True)):
        value = np.asarray(value, dtype=np.float64)
        if value.shape != np.shape(right):
            return f"output {index + 1} has shape {value.shape}, the package's {np.shape(right)}"
        if not np.allclose(value, right, rtol=1e-4, atol=1e-6):
            largest = float(np.nanmax(np.abs(value - right))) if value.size else 0.0
            return f"output {index + 1}: largest difference {largest:.3g}"
    return None
