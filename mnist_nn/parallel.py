"""Data parallelism inside one training step: the batch is cut into one slice per core, each slice
runs forward and backward in its own Python thread on a replica of the model, and the slices'
gradients are added up into the model's own grads, as if the whole batch had run at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mnist_nn.layers import Dropout, Layer
from mnist_nn.model import Model


def replicate_layer(layer: Layer) -> Layer:
    """A new layer of the same kind whose params are the original's arrays (shared, so an
    optimizer step on the model moves every replica too), with its own grads and caches."""
    replica = type(layer)(**layer.get_config())
    replica.params = layer.params  # the same dict of the same arrays
    replica.grads = {name: np.zeros_like(param) for name, param in layer.params.items()}
    return replica


def replicate(model: Model) -> Model:
    """A Model sharing `model`'s parameters, with its own grads, layer caches and loss."""
    return Model([replicate_layer(layer) for layer in model.layers], model.input_shape)


class SplitStep:
    """Forward and backward of one batch as n_parts slices, each in its own thread.

    NumPy releases the GIL inside matrix products and most array operations, so the threads
    run at the same time on different cores (with one BLAS thread each: the caller limits
    BLAS). Slice k of n_k images gives the gradient g_k of its own mean loss; the batch's
    mean-loss gradient is their weighted sum, g = sum over k of (n_k / N) g_k, which
    forward_backward writes into the model's grads (equal to the whole batch's up to float
    rounding). The replicas' Dropout layers draw their masks from generators seeded from the
    model's Dropout generators, so a run repeats exactly. The threads are started once and
    kept (starting them for every step costs 1-2 ms); close() ends them.
    """

    def __init__(self, model: Model, n_parts: int = 2) -> None:
        self.model, self.n_parts = model, n_parts
        self.replicas = [replicate(model) for _ in range(n_parts)]
        for index, layer in enumerate(model.layers):
            if isinstance(layer, Dropout):
                seed = int(layer.rng.integers(2**63))
                for part, replica in enumerate(self.replicas):
                    replica.layers[index].rng = np.random.default_rng([seed, part])
        self.pool = ThreadPoolExecutor(n_parts, thread_name_prefix="mnist_nn-split")

    def forward_backward(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Logits Z (N, C) and the mean loss of the batch (X, y); fills the model's grads."""
        bounds = np.linspace(0, len(X), self.n_parts + 1).round().astype(int)
        slices = [
            slice(start, stop)
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
            if stop > start  # a batch smaller than n_parts leaves some replicas idle
        ]
        replicas = self.replicas[: len(slices)]
        results = list(self.pool.map(_forward_backward, replicas, *_parts(X, y, slices)))
        shares = [(part.stop - part.start) / len(X) for part in slices]  # n_k / N
        replica_grads = [[grad for _, grad in replica.parameters()] for replica in replicas]
        for index, (_, grad) in enumerate(self.model.parameters()):
            grad[...] = 0.0
            for grads, share in zip(replica_grads, shares, strict=True):
                grad += share * grads[index]
        Z = np.concatenate([Z_part for Z_part, _ in results])  # (N, C)
        losses = [loss for _, loss in results]
        return Z, float(sum(share * loss for share, loss in zip(shares, losses, strict=True)))

    def close(self) -> None:
        self.pool.shutdown()


def _parts(X: np.ndarray, y: np.ndarray, slices: list[slice]) -> tuple[list, list]:
    return [X[part] for part in slices], [y[part] for part in slices]


def _forward_backward(model: Model, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """One slice: forward, mean loss and backward on its replica (run in a worker thread)."""
    Z = model.forward(X, training=True)  # (n, C)
    loss = model.loss_function.forward(Z, y)
    model.backward(model.loss_function.backward())
    return Z, loss
