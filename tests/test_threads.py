"""The BLAS thread choice: fixed counts are used, small work stays on one thread, the faster
count wins, and a slowdown (or time) brings a new measurement. The split step: replicas share the
model's parameters, the slices' gradients add up to the whole batch's, and fit with the split
repeats exactly, dropout included."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mnist_nn import threads
from mnist_nn.builders import build_cnn, build_mlp
from mnist_nn.threads import (
    RECHECK_EVERY,
    SPLIT,
    STEPS_PER_CHOICE,
    SplitStep,
    ThreadChooser,
    replicate,
)
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


def full_batch_gradients(model, X, y) -> list[np.ndarray]:
    Z = model.forward(X, training=True)
    model.loss_function.forward(Z, y)
    model.backward(model.loss_function.backward())
    return [grad.copy() for _, grad in model.parameters()]


def test_a_replica_shares_the_parameters_but_not_the_gradients():
    model = build_mlp((8,), n_inputs=12, n_classes=3, seed=0)
    replica = replicate(model)
    for (param, grad), (replica_param, replica_grad) in zip(
        model.parameters(), replica.parameters(), strict=True
    ):
        assert replica_param is param and replica_grad is not grad


@pytest.mark.parametrize("n_images", [1, 7, 16])  # one slice, unequal halves, equal halves
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_the_split_gradients_equal_the_whole_batch_gradients(network, n_images):
    rng = np.random.default_rng(0)
    if network == "mlp":
        model = build_mlp((16, 8), n_inputs=20, n_classes=5, seed=1, dtype=np.float64)
        X = rng.normal(size=(n_images, 20))
    else:
        model = build_cnn((4, 6), input_shape=(1, 8, 8), n_classes=5, seed=1, dtype=np.float64)
        X = rng.normal(size=(n_images, 1, 8, 8))
    y = rng.integers(0, 5, n_images)
    expected = full_batch_gradients(model, X, y)
    Z_expected = model.forward(X)
    loss_expected = model.loss_function.forward(Z_expected, y)
    split = SplitStep(model, n_parts=2)
    Z, loss = split.forward_backward(X, y)
    split.close()
    np.testing.assert_allclose(Z, Z_expected, rtol=1e-12)
    assert loss == pytest.approx(loss_expected, rel=1e-12)
    for want, (_, got) in zip(expected, model.parameters(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_the_split_is_a_candidate_only_when_asked_and_the_work_is_large(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "_blas_threads_now", lambda controller: 2)  # BLAS not limited
    big = 10 * threads.MIN_WORK_TO_MEASURE
    assert ThreadChooser(None, big, can_split=True).candidates == [1, 2, SPLIT]
    assert ThreadChooser(None, big).candidates == [1, 2]
    assert ThreadChooser(None, 1000, can_split=True).candidates == [1]
    assert ThreadChooser(1, big, can_split=True).current == 1  # a fixed count never splits


def fit_with_the_split(monkeypatch, X, y, seed: int) -> tuple[list, list]:
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "_blas_threads_now", lambda controller: 2)  # BLAS not limited
    monkeypatch.setattr(threads, "STEPS_PER_CHOICE", 1)
    monkeypatch.setattr(ThreadChooser, "_fastest", lambda self: SPLIT)
    # The same choice throughout: no new measurement (with its steps on 1 and 2 threads)
    # after an epoch that happened to run slowly.
    monkeypatch.setattr(threads, "SLOWDOWN_TO_RECHECK", float("inf"))
    model = build_mlp((64,), dropout=0.3, seed=seed)
    history = fit(model, X, y, n_epochs=3, batch_size=100, progress=False)
    return [param.copy() for param, _ in model.parameters()], history["threads"]


def test_fit_with_the_split_repeats_exactly_with_dropout(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), rng.integers(0, 10, 300)
    weights, chosen = fit_with_the_split(monkeypatch, X, y, seed=3)
    again, _ = fit_with_the_split(monkeypatch, X, y, seed=3)
    other_seed, _ = fit_with_the_split(monkeypatch, X, y, seed=4)
    assert chosen == [SPLIT] * 3
    assert all(np.array_equal(a, b) for a, b in zip(weights, again, strict=True))
    assert not np.array_equal(weights[0], other_seed[0])
