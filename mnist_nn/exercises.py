"""The walkthrough's exercises and their checker: check(name, function) runs a learner's function on
seeded inputs (awkward ones too: large logits, a batch of one), compares it with the reference and
names the usual mistake when it finds one, e.g. "dW: expected (6, 4), got (4, 6): transposed"."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mnist_nn.conv import conv2d_forward_loops

NOT_ATTEMPTED = "not_attempted"
RTOL, ATOL = 1e-5, 1e-7  # float32 arithmetic inside a learner's function still passes


@dataclass(frozen=True)
class Result:
    """What check found: passed, the mistake's short name (None when passed) and the message."""

    name: str
    passed: bool
    mistake: str | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class _Case:
    """One call of the learner's function: its arguments, the right outputs, and wrong outputs
    that a known mistake gives, as (output index, mistake, value, explanation)."""

    label: str
    args: tuple
    expected: tuple
    wrong: list = field(default_factory=list)
    may_change: tuple = ()  # indices of the arguments the function may update in place
    batch_size: int = 0  # > 0: a Python loop over this many samples is a mistake
    non_finite: tuple = ("values", "the output holds inf or NaN")


class _Watched(np.ndarray):
    """An array view that counts reads of one sample at a time (X[i], for row in X): the sign
    of a Python loop over the batch."""

    reads = 0

    def __getitem__(self, index):
        first = index[0] if isinstance(index, tuple) and index else index
        if isinstance(first, int | np.integer):
            _Watched.reads += 1
        return super().__getitem__(index)

    def __iter__(self):
        _Watched.reads += len(self)
        return super().__iter__()


def check(name: str, function: Callable, verbose: bool = True) -> Result:
    """Run exercise `name` on `function`, print what is right or wrong, and return the Result.

    An unattempted exercise (its skeleton still raises NotImplementedError) gives a Result with
    mistake "not_attempted" and never raises, so the notebook runs on.
    """
    if name == "dropout_forward":
        result = _check_dropout(name, function)
    elif name in _CASES:
        cases, outputs = _CASES[name]
        result = _check_cases(name, function, cases(), outputs)
    else:
        raise ValueError(f"unknown exercise {name!r}; the exercises are {list(EXERCISES)}")
    if verbose:
        print(result.message)
    return result


def _fail(name: str, mistake: str, message: str) -> Result:
    return Result(name, False, mistake, f"{name}: {message}")


def _check_cases(name: str, function: Callable, cases: list[_Case], outputs: tuple) -> Result:
    for case in cases:
        got, problem = _call(name, function, case)
        if problem is None:
            problem = _compare(name, case, got, outputs)
        if problem is not None:
            return problem
    tried = "; ".join(case.label for case in cases)
    return Result(name, True, None, f"{name}: correct ✓ (tried {tried})")


def _call(name: str, function: Callable, case: _Case) -> tuple[tuple | None, Result | None]:
    """The function's outputs as a tuple of arrays, or the Result that says why there are none."""
    copies = [np.copy(arg) if isinstance(arg, np.ndarray) else None for arg in case.args]
    watched = [arg.view(_Watched) if isinstance(arg, np.ndarray) else arg for arg in case.args]
    _Watched.reads = 0
    try:
        with np.errstate(all="ignore"):
            output = function(*watched)
    except NotImplementedError:
        message = "not attempted yet: replace `raise NotImplementedError` with your code"
        return None, _fail(name, NOT_ATTEMPTED, message)
    except Exception as error:  # the learner's code: whatever it raises is a finding
        message = f"raised {type(error).__name__}: {error} ({case.label})"
        if "broadcast" in str(error):
            message += (
                "; the shapes do not line up: a sum over axis=1 has shape (N,), while "
                "keepdims=True keeps it (N, 1), which divides each row"
            )
        return None, _fail(name, "error", message)
    problem = _misbehaviour(name, function, case, output, copies)
    if problem is not None:
        return None, problem
    outputs = output if isinstance(output, tuple | list) else (output,)
    return tuple(np.asarray(item) for item in outputs), None


