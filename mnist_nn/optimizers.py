"""Optimizers that update parameters in place from their gradients (SGD, momentum, Nesterov, Adam)
and learning-rate schedules (constant, step decay, cosine)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

# Momentum and Adam state decays geometrically wherever a gradient stays zero (dead ReLU units,
# blank border pixels) and ends up among float32's subnormal numbers (below 1.2e-38), on which
# CPUs compute many times more slowly. Every FLUSH_EVERY steps, values smaller than FLUSH_BELOW
# are set to zero: far too small to move any weight, so training is unchanged, only faster.
FLUSH_EVERY = 32
FLUSH_BELOW = 1e-30


class Optimizer:
    """Base class: holds (param, grad) pairs, e.g. model.parameters(), and a learning rate.

    step() updates every param in place from its grad; state arrays (velocity, moments) are
    allocated once here, next to scratch buffers, so a step allocates no memory.
    """

    def __init__(self, params: Iterable[tuple[np.ndarray, np.ndarray]], learning_rate: float):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters; pass model.parameters()")
        self.learning_rate = learning_rate
        self.step_count = 0
        self._scratch = [np.empty_like(param) for param, _ in self.params]

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        value = float(value)
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"learning_rate must be a positive number, got {value}")
        self._learning_rate = value

    def step(self) -> None:
        self.step_count += 1
        self._update()
        if self.step_count % FLUSH_EVERY == 0:
            for state in self._state_arrays():
                if state.dtype == np.float32:
                    np.copyto(state, 0.0, where=np.abs(state) < FLUSH_BELOW)

    def _update(self) -> None:
        raise NotImplementedError

    def _state_arrays(self) -> list[np.ndarray]:
        return []


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (classical or Nesterov).

        plain:     W <- W - lr g
        momentum:  v <- mu v + g,   W <- W - lr v
        Nesterov:  v <- mu v + g,   W <- W - lr (g + mu v)

    This is the form PyTorch uses (Sutskever et al., 2013, rewritten so that v does not depend on
    the learning rate, which keeps a schedule's changes smooth).
    """

    def __init__(
        self,
        params: Iterable[tuple[np.ndarray, np.ndarray]],
        learning_rate: float = 0.1,
        momentum: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, learning_rate)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("Nesterov needs a momentum above 0, e.g. momentum=0.9")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.velocities = [np.zeros_like(param) for param, _ in self.params]

    def _update(self) -> None:
        lr, mu = self.learning_rate, self.momentum
        for (W, g), v, scratch in zip(self.params, self.velocities, self._scratch, strict=True):
            if mu == 0.0:
                step = g
            else:
                v *= mu
                v += g
                if self.nesterov:
                    np.multiply(v, mu, out=scratch)
                    scratch += g
                    step = scratch
                else:
                    step = v
            np.multiply(step, lr, out=scratch)
            W -= scratch

    def _state_arrays(self) -> list[np.ndarray]:
        return self.velocities if self.momentum else []


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015): momentum on the gradient, step size scaled per weight by a
    running estimate of the gradient's magnitude, both bias-corrected for their zero start.

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2          (t = step number)
        W <- W - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)
    """

    def __init__(
        self,
        params: Iterable[tuple[np.ndarray, np.ndarray]],
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, learning_rate)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta}")
        if eps <= 0.0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m = [np.zeros_like(param) for param, _ in self.params]
        self.v = [np.zeros_like(param) for param, _ in self.params]

    def _update(self) -> None:
        t = self.step_count
        b1, b2 = self.beta1, self.beta2
        # Bias corrections folded into two scalars (Kingma and Ba, section 2): multiplying
        # numerator and denominator by sqrt(1 - b2^t) gives exactly the same step,
        # lr m_hat / (sqrt(v_hat) + eps) = step_size * m / (sqrt(v) + eps_hat).
        root_correction = math.sqrt(1.0 - b2**t)
        step_size = self.learning_rate * root_correction / (1.0 - b1**t)
        eps_hat = self.eps * root_correction
        for (W, g), m, v, scratch in zip(self.params, self.m, self.v, self._scratch, strict=True):
            # m += (1 - b1) (g - m) is m <- b1 m + (1 - b1) g with one buffer and no temporary.
            np.subtract(g, m, out=scratch)
            scratch *= 1.0 - b1
            m += scratch
            np.multiply(g, g, out=scratch)
            scratch -= v
            scratch *= 1.0 - b2
            v += scratch
            np.sqrt(v, out=scratch)
            scratch += eps_hat
            np.divide(m, scratch, out=scratch)
            scratch *= step_size
            W -= scratch

    def _state_arrays(self) -> list[np.ndarray]:
        return self.m + self.v


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")


def make_optimizer(
    name: str,
    params: Iterable[tuple[np.ndarray, np.ndarray]],
    learning_rate: float | None = None,
    **kwargs,
) -> Optimizer:
    """Optimizer by name: "sgd", "momentum" (SGD, momentum 0.9), "nesterov", or "adam".

    learning_rate=None picks a sensible default: 0.1 for sgd, 0.01 with momentum, 1e-3 for adam.
    kwargs go to the constructor (e.g. momentum=0.95, beta2=0.99).
    """
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid names are {list(OPTIMIZERS)}")
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[key]
    if key == "adam":
        return Adam(params, learning_rate, **kwargs)
    if key != "sgd":
        kwargs.setdefault("momentum", 0.9)
    return SGD(params, learning_rate, nesterov=key == "nesterov", **kwargs)


DEFAULT_LEARNING_RATES = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 1e-3}


@dataclass(frozen=True)
class ConstantSchedule:
    """lr(epoch) = learning_rate."""

    learning_rate: float

    def __call__(self, epoch: int) -> float:
        return self.learning_rate


@dataclass(frozen=True)
class StepSchedule:
    """lr(epoch) = learning_rate * gamma ** (epoch // step_size): drop by gamma every few epochs."""

    learning_rate: float
    step_size: int = 10
    gamma: float = 0.5

    def __call__(self, epoch: int) -> float:
        return self.learning_rate * self.gamma ** (epoch // self.step_size)


@dataclass(frozen=True)
class CosineSchedule:
    """lr(epoch) = min_lr + (learning_rate - min_lr) (1 + cos(pi epoch / n_epochs)) / 2
    (Loshchilov and Hutter, 2017, without restarts): from learning_rate down to min_lr."""

    learning_rate: float
    n_epochs: int
    min_learning_rate: float = 0.0

    def __call__(self, epoch: int) -> float:
        progress = min(epoch, self.n_epochs) / self.n_epochs
        span = self.learning_rate - self.min_learning_rate
        return self.min_learning_rate + span * 0.5 * (1.0 + math.cos(math.pi * progress))


SCHEDULES = ("constant", "step", "cosine")


def make_schedule(
    name: str,
    learning_rate: float,
    *,
    n_epochs: int | None = None,
    step_size: int = 10,
    gamma: float = 0.5,
    min_learning_rate: float = 0.0,
) -> Callable[[int], float]:
    """Schedule by name: a callable from the epoch index (0 for the first epoch) to a learning rate.

    "constant"; "step" (times `gamma` every `step_size` epochs); "cosine" (needs `n_epochs`, decays
    to `min_learning_rate` at the end of training).
    """
    key = str(name).lower()
    if key not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid names are {list(SCHEDULES)}")
    if key == "constant":
        return ConstantSchedule(learning_rate)
    if key == "step":
        if step_size < 1 or not 0.0 < gamma <= 1.0:
            raise ValueError(
                f"step schedule needs step_size >= 1 and 0 < gamma <= 1, got {step_size}, {gamma}"
            )
        return StepSchedule(learning_rate, step_size, gamma)
    if n_epochs is None or n_epochs < 1:
        raise ValueError(f"the cosine schedule needs n_epochs >= 1, got {n_epochs}")
    return CosineSchedule(learning_rate, n_epochs, min_learning_rate)
