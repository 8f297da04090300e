"""Synthetic digits: shapes, balance, seeding, MNIST-like placement, learnability, and the
vectorised distance field checked against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.synthetic import (
    DIGIT_STROKES,
    _squared_distance_to_segments,
    load_synthetic,
    make_synthetic_digits,
)


@pytest.fixture(scope="module")
def digits():
    return make_synthetic_digits(1000, seed=0)


def test_shapes_dtypes_and_balanced_labels(digits):
    X, y = digits
    assert X.shape == (1000, 28, 28) and X.dtype == np.uint8
    assert y.shape == (1000,) and y.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 100))
    counts = np.bincount(make_synthetic_digits(95, seed=1)[1], minlength=10)
    assert counts.max() - counts.min() <= 1


def test_same_seed_same_images_other_seed_other_images():
    X_a, y_a = make_synthetic_digits(50, seed=7)
    X_b, y_b = make_synthetic_digits(50, seed=7)
    X_c, _ = make_synthetic_digits(50, seed=8)
    np.testing.assert_array_equal(X_a, X_b)
    np.testing.assert_array_equal(y_a, y_b)
    assert not np.array_equal(X_a, X_c)


def test_digits_sit_in_the_middle_like_mnist(digits):
    X, _ = digits
    ink = X.astype(np.float64)
    assert (ink.sum(axis=(1, 2)) > 0).all(), "every image has ink"
    rows, cols = np.arange(28)[None, :, None], np.arange(28)[None, None, :]
    centre_row = (ink * rows).sum(axis=(1, 2)) / ink.sum(axis=(1, 2))
    centre_col = (ink * cols).sum(axis=(1, 2)) / ink.sum(axis=(1, 2))
    assert np.abs(centre_row - 13.5).max() < 4 and np.abs(centre_col - 13.5).max() < 4
    # A 2-pixel frame stays (almost) empty; the background is exactly 0, as in MNIST.
    frame = np.ones((28, 28), dtype=bool)
    frame[2:-2, 2:-2] = False
    assert (X[:, frame] > 0).mean() < 0.01
    assert 0.1 < (X > 0).mean() < 0.35
    assert X.max() == 255 or X.max() > 200


def test_strokes_are_anti_aliased(digits):
    X, _ = digits
    values = np.bincount(X.ravel(), minlength=256)
    assert values[1:128].sum() > 0.2 * values[1:].sum(), "soft edges, not a binary image"


def test_a_nearest_centroid_classifier_already_separates_the_classes():
    (X, y), (X_test, y_test) = load_synthetic(n_train=2000, n_test=500, seed=3)
    X, X_test = X.reshape(len(X), -1) / 255.0, X_test.reshape(len(X_test), -1) / 255.0
    centroids = np.stack([X[y == digit].mean(axis=0) for digit in range(10)])  # (10, 784)
    distances = ((X_test[:, None, :] - centroids[None]) ** 2).sum(axis=-1)  # (N, 10)
    accuracy = (distances.argmin(axis=1) == y_test).mean()
    assert 0.7 < accuracy < 1.0, f"nearest-centroid accuracy {accuracy:.3f}"


def test_load_synthetic_gives_different_train_and_test_images():
    (X_train, y_train), (X_test, y_test) = load_synthetic(n_train=30, n_test=20, seed=0)
    assert X_train.shape == (30, 28, 28) and X_test.shape == (20, 28, 28)
    assert len(y_train) == 30 and len(y_test) == 20
    assert not np.array_equal(X_train[:20], X_test)


def test_zero_and_negative_sample_counts():
    X, y = make_synthetic_digits(0)
    assert X.shape == (0, 28, 28) and y.shape == (0,)
    with pytest.raises(ValueError, match="n_samples"):
        make_synthetic_digits(-1)


def test_every_digit_has_strokes_in_its_box():
    assert sorted(DIGIT_STROKES) == list(range(10))
    for strokes in DIGIT_STROKES.values():
        for stroke in strokes:
            assert stroke.ndim == 2 and stroke.shape[1] == 2 and len(stroke) >= 2
            assert np.abs(stroke[:, 0]).max() <= 0.7 and np.abs(stroke[:, 1]).max() <= 1.01


def test_distance_field_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    segments = [rng.uniform(-2, 30, size=(3, 2, 2)) for _ in range(4)]  # 3 samples, 4 segments
    segments.append(np.repeat(rng.uniform(5, 20, size=(3, 1, 2)), 2, axis=1))  # a single dot
    expected = np.full((3, 28, 28), np.inf)
    for sample in range(3):
        for row in range(28):
            for col in range(28):
                p = np.array([col, row], dtype=float)  # x is the column, y the row
                for segment in segments:
                    a, b = segment[sample]
                    u = b - a
                    t = np.clip((p - a) @ u / max(u @ u, 1e-12), 0, 1)
                    distance2 = np.sum((p - a - t * u) ** 2)
                    expected[sample, row, col] = min(expected[sample, row, col], distance2)
    np.testing.assert_allclose(_squared_distance_to_segments(segments), expected, atol=1e-3)
