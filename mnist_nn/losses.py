"""Softmax cross-entropy: the loss of a classifier, fused with softmax so that it is stable and its
gradient is simply (P - Y) / N."""

from __future__ import annotations

import numpy as np


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(Z) against integer labels y, over the batch.

        L = (1/N) sum_i [ log sum_k exp(Z[i, k]) - Z[i, y_i] ]       Z (N, C) logits, y (N,)
        dL/dZ = (P - Y) / N                                          P = softmax(Z), Y one-hot

    log-sum-exp is computed after subtracting each row's maximum, so exp never overflows and the
    loss never takes log(0). L2 weight decay is not part of this class: Model.apply_weight_decay
    adds it, because it depends on the weights, not on the logits.
    """

    def __init__(self) -> None:
        self.P: np.ndarray | None = None
        self.y: np.ndarray | None = None

    def forward(self, Z: np.ndarray, y: np.ndarray) -> float:
        N = len(Z)
        rows = np.arange(N)
        Z_shifted = Z - Z.max(axis=1, keepdims=True)  # (N, C), each row's maximum is 0
        E = np.exp(Z_shifted)  # (N, C), values in [0, 1], the largest exactly 1
        row_sums = E.sum(axis=1)  # (N,), at least 1, so its log is safe
        E /= row_sums[:, None]  # now P
        self.P, self.y = E, y
        return float(np.mean(np.log(row_sums) - Z_shifted[rows, y]))

    def backward(self) -> np.ndarray:
        """dL/dZ (N, C) for the batch of the last forward call."""
        N = len(self.P)
        dZ = self.P.copy()  # (N, C)
        dZ[np.arange(N), self.y] -= 1.0
        dZ *= 1.0 / N
        return dZ
