"""The network: a list of layers run forward in order and backward in reverse, with predict,
evaluate, summary and save/load to one .npz file. build_mlp makes a multilayer perceptron,
build_cnn a small convolutional network."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_nn.activations import ACTIVATIONS, ReLU, Softmax, make_activation
from mnist_nn.conv import Conv2D, Flatten, MaxPool2D
from mnist_nn.layers import LAYER_TYPES, Dense, Dropout, Layer
from mnist_nn.losses import SoftmaxCrossEntropy
from mnist_nn.preprocess import normalize

FORMAT_VERSION = 1
# predict/evaluate go through the images in chunks whose largest layer output holds this many
# values (6.4 MB of float32): 2,048 images for an MLP on 784 pixels, 128 for build_cnn, whose
# first layer turns each image into 16 x 28 x 28 values. Memory stays bounded for any model.
INFERENCE_CHUNK_VALUES = 2048 * 784
# load_model builds the layers a file describes before it compares them with the stored arrays;
# it refuses to build more than this many parameter values beyond those stored (40 MB).
MAX_UNSTORED_VALUES = 10_000_000


class Evaluation(NamedTuple):
    """Result of Model.evaluate; unpacks as `loss, accuracy = model.evaluate(X, y)`."""

    loss: float
    accuracy: float


def check_images(X: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Validate images for a model with per-sample `input_shape`; return them as (N, *input_shape).

    Accepted: uint8 pixels 0..255 (scaled to [0, 1] later, one batch at a time) or float32/float64
    values already scaled. Each sample may have any shape with the right number of values, e.g.
    (28, 28) for a model that takes (784,). The result is a view when possible, never a float copy
    of the whole data set.
    """
    X = np.asarray(X)
    n_values = int(np.prod(input_shape))
    if X.dtype != np.uint8 and X.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"images must be uint8 pixels (0..255) or float32/float64 values scaled to [0, 1], "
            f"got dtype {X.dtype}; convert with X.astype(np.uint8) (raw pixels) or "
            "X.astype(np.float32) (already scaled)"
        )
    if X.ndim < 2 or int(np.prod(X.shape[1:])) != n_values:
        raise ValueError(
            f"images must have shape (N, {', '.join(map(str, input_shape))}) or another per-sample "
            f"shape with {n_values} values such as (N, 28, 28); got shape {X.shape}"
        )
    if len(X) == 0:
        raise ValueError("got an empty array of images (N = 0); pass at least one image")
    if X.dtype != np.uint8:
        # Two reductions, no temporary array: a NaN makes both NaN, an inf is one of them.
        lowest, highest = X.min(), X.max()
        if not (np.isfinite(lowest) and np.isfinite(highest)):
            raise ValueError(
                "images contain NaN or inf values; clean or drop those samples before "
                "passing them to the model"
            )
        # The classic slip: raw pixels cast to float without dividing by 255. (Standardised
        # inputs, with negative values, are left alone.)
        if lowest >= 0.0 and highest > 1.5:
            raise ValueError(
                f"float images hold values up to {highest:g}, but floats must be pixels scaled "
                "to [0, 1]: divide by 255, or pass the uint8 pixels as they are"
            )
    return X.reshape((len(X), *input_shape))