def _misbehaviour(name: str, function: Callable, case: _Case, output, copies) -> Result | None:
    """No result, an input changed in place, or a Python loop over the samples."""
    if output is None:
        return _fail(name, "no_return", "returned None: did you forget `return`?")
    for index, (arg, copy) in enumerate(zip(case.args, copies, strict=True)):
        if copy is None or index in case.may_change or np.array_equal(arg, copy, equal_nan=True):
            continue
        return _fail(
            name,
            "in_place",
            f"changed its argument {_argument_name(function, index)} in place (with -=, *= or "
            "out=); compute a new array instead: the caller still needs the old values",
        )
    if case.batch_size and _Watched.reads >= case.batch_size:
        return _fail(
            name,
            "loop",
            f"loops over the {case.batch_size} samples in Python (X[i] or `for row in X`); use "
            "whole-array operations, which NumPy runs in compiled code, many times faster",
        )
    return None


def _argument_name(function: Callable, index: int) -> str:
    """The name of the function's parameter number `index` (from 0), or its number."""
    try:
        return list(inspect.signature(function).parameters)[index]
    except (ValueError, TypeError, IndexError):
        return f"number {index + 1}"


def _compare(name: str, case: _Case, got: tuple, outputs: tuple) -> Result | None:
    if len(got) != len(case.expected):
        names = ", ".join(output for output, _ in outputs)
        return _fail(
            name, "outputs", f"returned {len(got)} values, expected {len(outputs)}: {names}"
        )
    for index, (value, expected) in enumerate(zip(got, case.expected, strict=True)):
        problem = _compare_output(name, case, index, value, expected, outputs[index])
        if problem is not None:
            return problem
    return None


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == np.shape(b) and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def _compare_output(name, case, index, got, expected, output) -> Result | None:
    """None when `got` is right, else the Result naming the mistake, for output number index."""
    output_name, symbols = output
    if _close(got, expected):
        return None
    where = f"{output_name} ({case.label})"
    for output_index, mistake, value, why in case.wrong:
        if output_index == index and _close(got, value):
            return _fail(name, mistake, f"{where}: {why}")
    if got.shape != expected.shape:
        shapes = f"expected shape {symbols} = {expected.shape}, got {got.shape}"
        if got.ndim == 2 and _close(got.T, expected):
            return _fail(name, "transposed", f"{where}: {shapes}, the transpose of the answer")
        return _fail(name, "shape", f"{where}: {shapes}")
    if not np.all(np.isfinite(got)):
        mistake, why = case.non_finite
        return _fail(name, mistake, f"{where}: {why}")
    worst = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
    at = f" at index {tuple(int(i) for i in worst)}" if got.ndim else ""
    return _fail(
        name,
        "values",
        f"{where}: wrong values{at}: expected {expected[worst]:.6g}, got {got[worst]:.6g}",
    )


# The exercises. Each builds its cases from a fixed seed; a wrong value lists the mistake that
# gives exactly that output, so the verdict can name it.


def _relu_cases() -> list[_Case]:
    Z = np.random.default_rng(1).standard_normal((8, 5))
    Z[0, :2] = 0.0  # the kink: max(0, 0) = 0
    cases = []
    for label, Z_case, batch_size in [("Z of shape (8, 5)", Z, 8), ("a batch of one", Z[:1], 0)]:
        wrong = [
            (0, "derivative", (Z_case > 0) * 1.0, "this is ReLU's derivative; ReLU is max(0, z)"),
            (0, "sign", np.minimum(Z_case, 0), "kept the negative part; ReLU keeps z where z > 0"),
        ]
        cases.append(
            _Case(label, (Z_case.copy(),), (np.maximum(Z_case, 0),), wrong, (), batch_size)
        )
    return cases


def _softmax_reference(Z: np.ndarray) -> np.ndarray:
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _softmax_cases() -> list[_Case]:
    rng = np.random.default_rng(2)
    Z = 2.0 * rng.standard_normal((8, 10))
    overflow = (
        "overflow",
        "inf or NaN: np.exp overflows for logits near 1000; subtract each row's maximum first "
        "(Z - Z.max(axis=1, keepdims=True)), which changes nothing mathematically",
    )
    cases = []
    for label, Z_case, batch_size in [
        ("Z of shape (8, 10)", Z, 8),
        ("large logits, around 1000", Z[:4] + 1000.0, 0),
        ("a batch of one", Z[:1], 0),
    ]:
        E = np.exp(Z_case - Z_case.max())
        wrong = [
            (
                0,
                "wrong_axis",
                E / E.sum(axis=0, keepdims=True),
                "normalised over the batch "
                "(axis 0); each row must sum to 1: sum over axis=1 with keepdims=True",
            ),
            (
                0,
                "whole_array",
                E / E.sum(),
                "divided by the sum of the whole array; divide "
                "each row by its own sum (axis=1, keepdims=True)",
            ),
        ]
        expected = (_softmax_reference(Z_case),)
        cases.append(_Case(label, (Z_case.copy(),), expected, wrong, (), batch_size, overflow))
    return cases


