"""Optimizer steps against values worked out by hand, and learning-rate schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnist_nn import optimizers
from mnist_nn.optimizers import SGD, Adam, make_optimizer, make_schedule


def one_weight(value=1.0):
    """A single weight W = value with a gradient array to fill in."""
    return np.array([value]), np.zeros(1)


def run(optimizer_class, gradients, **kwargs):
    W, g = one_weight()
    optimizer = optimizer_class([(W, g)], **kwargs)
    trajectory = []
    for gradient in gradients:
        g[:] = gradient
        optimizer.step()
        trajectory.append(float(W[0]))
    return trajectory


def test_plain_sgd():
    # W = 1 - 0.1 * 0.5 = 0.95, then 0.95 - 0.1 * (-1) = 1.05
    assert run(SGD, [0.5, -1.0], learning_rate=0.1) == pytest.approx([0.95, 1.05])


def test_momentum():
    # v1 = 0.5, W1 = 1 - 0.1 * 0.5 = 0.95; v2 = 0.9 * 0.5 + 0.5 = 0.95, W2 = 0.95 - 0.095 = 0.855
    steps = run(SGD, [0.5, 0.5], learning_rate=0.1, momentum=0.9)
    assert steps == pytest.approx([0.95, 0.855])


def test_nesterov():
    # v1 = 0.5, W1 = 1 - 0.1 (0.5 + 0.9 * 0.5) = 0.905
    # v2 = 0.95, W2 = 0.905 - 0.1 (0.5 + 0.9 * 0.95) = 0.905 - 0.1355 = 0.7695
    steps = run(SGD, [0.5, 0.5], learning_rate=0.1, momentum=0.9, nesterov=True)
    assert steps == pytest.approx([0.905, 0.7695])


def test_adam_two_steps_with_bias_correction():
    # Step 1, g = 0.5: m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25 -> W = 1 - 0.1 * 0.5 / 0.5
    # Step 2, g = -0.25: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225;
    #   m_hat = 0.02 / 0.19, v_hat = 0.00031225 / 0.001999
    first = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    second = first - 0.1 * (0.02 / 0.19) / (math.sqrt(0.00031225 / 0.001999) + 1e-8)
    steps = run(Adam, [0.5, -0.25], learning_rate=0.1)
    assert steps == pytest.approx([first, second], rel=1e-12)
    assert second == pytest.approx(0.900000002 - 0.0266335, abs=1e-6)


def test_updates_in_place_on_many_arrays_and_float32():
    W = np.ones((3, 2), np.float32)
    b = np.zeros(2, np.float32)
    gW, gb = np.full((3, 2), 0.5, np.float32), np.ones(2, np.float32)
    for optimizer in (SGD([(W, gW), (b, gb)], 0.1, momentum=0.9), Adam([(W, gW), (b, gb)])):
        W_id, b_id = id(W), id(b)
        optimizer.step()
        assert id(W) == W_id and id(b) == b_id and W.dtype == b.dtype == np.float32
    assert (W < 1).all() and (b < 0).all()


def test_tiny_float32_state_is_flushed_to_zero():
    W, g = np.ones(4, np.float32), np.zeros(4, np.float32)
    optimizer = Adam([(W, g)])
    optimizer.m[0][:] = [1e-35, -1e-33, 1e-3, 0.0]
    optimizer.v[0][:] = [1e-38, 1e-6, 1e-31, 0.0]
    for _ in range(optimizers.FLUSH_EVERY):
        optimizer.step()
    # m decayed by 0.9**32 (about 0.034): the first two fell below 1e-30, the third did not
    assert optimizer.m[0][0] == 0.0 and optimizer.m[0][1] == 0.0 and optimizer.m[0][2] > 1e-5
    assert optimizer.v[0][0] == 0.0 and optimizer.v[0][2] == 0.0 and optimizer.v[0][1] > 0


def test_learning_rate_is_settable_and_validated():
    W, g = one_weight()
    optimizer = SGD([(W, g)], 0.1)
    optimizer.learning_rate = 0.5
    g[:] = 1.0
    optimizer.step()
    assert W[0] == 0.5
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            optimizer.learning_rate = bad


def test_make_optimizer_and_unknown_names():
    params = [one_weight()]
    assert isinstance(make_optimizer("adam", params), Adam)
    momentum = make_optimizer("momentum", params, 0.05)
    assert momentum.momentum == 0.9 and not momentum.nesterov and momentum.learning_rate == 0.05
    assert make_optimizer("nesterov", params).nesterov
    assert make_optimizer("sgd", params).momentum == 0.0
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'.*'sgd'.*'adam'"):
        make_optimizer("rmsprop", params)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], 0.1)
    with pytest.raises(ValueError, match="Nesterov needs a momentum"):
        SGD(params, 0.1, nesterov=True)


def test_schedules():
    constant = make_schedule("constant", 0.1)
    assert [constant(epoch) for epoch in range(3)] == [0.1, 0.1, 0.1]
    step = make_schedule("step", 0.1, step_size=2, gamma=0.5)
    assert [step(epoch) for epoch in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    cosine = make_schedule("cosine", 0.1, n_epochs=4, min_learning_rate=0.01)
    assert [cosine(epoch) for epoch in (0, 2, 4)] == pytest.approx([0.1, 0.055, 0.01])
    with pytest.raises(ValueError, match="needs n_epochs"):
        make_schedule("cosine", 0.1)
    with pytest.raises(ValueError, match=r"unknown schedule 'linear'.*'constant', 'step', 'cos"):
        make_schedule("linear", 0.1)
