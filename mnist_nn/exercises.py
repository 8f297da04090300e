"""The walkthrough's exercises and their checker: check(name, function) runs a learner's function on
seeded inputs (awkward ones too: large logits, a batch of one), compares every output with the
reference and names the usual mistake when it finds one, leading with ✗ and the fix, e.g.
"✗ dense_backward: dW: expected (6, 4), got (4, 6): transposed". hint(name) helps on request;
progress() tables every exercise and question."""

from __future__ import annotations

import inspect
import re
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mnist_nn.conv import conv2d_forward_loops
from mnist_nn.solutions import SOLUTIONS, hint
from mnist_nn.tables import format_table

NOT_ATTEMPTED = "not_attempted"
RTOL, ATOL = 1e-5, 1e-7  # float32 arithmetic inside a learner's function still passes
__all__ = ["EXERCISES", "NOT_ATTEMPTED", "Result", "check", "hint", "progress", "record", "wrapped"]
GENERIC = ("values", "error", "shape", "outputs")  # mistakes the checker could not name


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
    batch_size: int = 0  # > 0: a Python loop over this many samples is timed and reported
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
    mistake "not_attempted" and never raises, so the notebook runs on. The latest Result of each
    exercise is kept for progress().
    """
    if name == "dropout_forward":
        result = _check_dropout(name, function)
    elif name in _CASES:
        cases, outputs = _CASES[name]
        result = _check_cases(name, function, cases(), outputs)
    else:
        raise ValueError(f"unknown exercise {name!r}; the exercises are {list(EXERCISES)}")
    record(result)
    if verbose:
        print(wrapped(result.message))
    return result


def wrapped(message: str, width: int = 90) -> str:
    """The message in lines of at most `width` characters, broken between words only (a
    notebook's output area would break long lines anywhere, mid-word)."""
    return "\n".join(
        textwrap.fill(
            line, width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False
        )
        for line in message.splitlines()
    )


_RECORD: dict[str, Result] = {}
_QUESTION_NAMES: list[str] = []  # questions.py adds its own; this module never imports it


def register_questions(names) -> None:
    """Name the questions progress() lists beside the exercises (questions.py calls this)."""
    _QUESTION_NAMES.extend(name for name in names if name not in _QUESTION_NAMES)


def record(result: Result) -> None:
    """Keep the latest result of an exercise or a question, for progress()."""
    _RECORD[result.name] = result


def progress() -> str:
    """A table of every exercise and question: passed, failed (with the mistake) or not tried."""
    rows = [["", "exercise or question", "status"]]
    for kind, names in [("exercise", EXERCISES), ("question", _QUESTION_NAMES)]:
        for name in names:
            result = _RECORD.get(name)
            if result is None or result.mistake == NOT_ATTEMPTED:
                status = "not attempted"
            else:
                status = "passed ✓" if result.passed else f"failed ✗ ({result.mistake})"
            rows.append([kind, name, status])
    done = sum(row[2].startswith("passed") for row in rows[1:])
    return _Table(format_table(rows) + f"\n\n{done} of {len(rows) - 1} passed")


class _Table(str):
    def __repr__(self) -> str:
        return str(self)


def _fail(name: str, mistake: str, message: str) -> Result:
    return Result(name, False, mistake, f"✗ {name}: {message}")


def _check_cases(name: str, function: Callable, cases: list[_Case], outputs: tuple) -> Result:
    looped = None
    for case in cases:
        got, problem = _call(name, function, case)
        if problem is None:
            problem = _compare(name, case, got, outputs)
        if problem is not None:
            return problem
        if case.batch_size and _Watched.reads >= case.batch_size:
            looped = looped or case
    tried = "; ".join(case.label for case in cases)
    message = f"✓ {name}: correct (tried {tried})"
    if looped is not None:
        message += "\n" + _loop_note(name, function, looped)
    return Result(name, True, None, message)


def _loop_note(name: str, function: Callable, case: _Case, rows: int = 256) -> str:
    """How much slower the learner's loop over the samples is than whole-array code, measured."""
    repeat = rows // case.batch_size
    args = [
        np.repeat(arg, repeat, axis=0)
        if isinstance(arg, np.ndarray) and arg.shape[:1] == (case.batch_size,)
        else arg
        for arg in case.args
    ]

    def seconds(f: Callable) -> float:
        best = np.inf
        for _ in range(5):
            start = time.perf_counter()
            f(*args)
            best = min(best, time.perf_counter() - start)
        return best

    yours, whole = seconds(function), seconds(SOLUTIONS[name])
    return (
        f"  It loops over the samples in Python: on a batch of {rows} it took "
        f"{yours * 1e3:.2f} ms, whole-array NumPy {whole * 1e3:.3f} ms, "
        f"{yours / max(whole, 1e-9):.0f}x slower. Right, but slow for training."
    )


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
        return None, _explain_error(name, case, error)
    problem = _misbehaviour(name, function, case, output, copies)
    if problem is not None:
        return None, problem
    outputs = output if isinstance(output, tuple | list) else (output,)
    return tuple(np.asarray(item) for item in outputs), None


# What each exercise's arrays are, said when the learner's shapes do not line up.
_SHAPES = {
    "relu": "Z is (N, D) and A = max(0, Z) has the same shape",
    "relu_backward": "dA and Z are both (N, D): dZ = dA * (Z > 0), entry by entry",
    "softmax": "Z is (N, C); Z.max(axis=1) and E.sum(axis=1) are (N,), while keepdims=True keeps "
    "them (N, 1), which lines up with the rows of E",
    "cross_entropy": "P and Y are both (N, C); the loss is one number",
    "softmax_cross_entropy_backward": "P and Y are both (N, C), and so is (P - Y) / N",
    "dense_forward": "X is (N, D) and W is (D, M): X @ W is (N, M), and b (M,) adds to every row",
    "dense_backward": "X is (N, D), W is (D, M) and dZ is (N, M): dX = dZ @ W.T is (N, D), "
    "dW = X.T @ dZ is (D, M), db = dZ.sum(axis=0) is (M,)",
    "hidden_layer_backward": "X is (N, D), W is (D, M), Z and dA are (N, M): first "
    "dZ = dA * (Z > 0), (N, M), then dX = dZ @ W.T (N, D) and dW = X.T @ dZ (D, M)",
    "sgd_step": "W and dW have the same shape",
    "adam_step": "W, dW, m and v all have the same shape",
    "conv2d_forward": "X is (N, C, H, W) and W is (F, C, K, K); pad height and width only: "
    "np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))",
    "maxpool_backward": "X is (N, C, H, W) and dout is (N, C, H / 2, W / 2): each dout value "
    "goes back to one position of its 2 x 2 window",
}

# Errors that one mistake gives: (exercise, NumPy's message for the case's arrays, mistake, fix).
_ERROR_MISTAKES = [
    (
        "dense_forward",
        lambda X, W, b: f"broadcast.*{_shape(X.shape)} {_shape(W.shape)}",
        "elementwise_product",
        "X * W multiplies entry by entry; a layer needs the matrix product: X is (N, D) and W "
        "is (D, M): X @ W",
    ),
    (
        "dense_forward",
        lambda X, W, b: rf"broadcast.*\({len(b)},1\)",
        "bias_column",
        "the bias was made a column (M, 1); keep b as it is, (M,), so + b adds it to every row",
    ),
    (
        "softmax",
        lambda Z: rf"broadcast.*{_shape(Z.shape)} \({len(Z)},\)",
        "keepdims",
        "the row sums have shape (N,) and cannot divide an (N, C) array; sum with "
        "keepdims=True, shape (N, 1), which divides each row",
    ),
]


def _shape(shape: tuple) -> str:
    """A shape as NumPy writes it in its errors, as a regular expression: (8, 4) -> \\(8,4\\)."""
    return re.escape("(" + ",".join(map(str, shape)) + ")")


def _explain_error(name: str, case: _Case, error: Exception) -> Result:
    """An error raised by the learner's code, said as the fix: named where it is a known mistake,
    else the shapes of the exercise's arrays, with NumPy's own words last."""
    text = str(error).splitlines()[0] if str(error) else ""
    numpy_said = f"(NumPy: {type(error).__name__}: {text}; on {case.label})"
    for exercise, pattern, mistake, why in _ERROR_MISTAKES:
        if exercise == name and re.search(pattern(*case.args), text):
            return _fail(name, mistake, f"{why} {numpy_said}")
    shape_words = ("shape", "broadcast", "matmul", "mismatch", "align", "dimension", "size")
    if isinstance(error, ValueError | IndexError) and any(w in text for w in shape_words):
        fix = f"the shapes do not line up: {_SHAPES[name]}"
        return _fail(name, "shapes", f"{fix} {numpy_said}")
    return _fail(name, "error", f"your code raised {type(error).__name__}: {text} ({case.label})")


def _misbehaviour(name: str, function: Callable, case: _Case, output, copies) -> Result | None:
    """No result, or an input changed in place."""
    if output is None:
        return _fail(name, "no_return", "returned None: add `return` with the result")
    for index, (arg, copy) in enumerate(zip(case.args, copies, strict=True)):
        if copy is None or index in case.may_change or np.array_equal(arg, copy, equal_nan=True):
            continue
        return _fail(
            name,
            "in_place",
            f"compute a new array instead of changing {_argument_name(function, index)} in "
            "place (with -=, *=, [...] = or out=): the caller still needs the old values",
        )
    return None


def _argument_name(function: Callable, index: int) -> str:
    """The name of the function's parameter number `index` (from 0), or its number."""
    try:
        return list(inspect.signature(function).parameters)[index]
    except (ValueError, TypeError, IndexError):
        return f"argument number {index + 1}"


def _compare(name: str, case: _Case, got: tuple, outputs: tuple) -> Result | None:
    """Every output compared, not only up to the first difference: the named mistakes lead."""
    if len(got) != len(case.expected):
        names = ", ".join(output for output, _ in outputs)
        return _fail(
            name, "outputs", f"return {len(outputs)} values, {names}; yours returned {len(got)}"
        )
    problems = [
        problem
        for index, (value, expected) in enumerate(zip(got, case.expected, strict=True))
        if (problem := _compare_output(name, case, index, value, expected, outputs[index]))
    ]
    if not problems:
        return None
    problems.sort(key=lambda problem: problem[0] in GENERIC)  # named mistakes first
    mistake = problems[0][0]
    return _fail(name, mistake, "\n  also ".join(message for _, message in problems))


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == np.shape(b) and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def _compare_output(name, case, index, got, expected, output) -> tuple[str, str] | None:
    """None when `got` is right, else (mistake, message) for output number index."""
    output_name, symbols = output
    if _close(got, expected):
        return None
    where = f"{output_name} ({case.label})"
    for output_index, mistake, value, why in case.wrong:
        if output_index == index and _close(got, value):
            return mistake, f"{why} [{where}]"
    if got.shape != expected.shape:
        shapes = f"expected shape {symbols} = {expected.shape}, got {got.shape}"
        if got.ndim == 2 and _close(got.T, expected):
            return "transposed", f"{where}: {shapes}, the transpose of the answer"
        return "shape", f"{where}: {shapes}. {_SHAPES[name]}"
    if not np.all(np.isfinite(got)):
        return case.non_finite[0], f"{case.non_finite[1]} [{where}]"
    return "values", f"{where}: {_difference(got, expected)}"


def _difference(got: np.ndarray, expected: np.ndarray) -> str:
    """Where and how the values differ: how many, the worst one, and a pattern if there is one."""
    wrong = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL)
    worst = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
    at = f" at index {tuple(int(i) for i in worst)}" if got.ndim else ""
    text = f"wrong values{at}: expected {expected[worst]:.6g}, got {got[worst]:.6g}"
    if got.ndim:
        text += f" ({int(wrong.sum())} of {wrong.size} values differ"
        ratio = got[wrong] / np.where(expected[wrong] == 0, np.nan, expected[wrong])
        if ratio.size and np.allclose(ratio, ratio[0], rtol=1e-4):
            text += f"; each is {ratio[0]:.4g} times the right value"
        text += ")"
    return text


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


