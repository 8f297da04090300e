"""mnist_nn: a neural network from scratch in NumPy that reads handwritten digits."""

from mnist_nn.activations import (
    ACTIVATIONS,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    leaky_relu,
    leaky_relu_derivative,
    make_activation,
    relu,
    relu_derivative,
    sigmoid,
    sigmoid_derivative,
    softmax,
    softmax_backward,
    tanh,
    tanh_derivative,
)
from mnist_nn.gradcheck import check_layer, check_model, numerical_gradient, relative_error
from mnist_nn.layers import LAYER_TYPES, Dense, Dropout, Layer, register_layer
from mnist_nn.losses import SoftmaxCrossEntropy
from mnist_nn.metrics import accuracy, confusion_matrix, precision_recall
from mnist_nn.model import Evaluation, Model, build_mlp, load_model
from mnist_nn.optimizers import SGD, Adam, Optimizer, make_optimizer, make_schedule
from mnist_nn.preprocess import (
    flatten,
    minibatch_indices,
    minibatches,
    normalize,
    one_hot,
    train_val_split,
)
from mnist_nn.train import History, TrainConfig, TrainingDivergedError, fit

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "LAYER_TYPES",
    "SGD",
    "Adam",
    "Dense",
    "Dropout",
    "Evaluation",
    "History",
    "Layer",
    "LeakyReLU",
    "Model",
    "Optimizer",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Tanh",
    "TrainConfig",
    "TrainingDivergedError",
    "accuracy",
    "build_mlp",
    "check_layer",
    "check_model",
    "confusion_matrix",
    "fit",
    "flatten",
    "leaky_relu",
    "leaky_relu_derivative",
    "load_model",
    "make_activation",
    "make_optimizer",
    "make_schedule",
    "minibatch_indices",
    "minibatches",
    "normalize",
    "numerical_gradient",
    "one_hot",
    "precision_recall",
    "register_layer",
    "relative_error",
    "relu",
    "relu_derivative",
    "sigmoid",
    "sigmoid_derivative",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_derivative",
    "train_val_split",
]
