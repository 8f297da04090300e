"""Preprocessing: scaling, flattening, one-hot labels, the stratified split and mini-batches."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.preprocess import (
    flatten,
    minibatch_indices,
    minibatches,
    normalize,
    one_hot,
    train_val_split,
)


def labelled_data(counts=(50, 100, 350)):
    """X holds each sample's own index, so every split can be traced back to the original."""
    y = np.repeat(np.arange(len(counts)), counts).astype(np.uint8)
    X = np.arange(len(y))
    return X, y


def test_normalize_maps_0_255_to_0_1_in_float32():
    X = np.arange(256, dtype=np.uint8).reshape(16, 16)
    X_scaled = normalize(X)
    assert X_scaled.dtype == np.float32 and X_scaled.shape == (16, 16)
    assert X_scaled.min() == 0.0 and X_scaled.max() == 1.0
    np.testing.assert_allclose(X_scaled, X / 255.0, rtol=1e-6)
    assert normalize(X, dtype=np.float64).dtype == np.float64


def test_normalize_refuses_floats():
    with pytest.raises(ValueError, match="uint8"):
        normalize(np.zeros((2, 2), dtype=np.float32))


def test_flatten_is_a_view_of_the_images():
    X = np.zeros((5, 28, 28), dtype=np.uint8)
    X_flat = flatten(X)
    assert X_flat.shape == (5, 784) and np.shares_memory(X, X_flat)
    with pytest.raises(ValueError, match="batch"):
        flatten(np.zeros(3))


def test_one_hot_rows():
    y = np.array([3, 0, 9, 3])
    Y = one_hot(y)
    assert Y.shape == (4, 10) and Y.dtype == np.float32
    np.testing.assert_array_equal(Y.sum(axis=1), 1)
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    with pytest.raises(ValueError, match="0..9"):
        one_hot(np.array([10]))
    with pytest.raises(ValueError, match="integer"):
        one_hot(np.array([1.0]))


def test_split_sizes_cover_every_sample_exactly_once():
    X, y = labelled_data()
    (X_train, y_train), (X_val, y_val) = train_val_split(X, y, val_fraction=0.2, seed=0)
    assert len(X_val) == 100 and len(X_train) == 400
    np.testing.assert_array_equal(np.sort(np.concatenate([X_train, X_val])), X)
    # Images and labels stay paired.
    np.testing.assert_array_equal(y[X_train], y_train)
    np.testing.assert_array_equal(y[X_val], y_val)


def test_split_is_stratified():
    X, y = labelled_data()
    (_, y_train), (_, y_val) = train_val_split(X, y, val_fraction=0.2, seed=1)
    np.testing.assert_array_equal(np.bincount(y_val), [10, 20, 70])
    np.testing.assert_array_equal(np.bincount(y_train), [40, 80, 280])


def test_unstratified_split_has_the_requested_size():
    X, y = labelled_data()
    (X_train, _), (X_val, _) = train_val_split(X, y, val_fraction=0.1, seed=0, stratify=False)
    assert len(X_val) == 50 and len(X_train) == 450
    assert len(np.intersect1d(X_train, X_val)) == 0


def test_split_is_seeded():
    X, y = labelled_data()
    first = train_val_split(X, y, seed=3)
    again = train_val_split(X, y, seed=3)
    other = train_val_split(X, y, seed=4)
    np.testing.assert_array_equal(first[1][0], again[1][0])
    np.testing.assert_array_equal(first[0][0], again[0][0])
    assert not np.array_equal(first[1][0], other[1][0])


def test_split_rejects_bad_input():
    X, y = labelled_data()
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(X, y, val_fraction=1.0)
    with pytest.raises(ValueError, match="match"):
        train_val_split(X[:-1], y)


def test_split_refuses_to_return_an_empty_validation_set():
    # 10 classes of 5: 10 % of each class rounds to 0, so nothing would be left to validate on.
    y = np.repeat(np.arange(10), 5)
    with pytest.raises(ValueError, match="empty validation"):
        train_val_split(np.arange(50), y, val_fraction=0.1)


@pytest.mark.parametrize("n_samples, batch_size", [(10, 3), (12, 4), (5, 8), (1, 1)])
def test_every_sample_once_per_epoch(n_samples, batch_size):
    batches = list(minibatch_indices(n_samples, batch_size, rng=0))
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n_samples))
    sizes = [len(batch) for batch in batches]
    assert all(size == batch_size for size in sizes[:-1]) and 0 < sizes[-1] <= batch_size
    assert len(batches) == -(-n_samples // batch_size)


def test_batches_are_shuffled_seeded_and_differ_between_epochs():
    first = np.concatenate(list(minibatch_indices(100, 10, rng=0)))
    again = np.concatenate(list(minibatch_indices(100, 10, rng=0)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, np.arange(100))
    # One generator reused over epochs gives a new order every epoch.
    rng = np.random.default_rng(0)
    epoch_1 = np.concatenate(list(minibatch_indices(100, 10, rng=rng)))
    epoch_2 = np.concatenate(list(minibatch_indices(100, 10, rng=rng)))
    assert not np.array_equal(epoch_1, epoch_2)
    in_order = np.concatenate(list(minibatch_indices(100, 10, shuffle=False)))
    np.testing.assert_array_equal(in_order, np.arange(100))


def test_minibatches_keep_images_and_labels_paired():
    X, y = labelled_data((7, 6))
    seen = []
    for X_batch, y_batch in minibatches(X, y, batch_size=4, rng=2):
        np.testing.assert_array_equal(y[X_batch], y_batch)
        seen.append(X_batch)
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), X)


def test_batch_iterators_reject_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        list(minibatch_indices(10, 0))
    with pytest.raises(ValueError, match="match"):
        list(minibatches(np.zeros(3), np.zeros(4), batch_size=2))
