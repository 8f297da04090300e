"""Settings: every knob of one run, the network to build and how to train it, in one frozen
dataclass. fit, tuning, the command line and the benchmark all take it; History and saved models
record it, and Settings.from_dict(settings.to_dict()) gives it back exactly."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

import numpy as np

from mnist_nn.activations import HIDDEN_ACTIVATIONS
from mnist_nn.augment import AUGMENTATIONS
from mnist_nn.optimizers import OPTIMIZERS, SCHEDULES

MODELS = ("mlp", "cnn")


def _knob(default, help: str, **metadata):
    """A field with the help text the command line shows for it."""
    return field(default=default, metadata={"help": help, **metadata})


@dataclass(frozen=True)
class Settings:
    """One run's settings. Change a copy with settings.replace(n_epochs=5).

    The default network, 784-128-64-10 with ReLU and Adam, is the one the command line trains, the
    tuning starts from and the benchmark times: big enough to pass 97% on MNIST, small enough to
    train in seconds per epoch on two cores.
    """

    model: str = _knob("mlp", "mlp: dense layers; cnn: conv 5x5 -> ReLU -> max-pool blocks")
    hidden_sizes: tuple[int, ...] = _knob((128, 64), "units of each hidden layer (mlp)")
    activation: str = _knob("relu", "hidden activation (mlp; the cnn uses relu)")
    dropout: float = _knob(0.0, "dropout rate after each hidden layer (mlp)")
    n_filters: tuple[int, ...] = _knob((16, 32), "filters of each conv block (cnn)")
    optimizer: str = _knob("adam", "how the weights are updated")
    learning_rate: float | None = _knob(
        None, "step size (default: the optimizer's, 0.1 sgd, 0.01 momentum, 0.001 adam)"
    )
    schedule: str = _knob(
        "constant", "learning rate per epoch: constant, step (halved every 10) or cosine (to 0)"
    )
    batch_size: int = _knob(128, "images per update")
    n_epochs: int = _knob(10, "passes over the training images")
    weight_decay: float = _knob(0.0, "L2 penalty (lambda / 2) sum W^2 on the weights")
    patience: int | None = _knob(
        None, "stop after this many epochs without a lower validation loss (default: never)"
    )
    seed: int = _knob(0, "drives the initial weights, dropout and the shuffling")
    n_threads: int | None = _knob(
        None,
        "threads for the matrix products (default: fit times one thread, all cores, and each "
        "batch split over the cores, and picks the fastest; results repeat exactly for the "
        "same choice)",
    )
    augment: str = _knob(
        "none",
        "random distortions of each training batch, new every epoch: none; affine (shift, "
        "rotation, scale, shear); elastic (a milder affine map and Simard's elastic field)",
    )

    def __post_init__(self) -> None:
        # Plain Python values, so equal settings compare, hash and print equal: 64 -> (64,),
        # np.int64(128) -> 128, [128, 64] -> (128, 64).
        for name, value in _normalised(self).items():
            object.__setattr__(self, name, value)
        _check_ranges(self)

    def replace(self, **changes) -> Settings:
        """A copy with some settings changed; an unknown name raises ValueError."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-able data (tuples become lists)."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict) -> Settings:
        """The inverse of to_dict; missing names take their defaults."""
        _check_names(values)
        return cls(**values)


FIELD_NAMES = tuple(knob.name for knob in dataclasses.fields(Settings))
# The settings that describe the network itself (the rest say how it is trained).
NETWORK_FIELDS = ("model", "hidden_sizes", "activation", "dropout", "n_filters")


TRUE_WORDS = ("1", "true", "yes", "on")


def env_flag(name: str) -> bool:
    """Whether environment variable `name` is 1, true, yes or on, in any case (as for
    MNIST_NN_QUICK, the notebook's quick mode); unset, empty or anything else is False."""
    return os.environ.get(name, "").strip().lower() in TRUE_WORDS


def _check_names(values: dict) -> None:
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; valid names are {list(FIELD_NAMES)}")


def _normalised(settings: Settings) -> dict:
    values = {
        name: _as_sizes(name, getattr(settings, name)) for name in ("hidden_sizes", "n_filters")
    }
    for name in ("batch_size", "n_epochs", "seed"):
        values[name] = _as_int(name, getattr(settings, name))
    for name in ("patience", "n_threads"):
        if getattr(settings, name) is not None:
            values[name] = _as_int(name, getattr(settings, name))
    for name in ("dropout", "weight_decay"):
        values[name] = _as_float(name, getattr(settings, name))
    if settings.learning_rate is not None:
        values["learning_rate"] = _as_float("learning_rate", settings.learning_rate)
    for name in ("model", "activation", "optimizer", "schedule", "augment"):
        values[name] = str(getattr(settings, name)).lower().replace("-", "_")
    return values


def _as_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _as_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _as_sizes(name: str, value) -> tuple[int, ...]:
    if isinstance(value, int | np.integer):
        value = (value,)
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a list of whole numbers such as (128, 64), got {value!r}")
    return tuple(_as_int(name, size) for size in value)


# The settings that name one of a few choices, and those choices.
CHOICES = {
    "model": MODELS,
    "activation": HIDDEN_ACTIVATIONS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "augment": tuple(AUGMENTATIONS),
}


def _check_ranges(settings: Settings) -> None:
    """Raise ValueError naming the first setting outside its valid range."""
    for name, valid in CHOICES.items():
        if getattr(settings, name) not in valid:
            raise ValueError(f"unknown {name} {getattr(settings, name)!r}; choose one of {valid}")
    at_least_one = {"batch_size": settings.batch_size, "n_epochs": settings.n_epochs}
    at_least_one["patience"] = 1 if settings.patience is None else settings.patience
    at_least_one["n_threads"] = 1 if settings.n_threads is None else settings.n_threads
    at_least_one["hidden_sizes"] = min(settings.hidden_sizes, default=1)
    at_least_one["n_filters"] = min(settings.n_filters, default=0)
    for name, value in at_least_one.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(settings, name)}")
    _check_numbers(settings)


def _check_numbers(settings: Settings) -> None:
    if not 0.0 <= settings.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {settings.dropout}")
    if not (math.isfinite(settings.weight_decay) and settings.weight_decay >= 0.0):
        raise ValueError(f"weight_decay must be 0 or positive, got {settings.weight_decay}")
    rate = settings.learning_rate
    if rate is not None and not (math.isfinite(rate) and rate > 0.0):
        raise ValueError(f"learning_rate must be a positive number (or None), got {rate}")
    if settings.seed < 0:
        raise ValueError(f"seed must be 0 or positive, got {settings.seed}")
    if settings.model == "cnn" and (settings.dropout or settings.activation != "relu"):
        raise ValueError(
            "dropout and activation are for the mlp; the cnn is conv -> relu -> max-pool blocks "
            "without dropout, sized by n_filters"
        )