def check_labels(y: np.ndarray, n_samples: int, n_classes: int) -> np.ndarray:
    """Validate integer labels 0..n_classes-1, one per image; return them as a 1-D array."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D array of integers 0..{n_classes - 1}, got dtype {y.dtype} "
            f"shape {y.shape}; for one-hot rows use y.argmax(axis=1), for floats y.astype(int)"
        )
    if len(y) != n_samples:
        raise ValueError(
            f"got {n_samples} images but {len(y)} labels; pass exactly one label per image"
        )
    if len(y) == 0:
        raise ValueError("got an empty array of labels (N = 0); pass at least one sample")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} (the model has {n_classes} outputs), "
            f"found values from {y.min()} to {y.max()}"
        )
    return y


class Model:
    """A stack of layers. The last layer gives logits Z (N, C); the loss applies softmax.

    forward(X) and backward(dout) are the raw math on arrays that are already float and shaped
    (N, *input_shape): no checks, the training loop's hot path. predict, predict_proba, evaluate
    (and train.fit) are the public entry points: they validate their input and accept uint8
    images, converted one chunk at a time.
    """

    def __init__(self, layers: Sequence[Layer], input_shape: Sequence[int] | None = None) -> None:
        self.layers = list(layers)
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
        self.shapes = [self.input_shape]  # per-sample shape after each layer
        for layer in self.layers:
            self.shapes.append(tuple(layer.output_shape(self.shapes[-1])))
        if len(self.shapes[-1]) != 1:
            raise ValueError(f"the last layer must output (N, C) logits, got {self.shapes[-1]}")
        self.n_classes = self.shapes[-1][0]
        trainable = [index for index, layer in enumerate(self.layers) if layer.params]
        if not trainable:
            raise ValueError("the model has no layer with parameters to learn")
        # Backward stops at the first layer with parameters: nothing below it needs a gradient.
        self._first_trainable = trainable[0]
        self.layers[self._first_trainable].needs_input_grad = False
        self.dtype = next(iter(self.layers[self._first_trainable].params.values())).dtype
        self.loss_function = SoftmaxCrossEntropy()

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """X (N, *input_shape) float -> logits Z (N, C)."""
        for layer in self.layers:
            X = layer.forward(X, training=training)
        return X

    def backward(self, dout: np.ndarray) -> None:
        """Backpropagate dL/dZ (N, C) through the layers, filling every layer's grads."""
        for layer in reversed(self.layers[self._first_trainable :]):
            dout = layer.backward(dout)

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

    def apply_weight_decay(self, weight_decay: float) -> float:
        """L2 weight decay: add lambda W to each dL/dW and return the penalty (lambda/2) sum W^2.

        Call after backward. Weights named "W" are decayed; biases are not (they don't make the
        function any more complex). Total loss = cross-entropy + the returned penalty.
        """
        if weight_decay == 0.0:
            return 0.0
        penalty = 0.0
        for layer in self.layers:
            if "W" in layer.params:
                W = layer.params["W"]
                penalty += float(np.vdot(W, W))
                layer.grads["W"] += weight_decay * W
        return 0.5 * weight_decay * penalty

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
            batch_size = max(1, INFERENCE_CHUNK_VALUES // largest)
        for start in range(0, len(X), batch_size):
            yield start, self.forward(self.prepare_input(X[start : start + batch_size]))

    def predict_proba(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, C) for images X (uint8 or scaled floats).

        batch_size: images per chunk; None sizes chunks by INFERENCE_CHUNK_VALUES.
        """
        X = check_images(X, self.input_shape)
        P = np.empty((len(X), self.n_classes), dtype=self.dtype)
        for start, Z in self._logit_chunks(X, batch_size):
            Z -= Z.max(axis=1, keepdims=True)
            np.exp(Z, out=Z)
            Z /= Z.sum(axis=1, keepdims=True)
            P[start : start + len(Z)] = Z
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
        loss_function = SoftmaxCrossEntropy()
        for start, Z in self._logit_chunks(X, batch_size):
            y_chunk = y[start : start + len(Z)]
            loss_sum += loss_function.forward(Z, y_chunk) * len(Z)
            n_correct += int(np.count_nonzero(Z.argmax(axis=1) == y_chunk))
        return Evaluation(loss_sum / len(y), n_correct / len(y))

    def summary(self) -> str:
        """A table: each layer, its output shape (N = batch) and its number of parameters."""
        rows = [("#", "Layer", "Output shape", "Params")]
        rows.append(("", "Input", _shape_text(self.input_shape), ""))
        for index, (layer, shape) in enumerate(zip(self.layers, self.shapes[1:], strict=True)):
            rows.append((str(index), _layer_text(layer), _shape_text(shape), f"{layer.n_params:,}"))
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines = [
            "  ".join(
                cell.rjust(width) if column in (0, 3) else cell.ljust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
            for row in rows
        ]
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
        """Write the model to one .npz file: format version, architecture (JSON), parameters.

        The file is written to a temporary name in the same folder and then renamed over `path`,
        so an interrupted save never leaves a half-written model behind.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            # A numpy unicode string, not an object: it loads with allow_pickle=False.
            "architecture": np.array(json.dumps(self.architecture())),
        }
        arrays.update({f"param:{name}": p for name, p in self.named_parameters().items()})
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)
                file.flush()
                os.fsync(file.fileno())  # on disk before the rename makes it count
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        return path


