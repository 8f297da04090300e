"""From raw uint8 digits to network inputs: scaling, flattening, one-hot labels, a stratified
validation split and seeded mini-batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mnist_nn.validation import check_labels


def normalize(X: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Scale uint8 pixels 0..255 to floats in [0, 1] (float32 unless asked otherwise)."""
    X = np.asarray(X)
    if X.dtype != np.uint8:
        raise ValueError(
            f"normalize expects uint8 pixels (0..255), got dtype {X.dtype}; "
            "images that are already floats need no normalizing"
        )
    # One pass: multiply and convert together, no float64 temporary.
    return np.multiply(X, dtype(1.0 / 255.0), dtype=dtype)


def flatten(X: np.ndarray) -> np.ndarray:
    """(N, 28, 28) images -> (N, 784) rows, as a view when possible."""
    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"flatten expects a batch of images (N, H, W), got shape {X.shape}")
    return X.reshape(len(X), -1)


def one_hot(y: np.ndarray, n_classes: int = 10, dtype: type = np.float32) -> np.ndarray:
    """Labels (N,) -> one-hot rows (N, n_classes)."""
    y = check_labels(y, n_classes=n_classes)
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


def train_val_split(
    X: np.ndarray,
    y: np.ndarray,
    val_fraction: float = 0.1,
    seed: int | np.random.Generator | None = 0,
    stratify: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split into (X_train, y_train), (X_val, y_val), seeded.

    With ``stratify`` each class gives the same fraction of its samples to validation, so both
    parts keep the class proportions of the whole.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels; they must match")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    rng = np.random.default_rng(seed)
    if stratify:
        val_parts = []
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            val_parts.append(members[: int(round(val_fraction * len(members)))])
        val_index = np.concatenate(val_parts)
    else:
        val_index = rng.permutation(len(y))[: int(round(val_fraction * len(y)))]
    if len(val_index) == 0 or len(val_index) == len(y):
        # Per-class rounding can round every class down to 0 (or up to all) on small data sets;
        # an empty part would later give a NaN loss instead of an error.
        raise ValueError(
            f"val_fraction={val_fraction} of {len(y)} samples leaves an empty "
            f"{'validation' if len(val_index) == 0 else 'training'} set; choose another fraction"
        )
    is_val = np.zeros(len(y), dtype=bool)
    is_val[val_index] = True
    train_index = rng.permutation(np.flatnonzero(~is_val))
    val_index = rng.permutation(val_index)
    return (X[train_index], y[train_index]), (X[val_index], y[val_index])


def minibatch_indices(
    n_samples: int,
    batch_size: int,
    rng: int | np.random.Generator | None = 0,
    shuffle: bool = True,
) -> Iterator[np.ndarray]:
    """Index arrays of one epoch: every sample exactly once, the last batch may be smaller."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = np.random.default_rng(rng).permutation(n_samples) if shuffle else np.arange(n_samples)
    for start in range(0, n_samples, batch_size):
        yield order[start : start + batch_size]


def minibatches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    rng: int | np.random.Generator | None = 0,
    shuffle: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (X_batch, y_batch) pairs of one epoch; only the batch is copied, never the data set."""
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels; they must match")
    for index in minibatch_indices(len(X), batch_size, rng, shuffle):
        yield X[index], y[index]
