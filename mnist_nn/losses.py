"""Softmax cross-entropy: the loss of a classifier, fused with softmax so that it is stable and its
gradient is simply (P - Y) / N."""

from __future__ import annotations

import numpy as np

from mnist_nn.activations import log_softmax


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(Z) against integer labels y, over the batch.

        L = (1/N) sum_i [ log sum_k exp(Z[i, k]) - Z[i, y_i] ] = -(1/N) sum_i log P[i, y_i]
        dL/dZ = (P - Y) / N                          Z (N, C) logits, y (N,), Y one-hot (N, C)

    log P comes from log_softmax, which never overflows and never takes log(0), so even a
    confidently wrong prediction gives a large finite loss. L2 weight decay is not part of this
    class: Model.apply_weight_decay adds it, because it depends on the weights, not on the logits.
    """

    def __init__(self) -> None:
        self.P: np.ndarray | None = None
        self.y: np.ndarray | None = None

    def forward(self, Z: np.ndarray, y: np.ndarray) -> float:
        log_P = log_softmax(Z)  # (N, C)
        loss = -float(np.mean(log_P[np.arange(len(Z)), y]))
        self.P, self.y = np.exp(log_P, out=log_P), y  # (N, C), kept for backward
        return loss

    def backward(self) -> np.ndarray:
        """dL/dZ (N, C) for the batch of the last forward call."""
        N = len(self.P)
        dZ = self.P.copy()  # (N, C)
        dZ[np.arange(N), self.y] -= 1.0
        dZ *= 1.0 / N
        return dZ
