"""Accuracy, confusion matrix, precision and recall against hand-counted examples."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.metrics import accuracy, confusion_matrix, precision_recall

y_true = np.array([0, 0, 1, 1, 1, 2, 2, 3])
y_pred = np.array([0, 1, 1, 1, 0, 2, 1, 3])


def test_accuracy():
    assert accuracy(y_true, y_pred) == 5 / 8
    assert accuracy(y_true, y_true) == 1.0


def test_confusion_matrix_matches_a_plain_loop():
    expected = np.zeros((4, 4), dtype=int)
    for true, predicted in zip(y_true, y_pred, strict=True):
        expected[true, predicted] += 1
    C = confusion_matrix(y_true, y_pred, n_classes=4)
    assert np.array_equal(C, expected)
    assert C.sum() == 8 and confusion_matrix(y_true, y_pred).shape == (10, 10)
    random = np.random.default_rng(0).integers(0, 10, (2, 1000))
    looped = np.zeros((10, 10), dtype=int)
    np.add.at(looped, (random[0], random[1]), 1)
    assert np.array_equal(confusion_matrix(random[0], random[1]), looped)


def test_precision_recall_by_hand_and_zero_division():
    precision, recall = precision_recall(y_true, y_pred, n_classes=5)
    # predicted 0: {0, 1} -> one right; predicted 1: {0, 1, 1, 2} -> two right; class 4 unseen.
    assert np.allclose(precision, [1 / 2, 2 / 4, 1, 1, 0])
    assert np.allclose(recall, [1 / 2, 2 / 3, 1 / 2, 1, 0])


@pytest.mark.parametrize(
    "a, b, message",
    [
        (y_true, y_pred[:-1], "8 images but 7 y_pred"),
        (y_true.astype(float), y_pred, "y_true must be a 1-D array of integers"),
        (np.array([], int), np.array([], int), "empty"),
        (y_true, y_pred + 7, r"y_pred must lie in 0\.\.9"),
        (y_true, y_pred[:, None], "y_pred must be a 1-D array"),
    ],
)
def test_bad_labels_are_rejected(a, b, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(a, b)