def _cross_entropy_inputs() -> tuple[np.ndarray, ...]:
    """P, Y, and two awkward versions of P: a wrong class at exactly 0, a right class at 1e-5."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 8)
    P = _softmax_reference(rng.standard_normal((8, 10)))
    Y = np.eye(10)[y]  # (8, 10) one-hot
    P_zero = P.copy()
    P_zero[0, (y[0] + 1) % 10] = 0.0  # a wrong class the network is sure about
    P_zero[0] /= P_zero[0].sum()
    P_small = P.copy()
    P_small[1] = (1 - 1e-5) / 9  # image 1 is sure of the wrong classes: its right class
    P_small[1, y[1]] = 1e-5  # has probability 1e-5, so its loss is -log(1e-5) = 11.5
    return P, Y, P_zero, P_small


_LOG_OF_ZERO = (
    "log_of_zero",
    "NaN: 0 * log(0) where a wrong class has probability 0; only the right class counts, "
    "so take the log of P[Y == 1] (or np.log(P + 1e-12))",
)


def _cross_entropy_cases() -> list[_Case]:
    P, Y, P_zero, P_small = _cross_entropy_inputs()
    cases = []
    for label, P_case, Y_case, batch_size in [
        ("P and Y of shape (8, 10)", P, Y, 8),
        ("a wrong class with probability exactly 0", P_zero, Y, 0),
        ("a right class with probability 1e-5", P_small, Y, 0),
        ("a batch of one", P[:1], Y[:1], 0),
    ]:
        losses = -np.log(P_case[Y_case == 1])  # (N,): minus the log of the right class's P
        N, C = P_case.shape
        wrong = [
            (
                0,
                "clipped",
                -np.log(np.clip(P_case[Y_case == 1], floor, 1)).mean(),
                f"do not clip P (here at {floor:g}): a right class with probability 1e-5 must "
                "cost -log(1e-5) = 11.5; to avoid log(0) add a tiny 1e-12, or take P[Y == 1]",
            )
            for floor in (1e-2, 1e-3, 1e-4)
        ]
        wrong += [
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
        cases.append(_Case(label, args, (losses.mean(),), wrong, (), batch_size, _LOG_OF_ZERO))
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
            (0, "extra_1/N", dX / N, extra),
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
            (
                0,
                "fixed_learning_rate",
                W - (0.1 if learning_rate != 0.1 else 0.01) * dW,
                "use the learning_rate argument, not a number written in the function",
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


def _relu_backward_cases() -> list[_Case]:
    rng = np.random.default_rng(11)
    Z, dA = rng.standard_normal((8, 5)), rng.standard_normal((8, 5))
    Z[0, :3] = 0.0  # the kink: the package takes the slope at 0 as 0
    cases = []
    for label, Z_case, dA_case, batch_size in [
        ("dA and Z of shape (8, 5), some Z exactly 0", Z, dA, 8),
        ("a batch of one", Z[:1], dA[:1], 0),
    ]:
        wrong = [
            (
                0,
                "at_zero",
                dA_case * (Z_case >= 0),
                "use Z > 0, not Z >= 0: at z = 0 the slope is taken as 0 (the package does)",
            ),
            (0, "mask_only", (Z_case > 0) * 1.0, "multiply the incoming dA by the mask (Z > 0)"),
            (
                0,
                "used_relu",
                dA_case * np.maximum(Z_case, 0),
                "multiply by ReLU's derivative, the mask (Z > 0), not by relu(Z) itself",
            ),
            (
                0,
                "mask_from_dA",
                dA_case * (dA_case > 0),
                "take the mask from Z, the forward pass's input (Z > 0), not from dA",
            ),
            (0, "sign", -dA_case * (Z_case > 0), "the sign is flipped: dZ = dA * (Z > 0)"),
        ]
        args = (dA_case.copy(), Z_case.copy())
        cases.append(_Case(label, args, (dA_case * (Z_case > 0),), wrong, (), batch_size))
    return cases


def _softmax_cross_entropy_backward_cases() -> list[_Case]:
    rng = np.random.default_rng(12)
    P = _softmax_reference(2.0 * rng.standard_normal((8, 10)))
    Y = np.eye(10)[rng.integers(0, 10, 8)]
    cases = []
    for label, P_case, Y_case, batch_size in [
        ("P and Y of shape (8, 10)", P, Y, 8),
        ("a batch of one", P[:1], Y[:1], 0),
    ]:
        N, C = P_case.shape
        dZ = (P_case - Y_case) / N
        wrong = [
            (
                0,
                "missing_1/N",
                P_case - Y_case,
                f"divide by N = {N}: the loss is the mean over the batch, so each image's "
                "gradient P - Y carries 1/N",
            ),
            (0, "sign", -dZ, "the sign is flipped: dZ = (P - Y) / N"),
            (
                0,
                "divided_by_NC",
                (P_case - Y_case) / (N * C),
                f"divide by N = {N} only; the loss sums over the classes, it averages over images",
            ),
            (
                0,
                "softmax_jacobian",
                P_case * (1 - P_case) / N,
                "P (1 - P) is the softmax's diagonal slope alone; with the cross-entropy the "
                "product of the two collapses to (P - Y) / N",
            ),
        ]
        cases.append(_Case(label, (P_case.copy(), Y_case.copy()), (dZ,), wrong, (), batch_size))
    return cases


def _hidden_layer_backward_cases() -> list[_Case]:
    rng = np.random.default_rng(13)
    X, W, b = rng.standard_normal((8, 6)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    dA = rng.standard_normal((8, 4))
    cases = []
    for label, X_case, dA_case, batch_size in [
        ("X (8, 6), W (6, 4), Z and dA (8, 4)", X, dA, 8),
        ("a batch of one", X[:1], dA[:1], 0),
    ]:
        Z = X_case @ W + b
        dZ = dA_case * (Z > 0)
        dX, dW, db = dZ @ W.T, X_case.T @ dZ, dZ.sum(axis=0)
        no_mask = "pass dA through the ReLU first: dZ = dA * (Z > 0), then the dense layer"
        wrong = [
            (0, "no_mask", dA_case @ W.T, no_mask),
            (1, "no_mask", X_case.T @ dA_case, no_mask),
            (2, "no_mask", dA_case.sum(axis=0), no_mask),
            (
                0,
                "mask_on_dX",
                (dA_case @ W.T) * (X_case > 0),
                "the mask belongs to this layer's Z, before the product with W.T: "
                "dZ = dA * (Z > 0), dX = dZ @ W.T",
            ),
            (1, "extra_1/N", dW / len(X_case), "dA already holds the mean's 1/N: do not divide"),
            (2, "extra_1/N", db / len(X_case), "dA already holds the mean's 1/N: do not divide"),
            (1, "sign", -dW, "the sign is flipped: dW = X^T dZ"),
            (2, "db_not_summed", dZ, "sum dZ over the batch: db = dZ.sum(axis=0), shape (M,)"),
        ]
        args = (dA_case.copy(), X_case.copy(), W.copy(), Z.copy())
        cases.append(_Case(label, args, (dX, dW, db), wrong, (), batch_size))
    return cases


def _maxpool_backward_cases() -> list[_Case]:
    rng = np.random.default_rng(14)
    X = rng.standard_normal((2, 3, 4, 6))  # no ties: each window has one maximum
    dout = rng.standard_normal((2, 3, 2, 3))
    cases = []
    for label, X_case, dout_case in [
        ("X (2, 3, 4, 6), dout (2, 3, 2, 3)", X, dout),
        ("one image, one channel", X[:1, :1], dout[:1, :1]),
    ]:
        spread = np.repeat(np.repeat(dout_case, 2, axis=2), 2, axis=3)  # (N, C, H, W)
        wrong = [
            (
                0,
                "every_position",
                spread,
                "send each gradient to the window's maximum only; the other three inputs did "
                "not change the output, so their gradient is 0",
            ),
            (
                0,
                "average",
                spread / 4,
                "that is average pooling's backward pass (dout / 4 everywhere); max pooling "
                "sends dout to the maximum only",
            ),
        ]
        args = (dout_case.copy(), X_case.copy())
        expected = (SOLUTIONS["maxpool_backward"](dout_case, X_case),)
        cases.append(_Case(label, args, expected, wrong))
    return cases


_GRADIENTS = (("dX", "(N, D)"), ("dW", "(D, M)"), ("db", "(M,)"))
_CASES = {
    "relu": (_relu_cases, (("A", "(N, D)"),)),
    "relu_backward": (_relu_backward_cases, (("dZ", "(N, D)"),)),
    "softmax": (_softmax_cases, (("P", "(N, C)"),)),
    "cross_entropy": (_cross_entropy_cases, (("L", "() (one number)"),)),
    "softmax_cross_entropy_backward": (
        _softmax_cross_entropy_backward_cases,
        (("dZ", "(N, C)"),),
    ),
    "dense_forward": (_dense_forward_cases, (("Z", "(N, M)"),)),
    "dense_backward": (_dense_backward_cases, _GRADIENTS),
    "hidden_layer_backward": (_hidden_layer_backward_cases, _GRADIENTS),
    "sgd_step": (_sgd_step_cases, (("W", "(D, M)"),)),
    "adam_step": (_adam_step_cases, (("W", "(D, M)"), ("m", "(D, M)"), ("v", "(D, M)"))),
    "conv2d_forward": (_conv2d_forward_cases, (("Z", "(N, F, OH, OW)"),)),
    "maxpool_backward": (_maxpool_backward_cases, (("dX", "(N, C, H, W)"),)),
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
        f"✓ {name}: correct (drops about {rate:.0%} while training, scales the rest by "
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
