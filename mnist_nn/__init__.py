"""mnist_nn: a neural network from scratch in NumPy that reads handwritten digits."""

from mnist_nn.datasets import (
    ChecksumWarning,
    DatasetNotFoundError,
    DatasetSpec,
    RemoteFile,
    dataset_folder,
    default_data_dir,
    load_dataset,
    load_mnist,
)
from mnist_nn.idx import IDXError, read_idx, write_idx
from mnist_nn.preprocess import (
    flatten,
    minibatch_indices,
    minibatches,
    normalize,
    one_hot,
    train_val_split,
)
from mnist_nn.synthetic import load_synthetic, make_synthetic_digits

__version__ = "0.1.0"

__all__ = [
    "ChecksumWarning",
    "DatasetNotFoundError",
    "DatasetSpec",
    "IDXError",
    "RemoteFile",
    "dataset_folder",
    "default_data_dir",
    "flatten",
    "load_dataset",
    "load_mnist",
    "load_synthetic",
    "make_synthetic_digits",
    "minibatch_indices",
    "minibatches",
    "normalize",
    "one_hot",
    "read_idx",
    "train_val_split",
    "write_idx",
]