def _cross_entropy_cases() -> list[_Case]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 8)
    P = _softmax_reference(rng.standard_normal((8, 10)))
    Y = np.eye(10)[y]  # (8, 10) one-hot
    P_zero = P.copy()
    P_zero[0, (y[0] + 1) % 10] = 0.0  # a wrong class the network is sure about
    P_zero[0] /= P_zero[0].sum()
    log_of_zero = (
        "log_of_zero",
        "NaN: 0 * log(0) where a wrong class has probability 0; only the right class counts, "
        "so take the log of P[Y == 1] (or np.log(P + 1e-12))",
    )
    cases = []
    for label, P_case, Y_case, batch_size in [
        ("P and Y of shape (8, 10)", P, Y, 8),
        ("a wrong class with probability exactly 0", P_zero, Y, 0),
        ("a batch of one", P[:1], Y[:1], 0),
    ]:
        losses = -np.log(P_case[Y_case == 1])  # (N,): minus the log of the right class's P
        N, C = P_case.shape
        wrong = [
            (
                0,
                "missing_mean",
                losses.sum(),
                f"summed over the batch; the loss is the mean, so divide by N = {N}",
            ),
            (
                0,
                "mean_over_classes",
                losses.sum() / (N * C),
                f"np.mean over the (N, C) array "
                f"divides by N * C = {N * C}; sum over the classes, then average over the N images",
            ),
            (0, "sign", -losses.mean(), "the sign is flipped: L = -(1/N) sum Y log P is >= 0"),
            (
                0,
                "not_averaged",
                losses,
                "returned one loss per image, shape (N,); the loss is their mean, one number",
            ),
        ]
        args = (P_case.copy(), Y_case.copy())
        cases.append(_Case(label, args, (losses.mean(),), wrong, (), batch_size, log_of_zero))
    return cases


