"""From raw uint8 digits to network inputs: scaling, flattening, one-hot labels, a stratified
validation split and seeded mini-batches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image  # Pillow comes with matplotlib


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
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"one_hot expects a 1-D integer label array, got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, found {y.min()}..{y.max()}")
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


def prepare_digit_image(image: np.ndarray) -> np.ndarray:
    """Turn a picture of one digit into an MNIST-style (28, 28) uint8 input.

    Follows how MNIST itself was made (LeCun et al., 1998): grayscale, light digit on a dark
    background, the digit cropped and scaled to fit a 20x20 box keeping its aspect ratio, then
    placed in 28x28 so that its centre of mass sits at the centre. Dark-on-light and light-on-dark
    pictures both work: the border decides which is the background.
    """
    gray = _to_grayscale(image)  # (H, W) floats in [0, 1]
    if gray.shape[0] < 8 or gray.shape[1] < 8:
        raise ValueError(f"the image is {gray.shape[1]}x{gray.shape[0]} pixels; use at least 8x8")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = np.median(border)
    ink = np.abs(gray - background)  # 0 on the background, up to 1 on the strokes
    if ink.max() < 0.15:
        raise ValueError(
            "the image looks blank (no digit stands out from the background); "
            "draw the digit with a clear contrast, e.g. black on white"
        )
    ink = np.clip((ink - 0.1 * ink.max()) / (0.9 * ink.max()), 0.0, 1.0)  # drop faint noise
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    digit = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    scale = 20.0 / max(digit.shape)
    new_height = max(1, round(digit.shape[0] * scale))
    new_width = max(1, round(digit.shape[1] * scale))
    digit = _resize(digit, new_height, new_width)  # fits in 20x20

    # Place it so that the centre of mass lands on the centre of the 28x28 canvas.
    row_mass, col_mass = digit.sum(axis=1), digit.sum(axis=0)
    centre_row = (row_mass * np.arange(new_height)).sum() / row_mass.sum()
    centre_col = (col_mass * np.arange(new_width)).sum() / col_mass.sum()
    top = int(np.clip(round(13.5 - centre_row), 0, 28 - new_height))
    left = int(np.clip(round(13.5 - centre_col), 0, 28 - new_width))
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top : top + new_height, left : left + new_width] = digit
    return np.round(canvas * 255).astype(np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The pixels of a PNG or JPEG file as they are: (H, W), (H, W, 3) or (H, W, 4) uint8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}; check the path")
    try:
        with Image.open(path) as picture:
            picture.load()
            # Palette images become RGBA, black-and-white (1-bit) ones 8-bit gray.
            conversions = {"P": "RGBA", "1": "L", "CMYK": "RGB"}
            return np.asarray(picture.convert(conversions.get(picture.mode, picture.mode)))
    except (OSError, ValueError) as error:
        raise ValueError(
            f"could not read {path} as an image ({error}); save the digit as PNG or JPEG"
        ) from None


def load_digit_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG or JPEG of one digit and return it as an MNIST-style (28, 28) uint8 input."""
    return prepare_digit_image(read_image(path))


def _to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4) pixels, integer or float -> (H, W) floats in [0, 1]."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(
            f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}"
        )
    if image.dtype == bool:  # black-and-white: True is white
        image = image.astype(np.float64)
    elif np.issubdtype(image.dtype, np.integer):
        image = image / float(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError("the image contains NaN or inf pixels")
        image = np.clip(image, 0.0, 1.0)
    else:
        raise ValueError(f"expected integer or float pixels, got dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.shape[2] in (2, 4):
        # Composite over white: drawings saved with a transparent background are usually
        # dark strokes meant to be seen on a white page.
        alpha = image[..., -1:]
        image = image[..., :-1] * alpha + (1.0 - alpha)
    if image.shape[2] == 1:
        return image[..., 0]
    return image[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (H, W) float image with Pillow's anti-aliased resampling."""
    picture = Image.fromarray(image.astype(np.float32))  # mode "F"
    resized = picture.resize((width, height), resample=Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized), 0.0, 1.0)
