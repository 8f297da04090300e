"""mnist_nn: a neural network from scratch in NumPy that reads handwritten digits."""

from mnist_nn.preprocess import (
    flatten,
    minibatch_indices,
    minibatches,
    normalize,
    one_hot,
    train_val_split,
)

__version__ = "0.1.0"

__all__ = [
    "flatten",
    "minibatch_indices",
    "minibatches",
    "normalize",
    "one_hot",
    "train_val_split",
]
