"""The network builders: build_mlp makes a multilayer perceptron, build_cnn a small convolutional
network, build_model either one from Settings. Each returns a Model (model.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mnist_nn.activations import ReLU, make_activation
from mnist_nn.conv import Conv2D, Flatten, MaxPool2D
from mnist_nn.layers import Dense, Dropout, Layer
from mnist_nn.model import Model
from mnist_nn.settings import Settings


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
