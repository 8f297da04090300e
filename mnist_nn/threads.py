"""How fit uses the cores, a tool around the training loop (loop.py never sees it): how many
threads the matrix products (BLAS) get, or whether each batch is split over the cores (SplitStep);
a fixed number of BLAS threads, or chosen by timing a few real training steps each way and checked
again when epochs slow down. fit enters it through steps_for; it pays on the command line, and
does nothing in the notebook, whose one BLAS thread leaves one candidate.

Two threads are faster on a quiet two-core machine; on a busy one (a shared laptop, Colab's free
tier) they wait for each other and a step can take several times longer than on one thread.
Results are bit-identical for the same choice; History rows record the choice used.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
from threadpoolctl import ThreadpoolController

from mnist_nn.layers import Dropout, Layer
from mnist_nn.model import Model

# Steps below this many multiply-adds (about a millisecond) gain nothing from a second thread,
# and their timings are too noisy to compare: they simply run on one thread.
MIN_WORK_TO_MEASURE = 10_000_000
STEPS_PER_CHOICE = 4  # timed steps for each candidate count, alternated
SLOWDOWN_TO_RECHECK = 1.5  # an epoch this much slower per batch than the best one: measure again
RECHECK_EVERY = 4  # epochs; the machine may have become quiet (or busy) since the last choice
# The candidate "split the batch": one slice per core, each in its own thread on one BLAS thread
# (SplitStep below). 1.1-1.4x faster than two BLAS threads for build_cnn on a quiet two-core
# machine, 2x slower for the small default MLP, whose steps are too short to share out.
SPLIT = "split"


def available_cores() -> int:
    """The cores this process may run on (its affinity where the OS says, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _blas_threads_now(controller: ThreadpoolController) -> int:
    """The most threads any loaded BLAS may use now (all cores when nothing limits them)."""
    libraries = controller.select(user_api="blas").lib_controllers
    return max((library.num_threads for library in libraries), default=available_cores())


class ThreadChooser:
    """Sets BLAS's thread count around each training step, and says whether to split the batch.

    n_threads: a fixed count (never SPLIT), or None to choose: the first steps alternate between
    one thread, all cores and, with can_split, SPLIT; STEPS_PER_CHOICE timed steps each, and the
    fastest median wins, so a split that is slower (a busy machine, a small network) is never
    kept. After an epoch that ran SLOWDOWN_TO_RECHECK times slower per batch than the best so
    far, the next epoch's first steps measure again, as they do every RECHECK_EVERY epochs.
    "All cores" is no more than BLAS may use when fit starts: threadpool_limits(1) around fit,
    as in the notebook, keeps it at one thread, so results repeat exactly.
    """

    def __init__(
        self, n_threads: int | None, work_per_step: float, can_split: bool = False
    ) -> None:
        self.controller = ThreadpoolController()
        self.fixed = n_threads is not None
        self.most = min(available_cores(), _blas_threads_now(self.controller))
        self.candidates: list[int | str] = [1]
        if self.most > 1 and work_per_step >= MIN_WORK_TO_MEASURE:
            self.candidates += [self.most, SPLIT] if can_split else [self.most]
        self.current = n_threads if self.fixed else self.candidates[0]
        self.timings: dict[int | str, list[float]] = {}
        self.measuring = not self.fixed and len(self.candidates) > 1
        self.best_batch_seconds = float("inf")
        self.epochs_since_choice = 0

    @contextmanager
    def step(self, measure: bool = True) -> Iterator[int | str]:
        """Run one training step under the chosen candidate, or under the one being timed, and
        yield it (SPLIT: split the batch, one BLAS thread per slice). measure=False runs other
        work (validation) untimed, under the chosen count (all cores if SPLIT was chosen)."""
        timed = measure and self.measuring
        choice = self._next_count() if timed else self.current
        count = choice
        if choice == SPLIT:  # one BLAS thread per slice; other work gets them all
            count = 1 if measure else self.most
        limiter = self.controller.limit(limits=count, user_api="blas")
        start = time.perf_counter()
        try:
            yield choice
        finally:
            limiter.restore_original_limits()
        if timed:
            self._record(choice, time.perf_counter() - start)

    def _next_count(self) -> int | str:
        n_timed = sum(len(times) for times in self.timings.values())
        return self.candidates[n_timed % len(self.candidates)]

    def _record(self, choice: int | str, seconds: float) -> None:
        self.timings.setdefault(choice, []).append(seconds)
        if all(len(self.timings.get(c, [])) >= STEPS_PER_CHOICE for c in self.candidates):
            self.current = self._fastest()
            self.measuring, self.timings, self.epochs_since_choice = False, {}, 0

    def _fastest(self) -> int | str:
        return min(self.candidates, key=lambda c: statistics.median(self.timings[c]))

    def epoch_done(self, seconds_per_batch: float) -> None:
        """Measure again when this epoch ran much slower per batch than the best one, or after
        RECHECK_EVERY epochs."""
        if self.fixed or len(self.candidates) == 1:
            return
        self.epochs_since_choice += 1
        slower = seconds_per_batch > SLOWDOWN_TO_RECHECK * self.best_batch_seconds
        if slower or self.epochs_since_choice >= RECHECK_EVERY:
            self.measuring, self.timings = True, {}
        self.best_batch_seconds = min(self.best_batch_seconds, seconds_per_batch)

    @contextmanager
    def outside_steps(self) -> Iterator[None]:
        """BLAS limited to the chosen count (all cores if SPLIT) for the work between the timed
        steps (validation, the checks, the probes); limit_outside_steps follows a new choice."""
        limiter = self.limit_outside_steps()
        try:
            yield
        finally:
            limiter.restore_original_limits()

    def limit_outside_steps(self):
        return self.controller.limit(
            limits=self.most if self.current == SPLIT else self.current, user_api="blas"
        )


StepFunction = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]]


@contextmanager
def steps_for(
    model: Model, n_threads: int | None, batch_size: int
) -> Iterator[tuple[ThreadChooser, StepFunction | None]]:
    """fit's use of the cores: the ThreadChooser, and the forward -> loss -> backward function
    the training loop should call instead of model.train_step (None when there is nothing to
    time or split: a fixed count or one candidate, set for the whole epoch by outside_steps)."""
    if n_threads is not None and n_threads > available_cores():
        # More BLAS threads than cores only wait on each other (60-400x slower was measured).
        warnings.warn(
            f"n_threads={n_threads} is more than the {available_cores()} usable cores; "
            f"using {available_cores()}",
            stacklevel=4,
        )
        n_threads = available_cores()
    work_per_step = 3 * sum(model.multiply_adds_per_sample()) * batch_size
    chooser = ThreadChooser(n_threads, work_per_step, can_split=True)
    splits: list[SplitStep] = []  # made at the first split step

    def timed_step(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        measuring = chooser.measuring
        with chooser.step() as choice:
            if choice == SPLIT and not splits:
                splits.append(SplitStep(model, chooser.most))
            split = choice == SPLIT
            Z, loss = splits[0].forward_backward(X, y) if split else model.train_step(X, y)
        if measuring and not chooser.measuring:  # just chosen: validation runs on it too
            chooser.limit_outside_steps()  # outside_steps restores the limits fit started with
        return Z, loss

    try:
        yield chooser, None if chooser.fixed or len(chooser.candidates) == 1 else timed_step
    finally:
        for split in splits:
            split.close()


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
    """One slice on its replica (run in a worker thread): logits (n, C) and mean loss."""
    return model.train_step(X, y)
