"""Why did the network read a digit that way? A saliency map from the model's own backward pass,
the average training digit of each class, and the training digits nearest to the input."""

from __future__ import annotations

import numpy as np

from mnist_nn.model import Model
from mnist_nn.preprocess import normalize
from mnist_nn.validation import check_images, check_labels

CHUNK = 10_000  # training images turned into floats at a time (31 MB for MNIST)


def saliency_map(model: Model, image: np.ndarray, class_index: int) -> np.ndarray:
    """d(logit of class_index) / d(input pixel) for one image, shaped like the image.

    The same backward pass as training, started from a one-hot gradient on the chosen logit
    instead of the loss's: where it is large, changing the pixel changes that score most
    (Simonyan et al., 2014). Positive: more ink there would raise the score.
    """
    image = np.asarray(image)
    X = model.prepare_input(check_images(image[None], model.input_shape))  # (1, *input_shape)
    Z = model.forward(X)  # (1, C), dropout off
    if not 0 <= class_index < Z.shape[1]:
        raise ValueError(f"class_index must be in 0..{Z.shape[1] - 1}, got {class_index}")
    dZ = np.zeros_like(Z)
    dZ[0, class_index] = 1.0
    return model.backward(dZ, needs_input_grad=True).reshape(image.shape)


def class_means(X: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """The average image of each class, (C, *image shape) floats in [0, 1] (zeros if absent)."""
    y = check_labels(y, n_samples=len(X), n_classes=n_classes)
    scale = 1 / 255 if X.dtype == np.uint8 else 1.0
    means = np.zeros((n_classes, *X.shape[1:]), dtype=np.float32)
    for label in np.unique(y):  # one pass per class, over that class's images only
        means[label] = X[y == label].mean(axis=0, dtype=np.float64) * scale
    return means


def nearest_images(X: np.ndarray, image: np.ndarray, n: int = 5) -> np.ndarray:
    """Indices of the n images of X closest to `image` (Euclidean distance in [0, 1] pixels)."""
    query = _unit_floats(np.asarray(image)[None]).reshape(-1)  # (D,)
    distances = np.empty(len(X), dtype=np.float32)
    for start in range(0, len(X), CHUNK):
        chunk = _unit_floats(X[start : start + CHUNK]).reshape(-1, query.size)  # (B, D)
        # |a - b|^2 = |a|^2 - 2 a.b + |b|^2, one matrix-vector product per chunk; |query|^2 is
        # the same for every image and left out.
        squared_norms = np.einsum("ij,ij->i", chunk, chunk)
        distances[start : start + len(chunk)] = squared_norms - 2 * (chunk @ query)
    n = min(n, len(X))
    closest = np.argpartition(distances, n - 1)[:n]
    return closest[np.argsort(distances[closest], kind="stable")]


def explain_digit(
    model: Model,
    image: np.ndarray,
    X_train: np.ndarray,
    y_train: np.ndarray,
    true_label: int | None = None,
    n_nearest: int = 6,
) -> dict:
    """Everything plots.plot_explanation shows for one (28, 28) input image, as arrays."""
    image = np.asarray(image)
    probabilities = model.predict_proba(image[None])[0]  # (C,)
    predicted = int(probabilities.argmax())
    means = class_means(X_train, y_train, model.n_classes)
    nearest = nearest_images(X_train, image, n_nearest)
    return {
        "image": _unit_floats(image[None])[0],
        "probabilities": probabilities,
        "predicted": predicted,
        "true_label": true_label,
        "predicted_mean": means[predicted],
        "true_mean": None if true_label is None else means[true_label],
        "saliency": saliency_map(model, image, predicted),
        "nearest_images": _unit_floats(X_train[nearest]),
        "nearest_labels": np.asarray(y_train)[nearest],
    }


def _unit_floats(X: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1]; floats (already scaled) -> float32."""
    return normalize(X) if X.dtype == np.uint8 else np.asarray(X, dtype=np.float32)
