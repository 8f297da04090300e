"""Checks of what users pass in: images and labels. Each check is cheap (no copy of the data) and
raises ValueError saying what was wrong and how to fix it."""

from __future__ import annotations

import math

import numpy as np

# Inputs standardised to mean 0 and std 1 rarely pass ~10; beyond this, a value is a fault.
MAX_STANDARDISED = 1e4


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
        raise ValueError(_shape_message(X.shape, tuple(input_shape), n_values))
    if len(X) == 0:
        raise ValueError("got an empty array of images (N = 0); pass at least one image")
    if X.dtype != np.uint8:
        _check_float_pixels(X)
    return X.reshape((len(X), *input_shape))


def _shape_message(shape: tuple[int, ...], input_shape: tuple[int, ...], n_values: int) -> str:
    """What shapes the model takes, with a grey-image example only if it is one; never
    (N, 28, 28) for a model that does not take 784 values."""
    message = f"images must have shape (N, {', '.join(map(str, input_shape))})"
    side = math.isqrt(n_values)
    if len(input_shape) == 1 and side * side == n_values:  # flat pixels of a square image
        message += f" or another shape with {n_values} values per image such as (N, {side}, {side})"
    elif len(input_shape) == 3 and input_shape[0] == 1:  # one channel: (N, H, W) is fine
        message += f" or (N, {input_shape[1]}, {input_shape[2]})"
    message += f"; got shape {shape}"
    if len(shape) >= 2 and math.prod(shape[1:]) != n_values:
        message += f" ({math.prod(shape[1:])} values per image: this model takes {n_values})"
    return message


def _check_float_pixels(X: np.ndarray) -> None:
    # Two reductions, no temporary array: a NaN makes both NaN, an inf is one of them.
    lowest, highest = X.min(), X.max()
    if not (np.isfinite(lowest) and np.isfinite(highest)):
        raise ValueError(
            "images contain NaN or inf values; clean or drop those samples before passing them "
            "to the model"
        )
    # The classic slip: raw pixels cast to float without dividing by 255. (Standardised inputs,
    # with negative values, are left alone.)
    if lowest >= 0.0 and highest > 1.5:
        raise ValueError(
            f"float images hold values up to {highest:g}, but floats must be pixels scaled to "
            "[0, 1]: divide by 255, or pass the uint8 pixels as they are"
        )
    largest = max(abs(float(lowest)), abs(float(highest)))
    if largest > MAX_STANDARDISED:  # standardised inputs lie within a few units of 0
        raise ValueError(
            f"images hold a value of {largest:g} (from {lowest:g} to {highest:g}): an outlier "
            "in the inputs, which would blow up training; clip or drop it, or pass pixels "
            "scaled to [0, 1]"
        )


def check_labels(
    y: np.ndarray,
    n_samples: int | None = None,
    n_classes: int | None = None,
    name: str = "labels",
) -> np.ndarray:
    """Validate integer labels: 1-D, not empty, one per sample when `n_samples` is given, and in
    0..n_classes-1 when `n_classes` is given. Returns them as an array."""
    y = np.asarray(y)
    classes = "0, 1, 2, ..." if n_classes is None else f"0..{n_classes - 1}"
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D array of integers {classes}, got dtype {y.dtype} shape "
            f"{y.shape}; for one-hot rows use y.argmax(axis=1), for floats y.astype(int)"
        )
    if n_samples is not None and len(y) != n_samples:
        raise ValueError(f"got {n_samples} images but {len(y)} {name}; pass one label per image")
    if len(y) == 0:
        raise ValueError(f"got an empty array of {name} (N = 0); pass at least one sample")
    if y.min() < 0 or (n_classes is not None and y.max() >= n_classes):
        raise ValueError(
            f"{name} must lie in {classes}, found values from {y.min()} to {y.max()}"
            + ("" if n_classes is None else f" (the model has {n_classes} outputs)")
        )
    return y
