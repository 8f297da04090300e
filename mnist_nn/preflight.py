"""Pre-flight checks before a long training run, for "my accuracy is stuck at 10%":
overfit_batch (can the network memorise one small batch?) and find_learning_rate (Smith's
learning-rate range test). Both leave the model's weights as they found them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mnist_nn.model import Model
from mnist_nn.optimizers import DEFAULT_LEARNING_RATES, make_optimizer
from mnist_nn.validation import check_images, check_labels

BOLDER = 3  # overfit_batch's default learning rate, as a multiple of the optimizer's own


@dataclass
class OverfitReport:
    """What overfit_batch saw: the loss at each step, the final accuracy on the batch, whether
    it passed (100%), and what is likely wrong when it did not."""

    passed: bool
    accuracy: float
    losses: list[float] = field(default_factory=list)
    diagnosis: str = ""

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (math.nan, math.nan)
        return (
            f"overfit check {verdict}: {self.accuracy:.0%} of the batch after {len(self.losses)} "
            f"steps (loss {first:.3g} -> {last:.3g}). {self.diagnosis}"
        )


def overfit_batch(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 32,
    n_steps: int = 60,
    optimizer: str = "adam",
    learning_rate: float | None = None,
) -> OverfitReport:
    """Train on the first batch_size images only, n_steps times; a correct network and
    learning rate drive it to 100% (Karpathy's "overfit one batch"). Returns an OverfitReport
    whose diagnosis names the likely culprit: the input scaling, the labels or the learning
    rate. Input that fit would refuse is reported, not raised. The weights are restored.
    learning_rate None: BOLDER times the optimizer's default (one batch tolerates a bolder step,
    and 60 steps at Adam's 1e-3 leave a narrow 784-32-16-10 network at 97%)."""
    try:
        X = check_images(X[:batch_size], model.input_shape)
        y = check_labels(y[:batch_size], len(X), model.n_classes)
    except ValueError as error:
        return OverfitReport(False, 0.0, [], f"The data are wrong: {error}.")
    problem = _data_problem(model.prepare_input(X), y)
    if problem:
        return OverfitReport(False, 0.0, [], problem)
    start = model.get_weights()
    try:
        if learning_rate is None and optimizer in DEFAULT_LEARNING_RATES:
            learning_rate = BOLDER * DEFAULT_LEARNING_RATES[optimizer]
        steps = make_optimizer(optimizer, model.parameters(), learning_rate)
        losses = [_train_step(model, steps, X, y) for _ in range(n_steps)]
        accuracy = float(np.mean(model.predict(X) == y))
    finally:
        model.set_weights(start)
    diagnosis = _diagnose(losses, accuracy, steps.learning_rate)
    return OverfitReport(accuracy == 1.0, accuracy, losses, diagnosis)


def _data_problem(X: np.ndarray, y: np.ndarray) -> str:
    """The mistakes in the data that still train without an error, or ""."""
    counts = np.bincount(y)
    if len(y) >= 8 and counts.max() >= 0.75 * len(y):
        return (
            f"{counts.max()} of the batch's {len(y)} labels are {counts.argmax()}: are the data "
            "sorted by class? Shuffle images and labels together (or check they belong together)."
        )
    highest = float(np.abs(X).max())
    if highest == 0.0:
        return "Every pixel of the batch is 0: the images are blank."
    if highest <= 1.5 / 255:
        return (
            f"The inputs reach only {highest:.2g}: they were divided by 255 twice. Scale the raw "
            "pixels once (or pass the uint8 images as they are)."
        )
    return ""


def _train_step(model: Model, optimizer, X: np.ndarray, y: np.ndarray) -> float:
    """One step of fit's loop: forward, loss, backward, update; returns the loss."""
    with np.errstate(over="ignore", invalid="ignore"):
        _, loss = model.train_step(model.prepare_input(X), y)
        optimizer.step()
    return float(loss)


def _diagnose(losses: list[float], accuracy: float, learning_rate: float) -> str:
    if not all(math.isfinite(loss) for loss in losses) or losses[-1] > 2 * losses[0]:
        return (
            f"The loss blew up: learning rate {learning_rate:g} is too large; try "
            f"{learning_rate / 10:g}."
        )
    if losses[-1] > 0.7 * losses[0]:
        return (
            f"The loss barely fell ({losses[0]:.3g} -> {losses[-1]:.3g}): learning rate "
            f"{learning_rate:g} is too small (try {learning_rate * 10:g}), or the gradients do "
            "not reach the weights (a layer's backward)."
        )
    if accuracy < 1.0:
        return (
            "The loss fell but the batch is not memorised: more steps, a larger learning rate "
            "or a wider network."
        )
    return (
        "The network, its gradients and the learning rate work. If real training still stays "
        "near 10%, check that the labels belong to the images (same order after shuffling)."
    )


@dataclass
class LearningRateRange:
    """The range test's curve: learning_rates[i] and the smoothed loss after step i, and the
    suggested learning rate."""

    learning_rates: np.ndarray
    losses: np.ndarray
    suggested: float


def find_learning_rate(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    optimizer: str = "adam",
    min_learning_rate: float = 1e-6,
    max_learning_rate: float = 1.0,
    n_steps: int = 100,
    batch_size: int = 64,
    seed: int = 0,
) -> LearningRateRange:
    """The learning-rate range test (Smith 2017, "Cyclical learning rates"): one step per
    batch, the learning rate growing geometrically from min to max, until the loss exceeds four
    times its lowest. Suggests a tenth of the rate with the lowest smoothed loss (fast.ai's rule
    of thumb: well before the loss turns up). The weights are restored afterwards."""
    X = check_images(X, model.input_shape)
    y = check_labels(y, len(X), model.n_classes)
    rng = np.random.default_rng(seed)
    rates = np.geomspace(min_learning_rate, max_learning_rate, n_steps)
    start = model.get_weights()
    try:
        steps = make_optimizer(optimizer, model.parameters(), rates[0])
        losses = _range_losses(model, steps, X, y, rates, batch_size, rng)
    finally:
        model.set_weights(start)
    rates = rates[: len(losses)]
    return LearningRateRange(rates, losses, float(rates[np.argmin(losses)] / 10))


def _range_losses(model, optimizer, X, y, rates, batch_size, rng) -> np.ndarray:
    """Smoothed loss (exponential average, bias-corrected) after each step of the range test."""
    smoothed, average, lowest = [], 0.0, math.inf
    for step, rate in enumerate(rates, start=1):
        index = rng.choice(len(X), size=min(batch_size, len(X)), replace=False)
        optimizer.learning_rate = rate
        loss = _train_step(model, optimizer, X[index], y[index])
        if not math.isfinite(loss):
            break
        average = 0.9 * average + 0.1 * loss
        smoothed.append(average / (1 - 0.9**step))
        lowest = min(lowest, smoothed[-1])
        if smoothed[-1] > 4 * lowest:
            break
    return np.array(smoothed)
