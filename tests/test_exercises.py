"""The exercise checker: for every exercise a correct solution passes, an unattempted skeleton is
reported as such, and each usual mistake, written here on purpose, is named as that mistake."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.exercises import EXERCISES, NOT_ATTEMPTED, check

# Correct solutions, the way a learner would write them.


def relu(Z):
    return np.maximum(Z, 0)


def softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def cross_entropy(P, Y):
    return -np.mean(np.sum(Y * np.log(P + 1e-12), axis=1))


def dense_forward(X, W, b):
    return X @ W + b


def dense_backward(X, W, dZ):
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)


def sgd_step(W, dW, learning_rate):
    return W - learning_rate * dW


def sgd_step_in_place(W, dW, learning_rate):
    W -= learning_rate * dW  # updating the weights themselves is what an optimizer does
    return W


def adam_step(W, dW, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * dW
    v = beta2 * v + (1 - beta2) * dW**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return W - learning_rate * m_hat / (np.sqrt(v_hat) + eps), m, v


def dropout_forward(X, rate, training, rng):
    if not training:
        return X
    keep = rng.random(X.shape) >= rate
    return X * keep / (1 - rate)


def conv2d_forward(X, W, b, padding=0):
    N, C, H, Wd = X.shape
    F, _, K, _ = W.shape
    X_pad = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH, OW = H + 2 * padding - K + 1, Wd + 2 * padding - K + 1
    Z = np.zeros((N, F, OH, OW))
    for i in range(OH):
        for j in range(OW):
            window = X_pad[:, :, i : i + K, j : j + K]  # (N, C, K, K)
            Z[:, :, i, j] = np.tensordot(window, W, axes=([1, 2, 3], [1, 2, 3])) + b
    return Z


SOLUTIONS = {
    "relu": relu,
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
    assert set(SOLUTIONS) == set(EXERCISES)
    assert len(EXERCISES) == 9


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


MISTAKES = [
    ("relu", "in_place", relu_in_place),
    ("relu", "loop", relu_per_sample),
    ("relu", "no_return", relu_no_return),
    ("relu", "derivative", lambda Z: (Z > 0).astype(float)),
    ("relu", "sign", lambda Z: np.minimum(Z, 0)),
    ("softmax", "overflow", softmax_unstable),
    ("softmax", "wrong_axis", softmax_over_batch),
    ("softmax", "error", softmax_without_keepdims),
    ("softmax", "whole_array", lambda Z: np.exp(Z - Z.max()) / np.exp(Z - Z.max()).sum()),
    ("cross_entropy", "missing_mean", cross_entropy_summed),
    ("cross_entropy", "mean_over_classes", cross_entropy_mean_of_all),
    ("cross_entropy", "sign", cross_entropy_plus),
    ("cross_entropy", "log_of_zero", cross_entropy_log_of_zero),
    ("cross_entropy", "not_averaged", cross_entropy_per_image),
    ("dense_forward", "transposed", dense_forward_transposed),
    ("dense_forward", "missing_bias", dense_forward_without_bias),
    ("dense_forward", "loop", dense_forward_per_sample),
    ("dense_backward", "transposed", dense_backward_dW_transposed),
    ("dense_backward", "extra_1/N", dense_backward_extra_mean),
    ("dense_backward", "db_not_summed", dense_backward_db_not_summed),
    ("dense_backward", "wrong_axis", dense_backward_db_wrong_axis),
    ("dense_backward", "sign", dense_backward_dW_sign),
    ("dense_backward", "outputs", dense_backward_two_values),
    ("sgd_step", "sign", sgd_step_uphill),
    ("sgd_step", "missing_learning_rate", sgd_step_without_learning_rate),
    ("sgd_step", "in_place", sgd_step_changing_dW),
    ("sgd_step", "values", lambda W, dW, learning_rate: W - 0.1 * dW),  # ignores its argument
    ("adam_step", "no_bias_correction", adam_without_bias_correction),
    ("adam_step", "no_sqrt", adam_without_sqrt),
    ("adam_step", "sign", adam_uphill),
    ("adam_step", "v_not_squared", adam_v_not_squared),
    ("adam_step", "betas_swapped", adam_m_weights_swapped),
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
]


@pytest.mark.parametrize(
    ("name", "mistake", "function"), MISTAKES, ids=[f"{n}-{m}" for n, m, _ in MISTAKES]
)
def test_each_usual_mistake_is_named(name, mistake, function):
    result = check(name, function, verbose=False)
    assert not result.passed
    assert result.mistake == mistake, result.message
    assert result.message.startswith(f"{name}: ")


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