def _dense_forward_cases() -> list[_Case]:
    rng = np.random.default_rng(4)
    X, W, b = rng.standard_normal((8, 6)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    cases = []
    for label, X_case, batch_size in [("X (8, 6), W (6, 4)", X, 8), ("a batch of one", X[:1], 0)]:
        wrong = [(0, "missing_bias", X_case @ W, "the bias is missing: Z = X W + b")]
        expected = (X_case @ W + b,)
        args = (X_case.copy(), W.copy(), b.copy())
        cases.append(_Case(label, args, expected, wrong, (), batch_size))
    return cases


def _dense_backward_cases() -> list[_Case]:
    rng = np.random.default_rng(5)
    X, W, dZ = rng.standard_normal((8, 6)), rng.standard_normal((6, 4)), rng.standard_normal((8, 4))
    cases = []
    for label, X_case, dZ_case, batch_size in [
        ("X (8, 6), W (6, 4), dZ (8, 4)", X, dZ, 8),
        ("a batch of one", X[:1], dZ[:1], 0),
    ]:
        dX, dW, db = dZ_case @ W.T, X_case.T @ dZ_case, dZ_case.sum(axis=0)
        N = len(X_case)
        extra = f"divided by N = {N}; dZ = (P - Y) / N already holds the mean's 1/N"
        wrong = [
            (1, "extra_1/N", dW / N, extra),
            (2, "extra_1/N", db / N, extra),
            (0, "sign", -dX, "the sign is flipped: dX = dZ W^T"),
            (1, "sign", -dW, "the sign is flipped: dW = X^T dZ"),
            (2, "sign", -db, "the sign is flipped: db = the sum of dZ over the batch"),
            (
                2,
                "db_not_summed",
                dZ_case,
                "db must be one number per unit, shape (M,): sum dZ over the batch, dZ.sum(axis=0)",
            ),
            (
                2,
                "wrong_axis",
                dZ_case.sum(axis=1),
                "summed over the units (axis 1); sum over "
                "the batch instead, dZ.sum(axis=0), one number per unit",
            ),
        ]
        args = (X_case.copy(), W.copy(), dZ_case.copy())
        cases.append(_Case(label, args, (dX, dW, db), wrong, (), batch_size))
    return cases


def _sgd_step_cases() -> list[_Case]:
    rng = np.random.default_rng(6)
    W, dW = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    cases = []
    for learning_rate in (0.1, 0.01):
        wrong = [
            (
                0,
                "sign",
                W + learning_rate * dW,
                "moved W up the gradient, so the loss rises; "
                "step against it: W - learning_rate * dW",
            ),
            (
                0,
                "missing_learning_rate",
                W - dW,
                "took a whole gradient step; multiply dW by the learning rate",
            ),
        ]
        label = f"W (6, 4), learning rate {learning_rate}"
        args = (W.copy(), dW.copy(), learning_rate)
        cases.append(_Case(label, args, (W - learning_rate * dW,), wrong, may_change=(0,)))
    return cases


def _adam_case(label: str, t: int, seed: int) -> _Case:
    rng = np.random.default_rng(seed)
    W, g = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    if t == 1:
        m, v = np.zeros_like(W), np.zeros_like(W)
    else:
        m, v = 0.1 * rng.standard_normal((6, 4)), 0.1 * rng.random((6, 4))
    lr, beta1, beta2, eps = 1e-3, 0.9, 0.999, 1e-8
    m_new, v_new = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g**2
    m_hat, v_hat = m_new / (1 - beta1**t), v_new / (1 - beta2**t)
    step = lr * m_hat / (np.sqrt(v_hat) + eps)
    wrong = [
        (
            0,
            "no_bias_correction",
            W - lr * m_new / (np.sqrt(v_new) + eps),
            "no bias "
            "correction: m and v start at 0, so divide them by (1 - beta1**t) and (1 - beta2**t)",
        ),
        (0, "sign", W + step, "moved W up the gradient; subtract the step"),
        (
            0,
            "no_sqrt",
            W - lr * m_hat / (v_hat + eps),
            "divided by v_hat; divide by its square root, np.sqrt(v_hat) + eps",
        ),
        (
            1,
            "betas_swapped",
            beta1 * g + (1 - beta1) * m,
            "the weights are swapped: m = beta1 * m + (1 - beta1) * dW",
        ),
        (1, "returned_m_hat", m_hat, "returned m_hat; return m itself, the next step builds on it"),
        (2, "v_not_squared", beta2 * v + (1 - beta2) * g, "v averages the squared gradient, dW**2"),
        (2, "returned_v_hat", v_hat, "returned v_hat; return v itself, the next step builds on it"),
    ]
    args = (W.copy(), g.copy(), m.copy(), v.copy(), t, lr, beta1, beta2, eps)
    return _Case(label, args, (W - step, m_new, v_new), wrong, may_change=(0, 2, 3))


def _adam_step_cases() -> list[_Case]:
    return [_adam_case("the first step, t = 1", 1, 7), _adam_case("step t = 10", 10, 8)]


def _conv2d_forward_cases() -> list[_Case]:
    rng = np.random.default_rng(9)
    X, W, b = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((3, 2, 3, 3)), rng.random(3)
    X_one, W_one, b_one = (
        rng.standard_normal((1, 1, 5, 5)),
        rng.standard_normal((2, 1, 3, 3)),
        b[:2],
    )
    cases = []
    for label, X_case, W_case, b_case, padding in [
        ("X (2, 2, 6, 5), W (3, 2, 3, 3), padding 1", X, W, b, 1),
        ("the same without padding", X, W, b, 0),
        ("a batch of one grey image", X_one, W_one, b_one, 1),
    ]:
        Z = conv2d_forward_loops(X_case, W_case, b_case, padding=padding)
        flipped = conv2d_forward_loops(X_case, W_case[:, :, ::-1, ::-1], b_case, padding=padding)
        wrong = [
            (
                0,
                "flipped_kernel",
                flipped,
                "flipped the filter (convolution in the maths sense); Conv2D computes the "
                "cross-correlation, W[f, c, p, q] * X_pad[n, c, i + p, j + q]",
            ),
            (0, "missing_bias", Z - b_case[:, None, None], "the bias b[f] is missing"),
            (
                0,
                "channels_last",
                Z.transpose(0, 2, 3, 1),
                "the filters are the last axis, (N, OH, OW, F); put them second, (N, F, OH, OW)",
            ),
        ]
        if padding:
            unpadded = conv2d_forward_loops(X_case, W_case, b_case, padding=0)
            wrong.append(
                (
                    0,
                    "no_padding",
                    unpadded,
                    f"ignored the padding: add {padding} "
                    "rows and columns of zeros around each image first (np.pad)",
                )
            )
        args = (X_case.copy(), W_case.copy(), b_case.copy(), padding)
        cases.append(_Case(label, args, (Z,), wrong))
    return cases


_CASES = {
    "relu": (_relu_cases, (("A", "(N, D)"),)),
    "softmax": (_softmax_cases, (("P", "(N, C)"),)),
    "cross_entropy": (_cross_entropy_cases, (("L", "() (one number)"),)),
    "dense_forward": (_dense_forward_cases, (("Z", "(N, M)"),)),
    "dense_backward": (_dense_backward_cases, (("dX", "(N, D)"), ("dW", "(D, M)"), ("db", "(M,)"))),
    "sgd_step": (_sgd_step_cases, (("W", "(D, M)"),)),
    "adam_step": (_adam_step_cases, (("W", "(D, M)"), ("m", "(D, M)"), ("v", "(D, M)"))),
    "conv2d_forward": (_conv2d_forward_cases, (("Z", "(N, F, OH, OW)"),)),
}


def _check_dropout(name: str, function: Callable) -> Result:
    """Dropout is random, so its output is checked by its statistics, not value by value."""
    rate = 0.3
    X = np.random.default_rng(10).uniform(0.5, 1.5, (400, 50))
    inference = _Case("training=False", (X.copy(), rate, False, np.random.default_rng(0)), (X,))
    inference.batch_size = len(X)
    got, problem = _call(name, function, inference)
    if problem is None and not _close(got[0], X):
        why = "at inference (training=False) dropout must return X unchanged"
        problem = _fail(name, "dropout_at_inference", why)
    masks = []
    while problem is None and len(masks) < 2:  # twice with the same seed: the same mask
        args = (X.copy(), rate, True, np.random.default_rng(0))
        got, problem = _call(name, function, _Case("training=True", args, (), batch_size=len(X)))
        problem = problem or _dropout_statistics(name, got[0], X, rate)
        masks.append(None if problem else got[0] != 0)
    if problem is not None:
        return problem
    if not np.array_equal(*masks):
        why = (
            "two calls with the same seeded rng dropped different values: draw the mask from "
            "the rng argument, e.g. rng.random(X.shape) >= rate, not from np.random"
        )
        return _fail(name, "not_seeded", why)
    message = (
        f"{name}: correct ✓ (drops about {rate:.0%} while training, scales the rest by "
        "1 / (1 - rate), passes X through at inference, repeats with the same rng)"
    )
    return Result(name, True, None, message)


def _dropout_statistics(name: str, out: np.ndarray, X: np.ndarray, rate: float) -> Result | None:
    if out.shape != X.shape:
        return _fail(name, "shape", f"expected the shape of X, {X.shape}, got {out.shape}")
    dropped = float(np.mean(out == 0))
    if abs(dropped - (1 - rate)) < 0.03:
        why = (
            f"dropped {dropped:.0%} of the values instead of {rate:.0%}: keep a value "
            "where rng.random(X.shape) >= rate (rate is the share dropped)"
        )
        return _fail(name, "keep_fraction", why)
    if abs(dropped - rate) > 0.03:
        return _fail(
            name, "values", f"dropped {dropped:.0%} of the values, expected about {rate:.0%}"
        )
    ratio = out[out != 0] / X[out != 0]
    if np.allclose(ratio, 1.0):
        why = (
            "the kept values are not scaled: divide them by (1 - rate), so the expected "
            "output equals X and inference needs no change (inverted dropout)"
        )
        return _fail(name, "not_scaled", why)
    if np.allclose(ratio, 1.0 - rate):
        return _fail(
            name, "scaled_wrong_way", "multiplied the kept values by (1 - rate); divide by it"
        )
    if not np.allclose(ratio, 1.0 / (1.0 - rate)):
        return _fail(name, "values", "the kept values should be X / (1 - rate)")
    return None


EXERCISES = (*_CASES, "dropout_forward")
