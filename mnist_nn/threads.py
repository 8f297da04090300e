"""How fit uses the cores: how many threads the matrix products (BLAS) get, or whether each batch
is split over the cores (parallel.py); a fixed number of BLAS threads, or chosen by timing a few
real training steps each way and checked again when epochs slow down.

Two threads are faster on a quiet two-core machine; on a busy one (a shared laptop, Colab's free
tier) they wait for each other and a step can take several times longer than on one thread.
Results are bit-identical for the same choice; History rows record the choice used.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

# Steps below this many multiply-adds (about a millisecond) gain nothing from a second thread,
# and their timings are too noisy to compare: they simply run on one thread.
MIN_WORK_TO_MEASURE = 10_000_000
STEPS_PER_CHOICE = 4  # timed steps for each candidate count, alternated
SLOWDOWN_TO_RECHECK = 1.5  # an epoch this much slower per batch than the best one: measure again
RECHECK_EVERY = 4  # epochs; the machine may have become quiet (or busy) since the last choice
# The candidate "split the batch": one slice per core, each in its own thread on one BLAS thread
# (parallel.SplitStep). 1.1-1.4x faster than two BLAS threads for build_cnn on a quiet two-core
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
