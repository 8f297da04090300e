"""Classification metrics from true and predicted labels: accuracy, confusion matrix, and
per-class precision and recall."""

from __future__ import annotations

import numpy as np

from mnist_nn.validation import check_labels


def _check_pair(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None) -> tuple:
    y_true = check_labels(y_true, n_classes=n_classes, name="y_true")
    y_pred = check_labels(y_pred, len(y_true), n_classes=n_classes, name="y_pred")
    return y_true, y_pred


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of samples whose predicted label equals the true one."""
    y_true, y_pred = _check_pair(y_true, y_pred, None)
    return float(np.count_nonzero(y_true == y_pred)) / len(y_true)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """C[i, j] = number of samples of true class i predicted as class j.  (n_classes, n_classes)

    Each pair (i, j) is numbered i * n_classes + j and counted with one np.bincount.
    """
    y_true, y_pred = _check_pair(y_true, y_pred, n_classes)
    pair_index = y_true.astype(np.int64) * n_classes + y_pred
    counts = np.bincount(pair_index, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def precision_recall(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall, each (n_classes,).

    precision[k] = C[k, k] / sum_i C[i, k]   (of the samples predicted k, the share really k)
    recall[k]    = C[k, k] / sum_j C[k, j]   (of the samples really k, the share predicted k)
    A class never predicted (or never present) gets 0 rather than a division by zero.
    """
    C = confusion_matrix(y_true, y_pred, n_classes)
    correct = np.diag(C).astype(np.float64)
    predicted, actual = C.sum(axis=0), C.sum(axis=1)
    precision = np.divide(correct, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(correct, actual, out=np.zeros(n_classes), where=actual > 0)
    return precision, recall
