"""The network: a list of layers run forward in order and backward in reverse; train_step is one
forward -> loss -> backward, predict, evaluate and summary the rest. The builders (build_mlp,
build_cnn, build_model) are in builders.py; model_file.py saves and loads a Model."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mnist_nn.activations import Softmax, softmax
from mnist_nn.conv import Conv2D
from mnist_nn.layers import Dense, Layer
from mnist_nn.losses import SoftmaxCrossEntropy

if TYPE_CHECKING:
    from mnist_nn.settings import Settings

# The builders were here; `from mnist_nn.model import build_mlp` still works (see __getattr__).
BUILDERS = ("build_mlp", "build_cnn", "build_model", "image_shape")

# The most values all layers' outputs and scratch arrays (Conv2D's padded input and im2col rows)
# may hold per sample (8 MB of float32): a training batch of 128 then needs at most a gigabyte.
# build_cnn's default needs 31,000 and 104,000.
MAX_VALUES_PER_SAMPLE = 2_000_000
# predict/evaluate go through the images in chunks whose largest layer output holds this many
# values (6.4 MB of float32): 2,048 images for an MLP on 784 pixels, 128 for build_cnn, whose
# first layer turns each image into 16 x 28 x 28 values. Memory stays bounded for any model.
INFERENCE_CHUNK_VALUES = 2048 * 784
# ... and whose largest scratch array holds at most eight times as many: im2col repeats each
# value K*K times (25 for build_cnn, whose chunks stay at 128 images).
INFERENCE_CHUNK_SCRATCH_VALUES = 8 * INFERENCE_CHUNK_VALUES


class Evaluation(NamedTuple):
    """Result of Model.evaluate; unpacks as `loss, accuracy = model.evaluate(X, y)`."""

    loss: float
    accuracy: float


class Model:
    """A stack of layers. The last layer gives logits Z (N, C); the loss applies softmax.

    forward(X) and backward(dout) are the raw math on arrays that are already float and shaped
    (N, *input_shape): no checks, the training loop's hot path. predict, predict_proba, evaluate
    (and train.fit) are the public entry points: they validate their input and accept uint8
    images, converted one chunk at a time. ``settings`` records the Settings that built and
    trained the model, if any; ``provenance`` what it was trained and tested on (data set, class
    names, best epoch, accuracies) and ``train_fingerprint`` hashes of some training images (see
    provenance.py). Save and load keep all three.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        input_shape: Sequence[int] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.layers = list(layers)
        self.settings = settings
        self.provenance: dict = {}
        self.train_fingerprint: np.ndarray | None = None
        if not self.layers:
            raise ValueError("a Model needs at least one layer")
        if isinstance(self.layers[-1], Softmax):
            raise ValueError(
                "end the model with the layer that gives logits, not Softmax: the loss "
                "(SoftmaxCrossEntropy) and predict_proba apply softmax themselves"
            )
        if input_shape is None:
            first_dense = next((layer for layer in self.layers if isinstance(layer, Dense)), None)
            if first_dense is None:
                raise ValueError("pass input_shape: it can only be inferred from a Dense layer")
            input_shape = (first_dense.n_inputs,)
        self.input_shape = tuple(int(size) for size in input_shape)
        if min(self.input_shape, default=0) < 1:
            raise ValueError(f"input_shape must be sizes of at least 1, got {self.input_shape}")
        self._check_sizes()
        if len(self.shapes[-1]) != 1:
            raise ValueError(f"the last layer must output (N, C) logits, got {self.shapes[-1]}")
        self.n_classes = self.shapes[-1][0]
        trainable = [index for index, layer in enumerate(self.layers) if layer.params]
        if not trainable:
            raise ValueError("the model has no layer with parameters to learn")
        # Backward stops at the first layer with parameters: nothing below it needs a gradient.
        self._first_trainable = trainable[0]
        self.dtype = next(iter(self.layers[self._first_trainable].params.values())).dtype
        self.loss_function = SoftmaxCrossEntropy()

    def _check_sizes(self) -> None:
        """Fill self.shapes and self.scratch (per sample, for each layer) and refuse a model
        whose forward pass would hold more than MAX_VALUES_PER_SAMPLE values per image."""
        self.shapes = [self.input_shape]  # per-sample shape after each layer
        self.scratch = []
        n_values = math.prod(self.input_shape)
        for layer in self.layers:  # checked layer by layer, so the first culprit is named
            self.scratch.append(layer.scratch_values(self.shapes[-1]))
            self.shapes.append(tuple(layer.output_shape(self.shapes[-1])))
            n_values += self.scratch[-1] + math.prod(self.shapes[-1])
            if n_values > MAX_VALUES_PER_SAMPLE:
                raise ValueError(
                    f"up to {layer!r}, the layers' outputs and scratch arrays would hold "
                    f"{n_values:,} values per image (at most {MAX_VALUES_PER_SAMPLE:,}); use "
                    "fewer filters or units, or less padding"
                )

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """X (N, *input_shape) float -> logits Z (N, C)."""
        for layer in self.layers:
            X = layer.forward(X, training=training)
        return X

    def backward(self, dout: np.ndarray, needs_input_grad: bool = False) -> np.ndarray | None:
        """Backpropagate dL/dZ (N, C) through the layers, filling every layer's grads.

        Training needs no gradient below the first layer with parameters, so by default backward
        stops there; needs_input_grad=True goes on to the input and returns dL/dX (N,
        *input_shape), e.g. for a saliency map (explain.py).
        """
        first = 0 if needs_input_grad else self._first_trainable
        for layer in reversed(self.layers[first + 1 :]):
            dout = layer.backward(dout)
        if needs_input_grad:
            return self.layers[0].backward(dout)
        return self.layers[first].backward(dout, needs_input_grad=False)  # None

    def train_step(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """One forward -> loss -> backward on a batch X (N, *input_shape) float, labels y (N,):
        returns the logits Z (N, C) and the mean loss, and fills every layer's grads (dropout on).
        """
        Z = self.forward(X, training=True)  # (N, C)
        loss = self.loss_function.forward(Z, y)
        self.backward(self.loss_function.backward())
        return Z, loss

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(param, grad) pairs of every layer, in order; the arrays themselves, not copies."""
        return [
            (layer.params[key], layer.grads[key]) for layer in self.layers for key in layer.params
        ]

    def named_parameters(self) -> dict[str, np.ndarray]:
        """{"layer0.W": W, "layer0.b": b, ...}: names used in saved files and gradient checks."""
        return {
            f"layer{index}.{key}": param
            for index, layer in enumerate(self.layers)
            for key, param in layer.params.items()
        }

    def named_gradients(self) -> dict[str, np.ndarray]:
        """The gradients under the same names as named_parameters."""
        return {
            f"layer{index}.{key}": grad
            for index, layer in enumerate(self.layers)
            for key, grad in layer.grads.items()
        }

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all parameters (e.g. to keep the best epoch's weights)."""
        return [param.copy() for param, _ in self.parameters()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copy weights from get_weights() back in place, so optimizers keep valid references."""
        for (param, _), value in zip(self.parameters(), weights, strict=True):
            np.copyto(param, value)

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    def multiply_adds_per_sample(self) -> list[int]:
        """The forward pass's multiply-adds per sample, for each layer with weights W: the size
        of W times the output positions it is applied at (one for Dense, OH x OW for Conv2D)."""
        counts = []
        for layer, shape in zip(self.layers, self.shapes[1:], strict=True):
            if "W" in layer.params:
                W = layer.params["W"]
                n_outputs = W.shape[0] if isinstance(layer, Conv2D) else W.shape[-1]
                counts.append(W.size * math.prod(shape) // n_outputs)
        return counts

    def weight_penalty(self, weight_decay: float) -> float:
        """The L2 penalty (lambda / 2) sum W^2 over the weights named "W"; biases are not
        penalised (they don't make the function any more complex)."""
        if weight_decay == 0.0:
            return 0.0
        weights = [layer.params["W"] for layer in self.layers if "W" in layer.params]
        return 0.5 * weight_decay * sum(float(np.vdot(W, W)) for W in weights)

    def apply_weight_decay(self, weight_decay: float) -> float:
        """L2 weight decay: add lambda W to each dL/dW (call after backward) and return the
        penalty. Total loss = cross-entropy + the returned penalty."""
        if weight_decay == 0.0:
            return 0.0
        for layer in self.layers:
            if "W" in layer.params:
                layer.grads["W"] += weight_decay * layer.params["W"]
        return self.weight_penalty(weight_decay)

    def prepare_input(self, X_chunk: np.ndarray) -> np.ndarray:
        """A chunk of validated images -> floats in the model's dtype (uint8 is scaled by 1/255).

        Called one batch at a time, so a uint8 data set never exists as floats all at once.
        """
        if X_chunk.dtype == np.uint8:  # as preprocess.normalize: one pass, no float64 temporary
            return np.multiply(X_chunk, self.dtype.type(1.0 / 255.0), dtype=self.dtype)
        return X_chunk.astype(self.dtype, copy=False)

    def _logit_chunks(self, X: np.ndarray, batch_size: int | None):
        """Yield (start, logits) for chunks of validated images X; dropout is off."""
        if batch_size is None:
            largest = max(int(np.prod(shape)) for shape in self.shapes)
            batch_size = min(
                INFERENCE_CHUNK_VALUES // largest,
                INFERENCE_CHUNK_SCRATCH_VALUES // max(1, *self.scratch),
            )
            batch_size = max(1, batch_size)
        for start in range(0, len(X), batch_size):
            yield start, self.forward(self.prepare_input(X[start : start + batch_size]))

    def predict_proba(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, C) for images X (uint8 or scaled floats).

        batch_size: images per chunk; None sizes chunks by INFERENCE_CHUNK_VALUES.
        """
        from mnist_nn.validation import check_images  # the input checks, outside the core

        X = check_images(X, self.input_shape)
        P = np.empty((len(X), self.n_classes), dtype=self.dtype)
        for start, Z in self._logit_chunks(X, batch_size):
            P[start : start + len(Z)] = softmax(Z)
        return P

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Predicted class (N,) for images X: the largest logit (softmax doesn't change argmax)."""
        from mnist_nn.validation import check_images

        X = check_images(X, self.input_shape)
        labels = np.empty(len(X), dtype=np.int64)
        for start, Z in self._logit_chunks(X, batch_size):
            labels[start : start + len(Z)] = Z.argmax(axis=1)
        return labels

    def evaluate(self, X: np.ndarray, y: np.ndarray, batch_size: int | None = None) -> Evaluation:
        """Mean cross-entropy and accuracy on images X (uint8 or scaled floats) and labels y,
        computed in chunks, dropout off; the inputs are checked first."""
        from mnist_nn.validation import check_images, check_labels

        X = check_images(X, self.input_shape)
        return self.loss_and_accuracy(X, check_labels(y, len(X), self.n_classes), batch_size)

    def loss_and_accuracy(
        self, X: np.ndarray, y: np.ndarray, batch_size: int | None = None
    ) -> Evaluation:
        """evaluate without the checks: X (N, *input_shape), y (N,) already valid."""
        loss_sum, n_correct = 0.0, 0
        for start, Z in self._logit_chunks(X, batch_size):
            y_chunk = y[start : start + len(Z)]
            loss_sum += self.loss_function.forward(Z, y_chunk) * len(Z)
            n_correct += int(np.count_nonzero(Z.argmax(axis=1) == y_chunk))
        return Evaluation(loss_sum / len(y), n_correct / len(y))

    def class_names(self, dataset: str | None = None) -> list[str]:
        """What the outputs stand for: the recorded class names, else those of `dataset` (by
        default the recorded one, else MNIST's digits) for 10 classes, else "0".."C-1"."""
        from mnist_nn.datasets import class_names

        names = self.provenance.get("class_names")
        if names and len(names) == self.n_classes:
            return [str(name) for name in names]
        if self.n_classes == 10:
            return class_names(dataset or self.provenance.get("dataset") or "mnist")
        return [str(label) for label in range(self.n_classes)]

    def summary(self) -> str:
        """A table: each layer, its output shape (N = batch) and its number of parameters."""
        from mnist_nn.tables import format_table

        rows = [("#", "Layer", "Output shape", "Params")]
        rows.append(("", "Input", _shape_text(self.input_shape), ""))
        for index, (layer, shape) in enumerate(zip(self.layers, self.shapes[1:], strict=True)):
            rows.append((str(index), _layer_text(layer), _shape_text(shape), f"{layer.n_params:,}"))
        lines = format_table(rows, right_aligned=(0, 3)).splitlines()
        rule = "-" * len(max(lines, key=len))
        footer = f"Total parameters: {self.n_params:,} ({self.dtype.name})"
        return "\n".join([lines[0], rule, *lines[1:], rule, footer])

    def __repr__(self) -> str:
        return f"Model({self.layers!r}, input_shape={self.input_shape})"

    def architecture(self) -> dict:
        """Everything but the weights, as JSON-able data: enough to rebuild the model."""
        return {
            "input_shape": list(self.input_shape),
            "layers": [
                {"type": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one .npz file (see saving.save_model); returns the path."""
        from mnist_nn.saving import save_model

        return save_model(self, path)


def _layer_text(layer: Layer) -> str:
    """Dense(784, 32, he), Dropout(0.2), ReLU(): the settings without dtype and seed."""
    config = layer.get_config()
    values = [str(value) for key, value in config.items() if key not in ("dtype", "seed")]
    return f"{type(layer).__name__}({', '.join(values)})"


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def __getattr__(name: str):
    """The builders' old address: `from mnist_nn.model import build_model` finds builders.py's."""
    if name in BUILDERS:
        from mnist_nn import builders

        return getattr(builders, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
