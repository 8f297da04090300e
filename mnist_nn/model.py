"""The network: a list of layers run forward in order and backward in reverse, with predict,
evaluate and summary. build_mlp makes a multilayer perceptron, build_cnn a small convolutional
network, build_model either one from Settings; model_file.py saves and loads them."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_nn.activations import ReLU, Softmax, make_activation, softmax
from mnist_nn.conv import Conv2D, Flatten, MaxPool2D
from mnist_nn.layers import Dense, Dropout, Layer
from mnist_nn.losses import SoftmaxCrossEntropy
from mnist_nn.preprocess import normalize
from mnist_nn.settings import Settings
from mnist_nn.tables import format_table
from mnist_nn.validation import check_images, check_labels

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
        if needs_input_grad:
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
            return dout
        for layer in reversed(self.layers[self._first_trainable + 1 :]):
            dout = layer.backward(dout)
        self.layers[self._first_trainable].backward(dout, needs_input_grad=False)
        return None

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
        if X_chunk.dtype == np.uint8:
            return normalize(X_chunk, dtype=self.dtype.type)
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
        X = check_images(X, self.input_shape)
        P = np.empty((len(X), self.n_classes), dtype=self.dtype)
        for start, Z in self._logit_chunks(X, batch_size):
            P[start : start + len(Z)] = softmax(Z)
        return P

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Predicted class (N,) for images X: the largest logit (softmax doesn't change argmax)."""
        X = check_images(X, self.input_shape)
        labels = np.empty(len(X), dtype=np.int64)
        for start, Z in self._logit_chunks(X, batch_size):
            labels[start : start + len(Z)] = Z.argmax(axis=1)
        return labels

    def evaluate(self, X: np.ndarray, y: np.ndarray, batch_size: int | None = None) -> Evaluation:
        """Mean cross-entropy and accuracy on (X, y), computed in chunks, dropout off."""
        X = check_images(X, self.input_shape)
        y = check_labels(y, len(X), self.n_classes)
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
        """Write the model to one .npz file (see model_file.save_model); returns the path."""
        from mnist_nn.model_file import save_model

        return save_model(self, path)


def _layer_text(layer: Layer) -> str:
    """Dense(784, 32, he), Dropout(0.2), ReLU(): the settings without dtype and seed."""
    config = layer.get_config()
    values = [str(value) for key, value in config.items() if key not in ("dtype", "seed")]
    return f"{type(layer).__name__}({', '.join(values)})"


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def build_mlp(
    hidden_sizes: Sequence[int] = (128, 64),
    n_inputs: int = 784,
    n_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.0,
    seed: int = 0,
    dtype: str | type = np.float32,
) -> Model:
    """A multilayer perceptron: Dense -> activation (-> Dropout) for each hidden layer, then a
    Dense layer giving logits. hidden_sizes=(128, 64) makes 784-128-64-10; () makes softmax
    regression.

    Hidden layers use He init for the ReLU family and Glorot for sigmoid/tanh; the output layer,
    which no activation follows, uses Glorot. All weights and dropout masks follow from `seed`.
    """
    settings = Settings(hidden_sizes=hidden_sizes, activation=activation, dropout=dropout)
    sizes = [int(n_inputs), *settings.hidden_sizes, int(n_classes)]
    if min(sizes) < 1:
        raise ValueError(f"n_inputs and n_classes must be at least 1, got {n_inputs}, {n_classes}")
    init = "he" if settings.activation in ("relu", "leaky_relu") else "glorot"
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers.append(Dense(n_in, n_out, init=init, seed=rng, dtype=dtype))
        layers.append(make_activation(settings.activation))
        if settings.dropout > 0.0:
            layers.append(Dropout(settings.dropout, seed=int(rng.integers(2**31))))
    layers.append(Dense(sizes[-2], sizes[-1], init="glorot", seed=rng, dtype=dtype))
    described = isinstance(seed, int | np.integer) and seed >= 0
    return Model(layers, (sizes[0],), settings.replace(seed=seed) if described else None)


def build_cnn(
    n_filters: Sequence[int] = (16, 32),
    input_shape: Sequence[int] = (1, 28, 28),
    n_classes: int = 10,
    kernel_size: int = 5,
    padding: int = 2,
    seed: int = 0,
    dtype: str | type = np.float32,
) -> Model:
    """A small LeNet-like convolutional network: for each entry of n_filters a block
    Conv2D(kernel_size, padding) -> ReLU -> MaxPool2D(2), then Flatten -> Dense(n_classes).

    The defaults give conv 5x5x16 -> pool -> conv 5x5x32 -> pool -> dense 10 on (1, 28, 28)
    images: (16, 28, 28) -> (16, 14, 14) -> (32, 14, 14) -> (32, 7, 7) -> 1568 -> 10. Images
    come in as (N, 28, 28) or (N, 784), uint8 or scaled floats, like for build_mlp. Conv layers
    use He init; the output layer Glorot. All weights follow from `seed`.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (channels, height, width), got {input_shape}")
    C = int(input_shape[0])
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for n_out in n_filters:
        layers.append(Conv2D(C, n_out, kernel_size, padding=padding, seed=rng, dtype=dtype))
        layers += [ReLU(), MaxPool2D(2)]
        C = int(n_out)
    layers.append(Flatten())
    shape = tuple(input_shape)
    for layer in layers:  # raises a clear error if the images are too small for the blocks
        shape = layer.output_shape(shape)
    layers.append(Dense(shape[0], n_classes, init="glorot", seed=rng, dtype=dtype))
    # Settings describe build_cnn's own 5x5 "same" convolutions only.
    described = (
        (kernel_size, padding) == (5, 2) and isinstance(seed, int | np.integer) and seed >= 0
    )
    settings = Settings(model="cnn", n_filters=n_filters, seed=seed) if described else None
    return Model(layers, input_shape=input_shape, settings=settings)


def build_model(settings: Settings, sample_shape: Sequence[int], n_classes: int) -> Model:
    """The network that `settings` describe, for samples of sample_shape ((28, 28), (784,) or
    (C, H, W)) and n_classes outputs; its initial weights follow from settings.seed."""
    if settings.model == "mlp":
        model = build_mlp(
            settings.hidden_sizes,
            n_inputs=math.prod(sample_shape),
            n_classes=n_classes,
            activation=settings.activation,
            dropout=settings.dropout,
            seed=settings.seed,
        )
    else:
        shape = image_shape(sample_shape)
        smallest_side = min(shape[1:]) // 2 ** len(settings.n_filters)  # each block halves
        if smallest_side < 1:
            raise ValueError(
                f"n_filters {settings.n_filters} gives {len(settings.n_filters)} conv blocks, too "
                f"many for {shape[1]}x{shape[2]} images, which each block halves; give fewer"
            )
        model = build_cnn(settings.n_filters, shape, n_classes, seed=settings.seed)
    model.settings = settings
    return model


def image_shape(sample_shape: Sequence[int]) -> tuple[int, int, int]:
    """(channels, height, width) of one image shaped (H, W), (C, H, W) or (D,) with D square."""
    sample_shape = tuple(int(size) for size in sample_shape)
    if len(sample_shape) == 2:
        return (1, *sample_shape)
    if len(sample_shape) == 3:
        return sample_shape
    side = math.isqrt(sample_shape[0]) if len(sample_shape) == 1 else 0
    if side * side != math.prod(sample_shape) or side == 0:
        raise ValueError(f"cannot tell the image size from samples of shape {sample_shape}")
    return (1, side, side)