def _layer_text(layer: Layer) -> str:
    """Dense(784, 32, he), Dropout(0.2), ReLU(): the settings without dtype and seed."""
    config = layer.get_config()
    values = [str(value) for key, value in config.items() if key not in ("dtype", "seed")]
    return f"{type(layer).__name__}({', '.join(values)})"


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def load_model(path: str | os.PathLike) -> Model:
    """Rebuild a Model saved with Model.save; a damaged or foreign file raises ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")

    def bad(reason: str) -> ValueError:
        return ValueError(f"{path} is not a valid mnist_nn model file: {reason}")

    with open(path, "rb") as file:
        if file.read(2) != b"PK":  # every .npz file is a zip archive
            raise bad("it is not an .npz archive; give a file written by Model.save or `train`")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise bad(f"it is truncated or corrupted ({error}); save the model again") from error
    except ValueError as error:  # e.g. an object array, which would need pickle
        raise bad(f"it holds data that cannot be loaded safely ({error})") from error

    for key in ("format_version", "architecture"):
        if key not in arrays:
            raise bad(f"the entry {key!r} is missing")
    version = arrays.pop("format_version")
    if version.shape != () or not np.issubdtype(version.dtype, np.integer):
        raise bad("format_version must be a single integer")
    if int(version) != FORMAT_VERSION:
        raise bad(
            f"it has format version {int(version)}, this mnist_nn reads version {FORMAT_VERSION}"
        )
    try:
        architecture = json.loads(str(arrays.pop("architecture")))
        input_shape = architecture["input_shape"]
        layer_specs = [(spec["type"], spec["config"]) for spec in architecture["layers"]]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise bad(f"its architecture description is unreadable ({error})") from error

    for layer_type, _ in layer_specs:
        if layer_type not in LAYER_TYPES:
            raise bad(f"unknown layer type {layer_type!r}; known types are {sorted(LAYER_TYPES)}")
    # Sizes first: a tampered architecture must not make us allocate terabytes. Small
    # mismatches (a missing or misnamed array) are reported by name further down.
    n_stored = sum(value.size for key, value in arrays.items() if key.startswith("param:"))
    try:
        n_needed = sum(LAYER_TYPES[kind].count_params(**config) for kind, config in layer_specs)
    except (TypeError, ValueError) as error:
        raise bad(f"its architecture description is unreadable ({error})") from error
    if n_needed > n_stored + MAX_UNSTORED_VALUES:
        raise bad(f"its layers need {n_needed:,} parameter values but it stores only {n_stored:,}")

    layers = []
    for layer_type, config in layer_specs:
        try:
            layers.append(LAYER_TYPES[layer_type](**config))
        except (TypeError, ValueError) as error:
            raise bad(f"cannot rebuild layer {layer_type} from {config}: {error}") from error
    try:
        model = Model(layers, input_shape=input_shape)
    except (TypeError, ValueError) as error:
        raise bad(f"the layers do not fit together ({error})") from error

    params = model.named_parameters()
    stored = {key.removeprefix("param:"): value for key, value in arrays.items()}
    missing, unexpected = sorted(set(params) - set(stored)), sorted(set(stored) - set(params))
    if missing or unexpected:
        raise bad(f"missing parameters {missing}, unexpected entries {unexpected}")
    for name, param in params.items():
        value = stored[name]
        if value.shape != param.shape:
            raise bad(f"{name} has shape {value.shape}, the architecture needs {param.shape}")
        if not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
            raise bad(f"{name} must hold finite floating-point numbers")
        np.copyto(param, value)
    return model


def build_mlp(
    layer_sizes: Sequence[int] = (784, 32, 16, 10),
    activation: str = "relu",
    dropout: float = 0.0,
    seed: int = 0,
    dtype: str | type = np.float32,
) -> Model:
    """A multilayer perceptron: Dense -> activation (-> Dropout) for each hidden layer, then a
    Dense layer giving logits. [784, 32, 16, 10] is 784 inputs, hidden layers of 32 and 16 units,
    10 classes.

    Hidden layers use He init for the ReLU family and Glorot for sigmoid/tanh; the output layer,
    which no activation follows, uses Glorot. All weights and dropout masks follow from `seed`.
    """
    sizes = [int(size) for size in layer_sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size, all positive, got {sizes}"
        )
    key = str(activation).lower().replace("-", "_")
    if key not in ACTIVATIONS or key == "softmax":
        valid = sorted(set(ACTIVATIONS) - {"softmax"})
        raise ValueError(f"unknown hidden activation {activation!r}; valid names are {valid}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    init = "he" if key in ("relu", "leaky_relu") else "glorot"
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for n_inputs, n_outputs in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers.append(Dense(n_inputs, n_outputs, init=init, seed=rng, dtype=dtype))
        layers.append(make_activation(key))
        if dropout > 0.0:
            layers.append(Dropout(dropout, seed=int(rng.integers(2**31))))
    layers.append(Dense(sizes[-2], sizes[-1], init="glorot", seed=rng, dtype=dtype))
    return Model(layers, input_shape=(sizes[0],))


def build_cnn(
    input_shape: Sequence[int] = (1, 28, 28),
    n_filters: Sequence[int] = (16, 32),
    kernel_size: int = 5,
    padding: int = 2,
    n_classes: int = 10,
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
    (n_features,) = shape
    layers.append(Dense(n_features, n_classes, init="glorot", seed=rng, dtype=dtype))
    return Model(layers, input_shape=input_shape)
