"""mnist_nn: a neural network from scratch in NumPy that reads handwritten digits.

The names here are what a learner or user calls; everything else stays in its module
(e.g. mnist_nn.conv.im2col, mnist_nn.datasets.load_mnist_test_split). Figures: mnist_nn.plots.

Reading order (docs/package.md has every module). The core, the whole algorithm, imports
nothing else from the package:
  1. layers.py       the Layer interface, Dense, Dropout
  2. activations.py  ReLU, LeakyReLU, Sigmoid, Tanh, Softmax
  3. losses.py       softmax cross-entropy
  4. model.py        Model: forward, backward, train_step, predict, evaluate
  5. optimizers.py   SGD (momentum, Nesterov), Adam, learning-rate schedules
  6. loop.py         train_epochs: the training loop of the walkthrough's section 9
  7. gradcheck.py    checking every backward pass with central differences
  8. conv.py         Conv2D (im2col), MaxPool2D, Flatten
Around it: train.py (fit: the loop with its guard rails), builders.py (build_mlp, build_cnn),
settings.py, threads.py (the cores, for the command line); the data: datasets.py, idx.py,
preprocess.py, augment.py; and the tools: model_file.py, preflight.py, tuning.py, plots.py,
widgets.py, cli.py.
"""

from mnist_nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh, relu, softmax
from mnist_nn.builders import build_cnn, build_mlp, build_model
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
from mnist_nn.loop import train_epochs
from mnist_nn.losses import SoftmaxCrossEntropy
from mnist_nn.metrics import accuracy, confusion_matrix, precision_recall
from mnist_nn.model import Model
from mnist_nn.model_file import load_model
from mnist_nn.optimizers import SGD, Adam
from mnist_nn.preflight import find_learning_rate, overfit_batch
from mnist_nn.preprocess import flatten, minibatches, normalize, one_hot, train_val_split
from mnist_nn.settings import Settings, env_flag
from mnist_nn.train import (
    History,
    LearningRateWarning,
    NothingLearnedWarning,
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
    "build_cnn",
    "build_mlp",
    "build_model",
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
    "train_epochs",
    "SoftmaxCrossEntropy",
    "accuracy",
    "confusion_matrix",
    "precision_recall",
    "Model",
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
    "NothingLearnedWarning",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "build_and_fit",
    "fit",
    "cross_validate",
    "grid_search",
]
