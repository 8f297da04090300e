"""The BLAS thread choice: fixed counts are used, small work stays on one thread, the faster
count wins, and a slowdown (or time) brings a new measurement."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from mnist_nn import threads
from mnist_nn.builders import build_mlp
from mnist_nn.threads import RECHECK_EVERY, STEPS_PER_CHOICE, ThreadChooser
from mnist_nn.train import fit

BIG_WORK = 10 * threads.MIN_WORK_TO_MEASURE


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def two_cores(monkeypatch) -> None:
    """Pretend to run on two cores with BLAS free to use both, whatever this machine has."""
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "_blas_threads_now", lambda controller: 2)


def test_a_limit_set_around_fit_is_kept(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    with threadpool_limits(1):  # as the notebook does
        chooser = ThreadChooser(n_threads=None, work_per_step=BIG_WORK)
    assert chooser.candidates == [1] and not chooser.measuring


def test_a_fixed_count_is_used_during_each_step():
    chooser = ThreadChooser(n_threads=1, work_per_step=BIG_WORK)
    with chooser.step():
        assert blas_threads() <= {1}
    assert not chooser.measuring and chooser.current == 1


def test_small_steps_run_on_one_thread_without_measuring():
    chooser = ThreadChooser(n_threads=None, work_per_step=1000)
    assert chooser.candidates == [1] and not chooser.measuring


def test_the_faster_count_wins(monkeypatch):
    two_cores(monkeypatch)
    chooser = ThreadChooser(n_threads=None, work_per_step=BIG_WORK)
    assert chooser.measuring and chooser.candidates == [1, 2]
    seconds = {1: 0.030, 2: 0.010}  # as on a quiet machine: two threads three times faster
    for _ in range(2 * STEPS_PER_CHOICE):
        chooser._record(chooser._next_count(), seconds[chooser._next_count()])
    assert not chooser.measuring and chooser.current == 2


def test_a_slow_epoch_or_time_brings_a_new_measurement(monkeypatch):
    two_cores(monkeypatch)
    chooser = ThreadChooser(n_threads=None, work_per_step=BIG_WORK)
    chooser.measuring = False
    chooser.epoch_done(0.010)
    assert not chooser.measuring
    chooser.epoch_done(0.020)  # twice as slow per batch: the machine got busy
    assert chooser.measuring
    chooser.measuring, chooser.epochs_since_choice = False, 0
    for _ in range(RECHECK_EVERY):
        chooser.epoch_done(0.010)
    assert chooser.measuring


def test_fit_records_the_count_and_repeats_exactly_for_a_fixed_count():
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), rng.integers(0, 10, 300)
    runs = []
    for _ in range(2):
        model = build_mlp((64,), seed=3)
        history = fit(model, X, y, n_epochs=2, batch_size=150, n_threads=1, progress=False)
        runs.append([param.copy() for param, _ in model.parameters()])
        assert history["threads"] == [1, 1]
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))
