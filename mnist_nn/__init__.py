"""mnist_nn: a neural network from scratch in NumPy that reads handwritten digits.

The names here are what a learner or user calls; everything else stays in its module
(e.g. mnist_nn.conv.im2col, mnist_nn.datasets.load_mnist_test_split). Figures: mnist_nn.plots.
"""

from mnist_nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh, relu, softmax
from mnist_nn.conv import Conv2D, Flatten, MaxPool2D
from mnist_nn.datasets import (
    DatasetNotFoundError,
    class_names,
    dataset_folder,
    load_dataset,
    load_mnist,
)
from mnist_nn.digit_check import DigitVerdict, calibrate_digit_check, digit_verdict
from mnist_nn.gradcheck import check_layer, check_model, numerical_gradient, relative_error
from mnist_nn.images import load_digit_image, prepare_digit_image, read_image
from mnist_nn.layers import Dense, Dropout, Layer
from mnist_nn.losses import SoftmaxCrossEntropy
from mnist_nn.metrics import accuracy, confusion_matrix, precision_recall
from mnist_nn.model import Model, build_cnn, build_mlp, build_model
from mnist_nn.model_file import load_model
from mnist_nn.optimizers import SGD, Adam
from mnist_nn.preflight import find_learning_rate, overfit_batch
from mnist_nn.preprocess import flatten, minibatches, normalize, one_hot, train_val_split
from mnist_nn.settings import Settings, env_flag
from mnist_nn.train import (
    History,
    LearningRateWarning,
    TrainingDivergedError,
    TrainingInterrupted,
    build_and_fit,
    fit,
)
from mnist_nn.tuning import cross_validate, grid_search

__version__ = "0.1.0"

# Grouped by module, in the order of the imports above.
__all__ = [
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "relu",
    "softmax",
    "Conv2D",
    "Flatten",
    "MaxPool2D",
    "DatasetNotFoundError",
    "class_names",
    "dataset_folder",
    "load_dataset",
    "load_mnist",
    "DigitVerdict",
    "calibrate_digit_check",
    "digit_verdict",
    "check_layer",
    "check_model",
    "numerical_gradient",
    "relative_error",
    "load_digit_image",
    "prepare_digit_image",
    "read_image",
    "Dense",
    "Dropout",
    "Layer",
    "SoftmaxCrossEntropy",
    "accuracy",
    "confusion_matrix",
    "precision_recall",
    "Model",
    "build_cnn",
    "build_mlp",
    "build_model",
    "load_model",
    "SGD",
    "Adam",
    "find_learning_rate",
    "overfit_batch",
    "flatten",
    "minibatches",
    "normalize",
    "one_hot",
    "train_val_split",
    "Settings",
    "env_flag",
    "History",
    "LearningRateWarning",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "build_and_fit",
    "fit",
    "cross_validate",
    "grid_search",
]
