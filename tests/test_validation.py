"""check_images and check_labels: what they accept (without copying), and a message for each
mistake that says what was wrong and how to fix it."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.validation import check_images, check_labels

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)


def test_images_are_reshaped_per_sample_without_a_copy():
    flat = check_images(IMAGES, (784,))
    assert flat.shape == (6, 784) and flat.dtype == np.uint8
    assert np.shares_memory(flat, IMAGES)  # a view, never a float copy of the data set
    assert check_images(IMAGES.reshape(6, 784), (1, 28, 28)).shape == (6, 1, 28, 28)
    floats = IMAGES / np.float32(255)
    scaled = check_images(floats, (28, 28))
    assert scaled.dtype == np.float32 and np.shares_memory(scaled, floats)
    standardised = (IMAGES / 255.0 - 0.13) / 0.31  # negative values, up to about 2.8
    assert check_images(standardised, (784,)).shape == (6, 784)


@pytest.mark.parametrize(
    "images, message",
    [
        (IMAGES.astype(np.int64), "dtype int64.*astype"),
        (IMAGES.astype(np.float16), "dtype float16"),
        (IMAGES[:, :20], r"shape \(N, 784\).*got shape \(6, 20, 28\)"),
        (IMAGES[0].reshape(-1), "shape"),
        (IMAGES[:0], "empty"),
        (np.where(IMAGES > 250, np.nan, IMAGES / 255.0), "NaN or inf"),
        (np.where(IMAGES > 250, -np.inf, IMAGES / 255.0), "NaN or inf"),
        (IMAGES.astype(np.float64), "values up to 255.*divide by 255"),
    ],
)
def test_bad_images_are_rejected(images, message):
    with pytest.raises(ValueError, match=message):
        check_images(images, (784,))


def test_labels_are_returned_as_an_array():
    y = check_labels([3, 0, 9], n_samples=3, n_classes=10)
    assert isinstance(y, np.ndarray) and y.tolist() == [3, 0, 9]
    labels = np.array([1, 2], dtype=np.uint8)
    assert check_labels(labels) is labels  # no copy
    # Without n_classes any non-negative integer label is fine (e.g. to count the classes).
    assert check_labels(np.array([0, 41])).max() == 41


@pytest.mark.parametrize(
    "labels, arguments, message",
    [
        (np.array([0.0, 1.0]), {}, "1-D array of integers.*astype"),
        (np.eye(3, dtype=int), {}, "1-D.*argmax"),
        (np.array([1, 2, 3]), dict(n_samples=4), "got 4 images but 3 labels"),
        (np.array([], dtype=int), {}, "empty"),
        (np.array([0, 10]), dict(n_classes=10), r"0\.\.9, found values from 0 to 10.*10 outputs"),
        (np.array([-1, 2]), dict(n_classes=3), r"0\.\.2, found values from -1 to 2"),
        (np.array([-1, 2]), {}, "found values from -1"),
        (np.array([5]), dict(n_classes=4, name="y_pred"), r"y_pred must lie in 0\.\.3"),
        (np.array([1, 2]), dict(n_samples=3, name="validation labels"), "2 validation labels"),
    ],
)
def test_bad_labels_are_rejected_with_their_name(labels, arguments, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels, **arguments)


def test_a_shape_error_suggests_only_shapes_the_model_takes():
    with pytest.raises(ValueError) as error:
        check_images(IMAGES, (100,))  # a 100-input model given 28x28 digits
    message = str(error.value)
    assert "(N, 10, 10)" in message and "(N, 28, 28)" not in message
    assert "784 values per image: this model takes 100" in message
