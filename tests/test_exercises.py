"""The exercise checker: for every exercise a correct solution passes, an unattempted skeleton is
reported as such, and each usual mistake, written here on purpose, is named as that mistake."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mnist_nn import solutions
from mnist_nn.exercises import EXERCISES, GENERIC, NOT_ATTEMPTED, check, hint, progress

# Correct solutions, the way a learner would write them: where they would read just like the
# package's reference solutions (the ones hint() shows), those are used as they are.
from mnist_nn.solutions import (  # noqa: E402
    adam_step,
    conv2d_forward,
    dense_forward,
    dropout_forward,
    relu,
    sgd_step,
    softmax,
)


def cross_entropy(P, Y):
    return -np.mean(np.sum(Y * np.log(P + 1e-12), axis=1))


def dense_backward(X, W, dZ):
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)


def sgd_step_in_place(W, dW, learning_rate):
    W -= learning_rate * dW  # updating the weights themselves is what an optimizer does
    return W


def relu_backward(dA, Z):
    dZ = dA.copy()
    dZ[Z <= 0] = 0
    return dZ


def softmax_cross_entropy_backward(P, Y):
    N = P.shape[0]
    return (P - Y) / N


def hidden_layer_backward(dA, X, W, Z):
    dZ = np.where(Z > 0, dA, 0.0)
    return dZ @ W.T, X.T @ dZ, np.sum(dZ, axis=0)


def maxpool_backward(dout, X):
    N, C, H, Wd = X.shape
    dX = np.zeros_like(X)
    for i in range(H // 2):
        for j in range(Wd // 2):
            window = X[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(N, C, 4)
            where = window.argmax(axis=2)  # (N, C)
            n, c = np.indices((N, C))
            dX[n, c, 2 * i + where // 2, 2 * j + where % 2] = dout[:, :, i, j]
    return dX


SOLUTIONS = {
    "relu": relu,
    "relu_backward": relu_backward,
    "softmax_cross_entropy_backward": softmax_cross_entropy_backward,
    "hidden_layer_backward": hidden_layer_backward,
    "maxpool_backward": maxpool_backward,
    "softmax": softmax,
    "cross_entropy": cross_entropy,
    "dense_forward": dense_forward,
    "dense_backward": dense_backward,
    "sgd_step": sgd_step,
    "adam_step": adam_step,
    "dropout_forward": dropout_forward,
    "conv2d_forward": conv2d_forward,
}


def test_every_exercise_has_a_solution_here():
    assert set(SOLUTIONS) == set(EXERCISES) == set(solutions.SOLUTIONS)
    assert len(EXERCISES) == 13


@pytest.mark.parametrize("name", sorted(solutions.SOLUTIONS))
def test_the_solutions_that_hint_shows_pass(name):
    assert check(name, solutions.SOLUTIONS[name], verbose=False).passed


def test_hint_gives_a_first_hint_then_a_second_then_the_solution():
    solutions._asked.clear()
    first, second, third = (hint("dense_backward") for _ in range(3))
    assert first.startswith("Hint 1 of 2") and second.startswith("Hint 2 of 2")
    assert "def dense_backward" in third and "X.T @ dZ" in third
    assert repr(first) == str(first)  # shown as text in a notebook, not as a quoted string
    with pytest.raises(ValueError, match="dense_backward"):
        hint("dense_backwards")


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_a_correct_solution_passes(name, capsys):
    result = check(name, SOLUTIONS[name])
    assert result.passed, result.message
    assert result.mistake is None
    assert "correct" in capsys.readouterr().out  # the verdict is printed


def test_other_correct_solutions_pass_too():
    def cross_entropy_by_index(P, Y):
        return -np.log(P[Y == 1]).mean()

    def softmax_with_scipy_style_shift(Z):
        shifted = Z - np.max(Z, axis=-1, keepdims=True)
        return np.exp(shifted) / np.sum(np.exp(shifted), axis=-1, keepdims=True)

    for name, function in [
        ("sgd_step", sgd_step_in_place),
        ("cross_entropy", cross_entropy_by_index),
        ("softmax", softmax_with_scipy_style_shift),
    ]:
        assert check(name, function, verbose=False).passed


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_an_unattempted_skeleton_says_so_and_does_not_raise(name):
    def skeleton(*args):
        raise NotImplementedError

    result = check(name, skeleton, verbose=False)
    assert not result.passed
    assert result.mistake == NOT_ATTEMPTED
    assert "not attempted" in result.message


def test_unknown_exercise_names_the_exercises():
    with pytest.raises(ValueError, match="relu"):
        check("rellu", relu)


# Each usual mistake, on purpose: (exercise, the mistake check must name, the function).


def relu_in_place(Z):
    Z[Z < 0] = 0
    return Z


def relu_per_sample(Z):
    return np.array([np.maximum(row, 0) for row in Z])


def relu_no_return(Z):
    np.maximum(Z, 0)


def softmax_unstable(Z):
    return np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)


def softmax_over_batch(Z):
    E = np.exp(Z - Z.max())
    return E / E.sum(axis=0, keepdims=True)


def softmax_without_keepdims(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1)


def cross_entropy_summed(P, Y):
    return -np.sum(Y * np.log(P + 1e-12))


def cross_entropy_mean_of_all(P, Y):
    return -np.mean(Y * np.log(P + 1e-12))


def cross_entropy_plus(P, Y):
    return np.mean(np.sum(Y * np.log(P + 1e-12), axis=1))


def cross_entropy_log_of_zero(P, Y):
    return -np.mean(np.sum(Y * np.log(P), axis=1))


def cross_entropy_per_image(P, Y):
    return -np.sum(Y * np.log(P + 1e-12), axis=1)


def dense_forward_transposed(X, W, b):
    return (X @ W + b).T


def dense_forward_without_bias(X, W, b):
    return X @ W


def dense_forward_per_sample(X, W, b):
    return np.stack([X[i] @ W + b for i in range(len(X))])


def dense_backward_dW_transposed(X, W, dZ):
    return dZ @ W.T, dZ.T @ X, dZ.sum(axis=0)


def dense_backward_extra_mean(X, W, dZ):
    return dZ @ W.T, X.T @ dZ / len(X), dZ.sum(axis=0)


def dense_backward_db_not_summed(X, W, dZ):
    return dZ @ W.T, X.T @ dZ, dZ


def dense_backward_db_wrong_axis(X, W, dZ):
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=1)


def dense_backward_dW_sign(X, W, dZ):
    return dZ @ W.T, -(X.T @ dZ), dZ.sum(axis=0)


def dense_backward_two_values(X, W, dZ):
    return X.T @ dZ, dZ.sum(axis=0)


def sgd_step_uphill(W, dW, learning_rate):
    return W + learning_rate * dW


def sgd_step_without_learning_rate(W, dW, learning_rate):
    return W - dW


def sgd_step_changing_dW(W, dW, learning_rate):
    dW *= learning_rate
    return W - dW


def adam_without_bias_correction(
    W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8
):
    m = beta1 * m + (1 - beta1) * dW
    v = beta2 * v + (1 - beta2) * dW**2
    return W - learning_rate * m / (np.sqrt(v) + eps), m, v


def adam_without_sqrt(W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * dW
    v = beta2 * v + (1 - beta2) * dW**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return W - learning_rate * m_hat / (v_hat + eps), m, v


def adam_uphill(W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    W_down, m, v = adam_step(W, dW, m, v, t, learning_rate, beta1, beta2, eps)
    return 2 * W - W_down, m, v


def adam_v_not_squared(W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    W_new, m_new, _ = adam_step(W, dW, m, v, t, learning_rate, beta1, beta2, eps)
    return W_new, m_new, beta2 * v + (1 - beta2) * dW


def adam_m_weights_swapped(W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    W_new, _, v_new = adam_step(W, dW, m, v, t, learning_rate, beta1, beta2, eps)
    return W_new, beta1 * dW + (1 - beta1) * m, v_new


def adam_returns_m_hat(W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    W_new, m_new, v_new = adam_step(W, dW, m, v, t, learning_rate, beta1, beta2, eps)
    return W_new, m_new / (1 - beta1**t), v_new


def dropout_not_scaled(X, rate, training, rng):
    return X * (rng.random(X.shape) >= rate) if training else X


def dropout_keeps_rate(X, rate, training, rng):
    return X * (rng.random(X.shape) < rate) / (1 - rate) if training else X


def dropout_at_inference(X, rate, training, rng):
    return X * (rng.random(X.shape) >= rate) / (1 - rate)


def dropout_global_random(X, rate, training, rng):
    return X * (np.random.default_rng().random(X.shape) >= rate) / (1 - rate) if training else X


def dropout_in_place(X, rate, training, rng):
    if training:
        X *= (rng.random(X.shape) >= rate) / (1 - rate)
    return X


def dropout_scaled_wrong_way(X, rate, training, rng):
    return X * (rng.random(X.shape) >= rate) * (1 - rate) if training else X


def conv2d_flipped(X, W, b, padding=0):
    return conv2d_forward(X, W[:, :, ::-1, ::-1], b, padding)


def conv2d_without_padding(X, W, b, padding=0):
    return conv2d_forward(X, W, b, 0)


def conv2d_without_bias(X, W, b, padding=0):
    return conv2d_forward(X, W, np.zeros_like(b), padding)


def conv2d_channels_last(X, W, b, padding=0):
    return conv2d_forward(X, W, b, padding).transpose(0, 2, 3, 1)


def relu_loop_over_entries(Z):
    A = np.zeros_like(Z)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            A[i, j] = max(Z[i, j], 0.0)
    return A


def dense_forward_per_sample_outer(X, W, b):
    return np.array([x @ W + b for x in X])


def dense_backward_nielsen(X, W, dZ):
    # Nielsen's network.py: one outer product per sample, summed
    dW, db = np.zeros_like(W), np.zeros(W.shape[1])
    for x, dz in zip(X, dZ, strict=True):
        dW += np.outer(x, dz)
        db += dz
    return dZ @ W.T, dW, db


def cross_entropy_per_sample(P, Y):
    return -sum(np.log(p[y == 1][0]) for p, y in zip(P, Y, strict=True)) / len(P)


CORRECT_ALTERNATIVES = [
    ("relu", relu_per_sample),
    ("relu", relu_loop_over_entries),
    ("relu", lambda Z: Z * (Z > 0)),
    ("relu", lambda Z: np.where(Z > 0, Z, 0)),
    ("dense_forward", dense_forward_per_sample),
    ("dense_forward", dense_forward_per_sample_outer),
    ("dense_forward", lambda X, W, b: np.dot(X, W) + b[None, :]),
    ("dense_backward", dense_backward_nielsen),
    ("dense_backward", lambda X, W, dZ: (dZ @ W.T, np.einsum("nd,nm->dm", X, dZ), dZ.sum(0))),
    ("cross_entropy", cross_entropy_per_sample),
    ("cross_entropy", lambda P, Y: -np.sum(Y * np.log(np.clip(P, 1e-12, 1))) / len(P)),
    (
        "softmax",
        lambda Z: np.exp(Z - Z.max(1)[:, None]) / np.exp(Z - Z.max(1)[:, None]).sum(1)[:, None],
    ),
    ("relu_backward", lambda dA, Z: dA * (Z > 0).astype(float)),
    ("relu_backward", lambda dA, Z: np.where(Z > 0, dA, 0)),
    ("softmax_cross_entropy_backward", lambda P, Y: (P - Y) / P.shape[0]),
    ("sgd_step", sgd_step_in_place),
    ("maxpool_backward", solutions.maxpool_backward),
]


@pytest.mark.parametrize(("name", "function"), CORRECT_ALTERNATIVES)
def test_correct_alternatives_pass_loops_included(name, function):
    result = check(name, function, verbose=False)
    assert result.passed, result.message


@pytest.mark.parametrize("function", [relu_per_sample, relu_loop_over_entries])
def test_a_loop_over_the_samples_passes_and_says_how_much_slower_it_is(function):
    message = check("relu", function, verbose=False).message
    assert message.startswith("✓ relu: correct")
    assert re.search(
        r"on a batch of 256 it took [\d.]+ ms, whole-array NumPy [\d.]+ ms, \d+x slower", message
    )


def dense_forward_elementwise(X, W, b):
    return X * W + b


def dense_forward_bias_column(X, W, b):
    return X @ W + b[:, None]


def dense_forward_W_first(X, W, b):
    return W @ X + b


def dense_forward_WT(X, W, b):
    return X @ W.T + b


def dense_backward_extra_mean_everywhere(X, W, dZ):
    N = len(X)
    return dZ @ W.T / N, X.T @ dZ / N, dZ.sum(axis=0) / N


def dense_backward_dX_wrong_product(X, W, dZ):
    return W @ dZ, X.T @ dZ, dZ.sum(axis=0)


def dense_backward_mean_db(X, W, dZ):
    return dZ @ W.T, X.T @ dZ, dZ.mean(axis=0)


def softmax_without_shift_axis0_max(Z):
    E = np.exp(Z - Z.max(axis=0))
    return E / E.sum(axis=1, keepdims=True)


def softmax_sum_no_keepdims_transposed(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return (E.T / E.sum(axis=1)).T.T


def cross_entropy_clipped(P, Y):
    return -np.mean(np.sum(Y * np.log(np.clip(P, 1e-3, 1.0)), axis=1))


def cross_entropy_log10(P, Y):
    return -np.mean(np.sum(Y * np.log10(P + 1e-12), axis=1))


def cross_entropy_of_all_classes(P, Y):
    return -np.mean(np.sum(np.log(P + 1e-12), axis=1))


def relu_backward_at_zero(dA, Z):
    return dA * (Z >= 0)


def relu_backward_mask_only(dA, Z):
    return (Z > 0).astype(float)


def relu_backward_relu_of_Z(dA, Z):
    return dA * np.maximum(Z, 0)


def relu_backward_mask_from_dA(dA, Z):
    return np.maximum(dA, 0)


def relu_backward_in_place(dA, Z):
    dA[Z <= 0] = 0
    return dA


def sce_backward_no_mean(P, Y):
    return P - Y


def sce_backward_flipped(P, Y):
    return (Y - P) / len(P)


def sce_backward_jacobian(P, Y):
    return P * (1 - P) / len(P)


def sce_backward_by_all(P, Y):
    return (P - Y) / P.size


def hidden_no_mask(dA, X, W, Z):
    return dA @ W.T, X.T @ dA, dA.sum(axis=0)


def hidden_mask_on_dX(dA, X, W, Z):
    dZ = dA * (Z > 0)
    return (dA @ W.T) * (X > 0), X.T @ dZ, dZ.sum(axis=0)


def hidden_extra_mean(dA, X, W, Z):
    dZ = dA * (Z > 0)
    return dZ @ W.T, X.T @ dZ / len(X), dZ.sum(axis=0) / len(X)


def hidden_dW_transposed(dA, X, W, Z):
    dZ = dA * (Z > 0)
    return dZ @ W.T, dZ.T @ X, dZ.sum(axis=0)


def hidden_mask_after_product(dA, X, W, Z):
    return (dA @ W.T) * (Z > 0), X.T @ dA, dA.sum(axis=0)


def maxpool_to_every_position(dout, X):
    return np.repeat(np.repeat(dout, 2, axis=2), 2, axis=3)


def maxpool_average(dout, X):
    return np.repeat(np.repeat(dout, 2, axis=2), 2, axis=3) / 4


def maxpool_not_upsampled(dout, X):
    return dout


def adam_v_not_squared_everywhere(
    W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8
):
    m = beta1 * m + (1 - beta1) * dW
    v = beta2 * v + (1 - beta2) * dW  # the mistake, and the step built on it
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return W - learning_rate * m_hat / (np.sqrt(np.abs(v_hat)) + eps), m, v


def adam_betas_swapped_everywhere(
    W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8
):
    m = beta1 * dW + (1 - beta1) * m
    v = beta2 * v + (1 - beta2) * dW**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return W - learning_rate * m_hat / (np.sqrt(v_hat) + eps), m, v


def conv2d_pad_every_axis(X, W, b, padding=0):
    X_pad = np.pad(X, padding)
    return conv2d_forward(X_pad, W, b, 0)


def sgd_step_minus_equals_dW(W, dW, learning_rate):
    return W - learning_rate * dW.T.T * 10


MISTAKES = [
    ("relu", "in_place", relu_in_place),
    ("relu", "no_return", relu_no_return),
    ("relu", "derivative", lambda Z: (Z > 0).astype(float)),
    ("relu", "sign", lambda Z: np.minimum(Z, 0)),
    ("relu_backward", "at_zero", relu_backward_at_zero),
    ("relu_backward", "mask_only", relu_backward_mask_only),
    ("relu_backward", "used_relu", relu_backward_relu_of_Z),
    ("relu_backward", "mask_from_dA", relu_backward_mask_from_dA),
    ("relu_backward", "in_place", relu_backward_in_place),
    ("relu_backward", "sign", lambda dA, Z: -dA * (Z > 0)),
    ("softmax", "overflow", softmax_unstable),
    ("softmax", "wrong_axis", softmax_over_batch),
    ("softmax", "keepdims", softmax_without_keepdims),
    ("softmax", "whole_array", lambda Z: np.exp(Z - Z.max()) / np.exp(Z - Z.max()).sum()),
    ("cross_entropy", "missing_mean", cross_entropy_summed),
    ("cross_entropy", "mean_over_classes", cross_entropy_mean_of_all),
    ("cross_entropy", "sign", cross_entropy_plus),
    ("cross_entropy", "log_of_zero", cross_entropy_log_of_zero),
    ("cross_entropy", "not_averaged", cross_entropy_per_image),
    ("cross_entropy", "clipped", cross_entropy_clipped),
    ("softmax_cross_entropy_backward", "missing_1/N", sce_backward_no_mean),
    ("softmax_cross_entropy_backward", "sign", sce_backward_flipped),
    ("softmax_cross_entropy_backward", "softmax_jacobian", sce_backward_jacobian),
    ("softmax_cross_entropy_backward", "divided_by_NC", sce_backward_by_all),
    ("dense_forward", "transposed", dense_forward_transposed),
    ("dense_forward", "missing_bias", dense_forward_without_bias),
    ("dense_forward", "elementwise_product", dense_forward_elementwise),
    ("dense_forward", "bias_column", dense_forward_bias_column),
    ("dense_forward", "shapes", dense_forward_W_first),
    ("dense_forward", "shapes", dense_forward_WT),
    ("dense_backward", "transposed", dense_backward_dW_transposed),
    ("dense_backward", "extra_1/N", dense_backward_extra_mean),
    ("dense_backward", "extra_1/N", dense_backward_extra_mean_everywhere),
    ("dense_backward", "db_not_summed", dense_backward_db_not_summed),
    ("dense_backward", "wrong_axis", dense_backward_db_wrong_axis),
    ("dense_backward", "sign", dense_backward_dW_sign),
    ("dense_backward", "outputs", dense_backward_two_values),
    ("dense_backward", "shapes", dense_backward_dX_wrong_product),
    ("dense_backward", "extra_1/N", dense_backward_mean_db),
    ("hidden_layer_backward", "no_mask", hidden_no_mask),
    ("hidden_layer_backward", "mask_on_dX", hidden_mask_on_dX),
    ("hidden_layer_backward", "extra_1/N", hidden_extra_mean),
    ("hidden_layer_backward", "transposed", hidden_dW_transposed),
    ("hidden_layer_backward", "shapes", hidden_mask_after_product),
    ("sgd_step", "sign", sgd_step_uphill),
    ("sgd_step", "missing_learning_rate", sgd_step_without_learning_rate),
    ("sgd_step", "in_place", sgd_step_changing_dW),
    ("sgd_step", "fixed_learning_rate", lambda W, dW, learning_rate: W - 0.1 * dW),
    ("adam_step", "no_bias_correction", adam_without_bias_correction),
    ("adam_step", "no_sqrt", adam_without_sqrt),
    ("adam_step", "sign", adam_uphill),
    ("adam_step", "v_not_squared", adam_v_not_squared),
    ("adam_step", "v_not_squared", adam_v_not_squared_everywhere),
    ("adam_step", "betas_swapped", adam_m_weights_swapped),
    ("adam_step", "betas_swapped", adam_betas_swapped_everywhere),
    ("adam_step", "returned_m_hat", adam_returns_m_hat),
    ("dropout_forward", "not_scaled", dropout_not_scaled),
    ("dropout_forward", "keep_fraction", dropout_keeps_rate),
    ("dropout_forward", "dropout_at_inference", dropout_at_inference),
    ("dropout_forward", "not_seeded", dropout_global_random),
    ("dropout_forward", "in_place", dropout_in_place),
    ("dropout_forward", "scaled_wrong_way", dropout_scaled_wrong_way),
    ("conv2d_forward", "flipped_kernel", conv2d_flipped),
    ("conv2d_forward", "no_padding", conv2d_without_padding),
    ("conv2d_forward", "missing_bias", conv2d_without_bias),
    ("conv2d_forward", "channels_last", conv2d_channels_last),
    ("conv2d_forward", "shapes", conv2d_pad_every_axis),
    ("maxpool_backward", "every_position", maxpool_to_every_position),
    ("maxpool_backward", "average", maxpool_average),
    ("maxpool_backward", "shape", maxpool_not_upsampled),
]


@pytest.mark.parametrize(
    ("name", "mistake", "function"), MISTAKES, ids=[f"{n}-{m}" for n, m, _ in MISTAKES]
)
def test_each_usual_mistake_is_named(name, mistake, function):
    result = check(name, function, verbose=False)
    assert not result.passed
    assert result.mistake == mistake, result.message
    assert result.message.startswith(f"✗ {name}: ")


def test_on_the_mistake_set_few_messages_are_generic():
    generic = [
        (name, result.message)
        for name, _, function in MISTAKES
        if (result := check(name, function, verbose=False)).mistake in GENERIC
    ]
    assert len(MISTAKES) >= 67
    assert len(generic) <= 2, generic


def test_shape_errors_are_said_in_the_exercises_terms_and_keepdims_only_where_it_applies():
    for name, function in [
        ("dense_forward", dense_forward_elementwise),
        ("dense_forward", dense_forward_bias_column),
        ("dense_forward", dense_forward_W_first),
        ("conv2d_forward", conv2d_pad_every_axis),
    ]:
        message = check(name, function, verbose=False).message
        assert "keepdims" not in message, message
    message = check("dense_forward", dense_forward_elementwise, verbose=False).message
    assert "X is (N, D) and W is (D, M): X @ W" in message
    message = check("conv2d_forward", conv2d_pad_every_axis, verbose=False).message
    assert "(0, 0), (0, 0), (padding, padding)" in message
    assert "keepdims=True" in check("softmax", softmax_without_keepdims, verbose=False).message


def test_every_output_is_diagnosed_not_only_the_first_difference():
    message = check("adam_step", adam_v_not_squared_everywhere, verbose=False).message
    assert "squared gradient" in message and "wrong values" in message  # W's and v's
    message = check("dense_backward", dense_backward_extra_mean_everywhere, verbose=False).message
    assert message.count("already holds the mean's 1/N") == 3


def test_clipping_P_fails_on_a_small_right_class_probability():
    message = check("cross_entropy", cross_entropy_clipped, verbose=False).message
    assert "do not clip" in message and "0.001" in message


def test_messages_give_the_expected_and_the_actual_shape():
    message = check("dense_forward", dense_forward_transposed, verbose=False).message
    assert "expected shape (N, M) = (8, 4), got (4, 8)" in message
    message = check("dense_backward", dense_backward_db_not_summed, verbose=False).message
    assert "dZ.sum(axis=0)" in message
    message = check("softmax", softmax_unstable, verbose=False).message
    assert "large logits" in message and "maximum" in message


def test_wrong_values_name_where_they_differ():
    result = check("relu", lambda Z: np.maximum(Z, 0) + 0.5, verbose=False)
    assert result.mistake == "values"
    assert "at index" in result.message and "expected" in result.message


def test_the_result_reads_as_its_message():
    result = check("relu", relu, verbose=False)
    assert str(result) == result.message


def test_progress_lists_every_exercise_and_question_with_its_status():
    from mnist_nn import questions

    check("relu", relu, verbose=False)
    check("softmax", softmax_unstable, verbose=False)
    questions.answer("uniform_loss", 0.1)
    table = progress()
    assert "relu  " in table and "passed ✓" in table
    assert "failed ✗ (overflow)" in table and "failed ✗ (misconception)" in table
    for name in (*EXERCISES, *questions.QUESTIONS):
        assert name in table
    assert "not attempted" in table


# The questions: a right answer explains it, a wrong one names its misconception.


@pytest.mark.parametrize(
    ("name", "answer", "passed", "said"),
    [
        ("uniform_loss", 2.3026, True, "ln 10"),
        ("uniform_loss", 0.1, False, "probability of the right class"),
        ("uniform_loss", 1.0, False, "log base 10"),
        ("n_parameters", 25818, True, "25,818"),
        ("n_parameters", 25760, False, "biases"),
        ("zero_weights", "b", True, "no gradient reaches any weight"),
        ("zero_weights", "d", False, "computes the same"),
        ("dW1_shape", (784, 32), True, "summed away"),
        ("dW1_shape", (128, 32), False, "that is dZ1"),
        ("validation_above_training", "B", True, "end-of-epoch weights"),
        ("validation_above_training", "c", False, "overfitting"),
        ("huge_learning_rate", "c", True, "TrainingDivergedError"),
        ("softmax_of_constant", 0.1, True, "differences between logits"),
        ("softmax_of_constant", 0.0, False, "overflows"),
    ],
)
def test_questions_explain_right_and_wrong_answers(name, answer, passed, said, capsys):
    from mnist_nn import questions

    result = questions.answer(name, answer)
    assert result.passed is passed
    assert said in result.message and said in capsys.readouterr().out
    assert result.message.startswith("✓" if passed else "✗")


def test_questions_are_at_least_six_and_unanswered_ones_say_so():
    from mnist_nn import questions

    assert len(questions.QUESTIONS) >= 6
    result = questions.answer("uniform_loss", None)
    assert result.mistake == NOT_ATTEMPTED and not result.passed
    assert questions.answer("zero_weights", "e").mistake == "no_such_choice"
    with pytest.raises(ValueError, match="uniform_loss"):
        questions.answer("uniform", 1.0)


# The capstone: the learner's pieces, the reference where not attempted, and the diagnosis.


def not_attempted(*args):
    raise NotImplementedError


def test_assemble_uses_the_learners_pieces_and_the_reference_for_the_rest():
    from mnist_nn import capstone

    pieces = capstone.assemble({"relu": relu, "softmax": not_attempted})
    assert pieces.relu is relu and pieces.softmax is solutions.softmax
    text = str(pieces)
    assert "your relu" in text and "the reference softmax" in text
    assert "the reference dense_backward" in text and "fails" not in text
    failing = capstone.assemble({"dense_backward": dense_backward_extra_mean})
    assert failing.dense_backward is dense_backward_extra_mean
    assert "Your dense_backward still fails its check" in str(failing)


def network_weights():
    import mnist_nn as nn

    return nn.build_mlp((8, 6), n_inputs=20, seed=0, dtype=np.float64).get_weights()


def test_diagnose_passes_the_reference_and_names_the_first_differing_piece():
    from mnist_nn import capstone

    X = np.random.default_rng(0).random((16, 20))
    y = np.arange(16) % 10
    message = capstone.diagnose(capstone.reference(), network_weights(), X, y)
    assert message.startswith("✓")
    for name, wrong in [
        ("relu_backward", relu_backward_mask_from_dA),
        ("dense_backward", dense_backward_extra_mean),
        ("softmax_cross_entropy_backward", sce_backward_no_mean),
        ("cross_entropy", cross_entropy_summed),
        ("sgd_step", sgd_step_uphill),
        ("dense_forward", dense_forward_without_bias),
    ]:
        pieces = capstone.assemble({name: wrong})
        message = capstone.diagnose(pieces, network_weights(), X, y)
        assert message.startswith(f"✗ your {name} differs"), (name, message)
    message = capstone.diagnose(
        capstone.assemble({"dense_forward": dense_forward_elementwise}), network_weights(), X, y
    )
    assert message.startswith("✗ your dense_forward raised ValueError")


def test_printed_verdicts_break_lines_between_words_only(capsys):
    result = check("conv2d_forward", conv2d_pad_every_axis)
    printed = capsys.readouterr().out
    assert all(len(line) <= 90 for line in printed.splitlines())
    assert printed.split() == result.message.split()  # the same words, none cut
