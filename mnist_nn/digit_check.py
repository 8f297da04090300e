"""Is it a digit at all? An honest answer for pictures unlike the training digits: digit_verdict
says "not sure: this does not look like a handwritten digit" (with the best guess) when the input
is a blob or a flat line, or when a probe on the network's last features calls it a non-digit.

The probe is a logistic regression on the features the output layer sees (and the logits),
trained on training digits against non-digits drawn in code (synthetic.make_non_digits: letters,
symbols, shapes, scribbles, plots, specks, dashes, dots), after Hendrycks, Mazeika and Dietterich's
outlier exposure (2019); its threshold lets through all but FLAG_RATE of held-out training digits.
calibrate_digit_check stores it in model.provenance, so it travels with the saved model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_nn.activations import softmax
from mnist_nn.validation import check_images

NOT_A_DIGIT = "not sure: this does not look like a handwritten digit"
FLAG_RATE = 0.005  # share of held-out training digits the probe may call non-digits
# Shape checks on the 28x28 input, from MNIST's 60,000 training digits: an ink core left after
# three 3x3 erosions of the pixels above 127 is at most 16 pixels for 99.95% of them (a dot or a
# smudge blown up to 20x20 leaves 60 or more); their ink is at least 11 pixels tall for 99.95%
# (a dash: 1 to 6).
MAX_INK_CORE = 24
MIN_INK_HEIGHT = 8
KEY = "digit_check"


@dataclass(frozen=True)
class DigitVerdict:
    """What a model says about one input: its best guess, and whether it looks like a digit.

    label: the most probable class; probabilities: (C,) softmax output; is_digit: False when the
    input is unlike the training digits (then `reason` says why); message: one line to show.
    """

    label: int
    probabilities: np.ndarray
    is_digit: bool
    reason: str
    class_names: tuple[str, ...]

    @property
    def message(self) -> str:
        top = np.argsort(self.probabilities)[::-1][:3]
        ranked = ", ".join(f"{self.class_names[k]} {self.probabilities[k]:.1%}" for k in top)
        if self.is_digit:
            return f"{self.class_names[self.label]}  ({ranked})"
        return (
            f"{NOT_A_DIGIT} ({self.reason}); best guess {self.class_names[self.label]}  ({ranked})"
        )


def digit_verdict(model, digit: np.ndarray) -> DigitVerdict:
    """The verdict on one MNIST-style input (28, 28) (e.g. from prepare_digit_image).

    Shape checks always run; the feature probe only when the model was calibrated
    (calibrate_digit_check), otherwise the reason says so if the shape checks pass.
    """
    digit = np.asarray(digit)
    features, logits = last_features(model, digit[None])
    probabilities = softmax(logits)[0]
    reason = shape_problem(digit) if reads_digits(model) else ""
    if not reason and KEY in model.provenance:
        check = model.provenance[KEY]
        if probe_scores(check, features, logits)[0] > check["threshold"]:
            reason = "its features are unlike those of the training digits"
    return DigitVerdict(
        label=int(np.argmax(probabilities)),
        probabilities=probabilities,
        is_digit=not reason,
        reason=reason,
        class_names=tuple(model.class_names()),
    )


def reads_digits(model) -> bool:
    """Whether the model's classes are the ten digits: the shape checks know digits only, so a
    model of other pictures (Fashion-MNIST's clothes) skips them."""
    return model.class_names() == [str(label) for label in range(10)]


def shape_problem(digit: np.ndarray) -> str:
    """Why a (28, 28) input cannot be a digit from its shape alone, or "" if it may be one."""
    ink = np.asarray(digit, dtype=np.float64)
    ink = ink / 255.0 if np.asarray(digit).dtype == np.uint8 else ink
    rows = np.flatnonzero((ink > 0.2).any(axis=1))
    if len(rows) == 0:
        return "it is empty"
    if rows[-1] - rows[0] + 1 < MIN_INK_HEIGHT:
        return "it is a flat line, like a dash"
    core = ink > 0.5
    for _ in range(3):
        core = _erode(core)
    if np.count_nonzero(core) > MAX_INK_CORE:
        return "it is a blob, like a dot or a smudge, not strokes"
    return ""


def _erode(mask: np.ndarray) -> np.ndarray:
    """Keep the pixels of a (H, W) mask whose 3x3 neighbourhood is all in it."""
    height, width = mask.shape
    padded = np.pad(mask, 1)
    kept = mask.copy()
    for row in range(3):
        for column in range(3):
            kept &= padded[row : row + height, column : column + width]
    return kept


def last_features(model, X: np.ndarray, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """What the output layer sees, (N, D) flattened, and the logits (N, C), for images X."""
    X = check_images(X, model.input_shape)
    features, logits = [], []
    for start in range(0, len(X), batch_size):
        A = model.prepare_input(X[start : start + batch_size])
        for layer in model.layers[:-1]:
            A = layer.forward(A)
        A = A.reshape(len(A), -1)
        features.append(A)
        logits.append(model.layers[-1].forward(A))
    return np.concatenate(features), np.concatenate(logits)


def probe_scores(check: dict, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The probe's score (N,): the log-odds that each input is not a digit."""
    inputs = np.concatenate([features, logits], axis=1).astype(np.float64)  # (N, D + C)
    return inputs @ np.asarray(check["weights"]) + check["bias"]


def fit_probe(
    digits: np.ndarray, non_digits: np.ndarray, l2: float = 0.01, n_steps: int = 300
) -> tuple[np.ndarray, float]:
    """Logistic regression, non-digit = 1, on inputs (N, D) standardized by the digits' mean and
    deviation, each class weighted half; full-batch gradient descent from zero (deterministic).
    Returns weights (D,) and bias that apply to the unstandardized inputs."""
    mean, std = digits.mean(axis=0), digits.std(axis=0) + 1e-3
    A = (np.concatenate([digits, non_digits]) - mean) / std  # (N, D)
    t = np.concatenate([np.zeros(len(digits)), np.ones(len(non_digits))])  # (N,)
    weight = np.where(t == 1, 0.5 / len(non_digits), 0.5 / len(digits))  # (N,)
    w, b = np.zeros(A.shape[1]), 0.0
    for _ in range(n_steps):
        P = 1.0 / (1.0 + np.exp(-(A @ w + b)))
        error = weight * (P - t)  # gradient of the weighted mean cross-entropy
        w -= A.T @ error + l2 * w
        b -= float(error.sum())
    return w / std, b - float(mean / std @ w)


def calibrate_digit_check(
    model,
    X_train: np.ndarray,
    X_held_out: np.ndarray,
    n_per_kind: int = 200,
    flag_rate: float = FLAG_RATE,
    seed: int = 0,
) -> dict:
    """Fit the non-digit probe and its threshold, store them in model.provenance (saved with
    the model) and return them.

    X_train: training digits (N, 28, 28) for the probe (a few thousand are enough); X_held_out:
    digits the model never trained on (its validation split), for the threshold only, so that
    about `flag_rate` of unseen digits are called non-digits. The non-digits are drawn in code
    (n_per_kind of each of synthetic.NON_DIGIT_KINDS) and prepared as a picture would be.
    """
    non_digits = prepared_non_digits(n_per_kind, seed)[0]
    digit_inputs = np.concatenate(last_features(model, X_train), axis=1).astype(np.float64)
    other_inputs = np.concatenate(last_features(model, non_digits), axis=1).astype(np.float64)
    weights, bias = fit_probe(digit_inputs, other_inputs)
    check = {"weights": weights.tolist(), "bias": bias, "threshold": 0.0}
    held_out = probe_scores(check, *last_features(model, X_held_out))
    check.update(
        threshold=float(np.quantile(held_out, 1.0 - flag_rate)),
        flag_rate=flag_rate,
        n_held_out=len(X_held_out),
        n_non_digits=len(non_digits),
        seed=seed,
    )
    model.provenance[KEY] = check
    return check


def prepared_non_digits(n_per_kind: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Non-digit pictures as the network would see them: inputs (N, 28, 28) uint8, their kinds
    (N,), and how many of each kind the preparation refused as blank (an honest answer too)."""
    from mnist_nn.images import prepare_digit_image
    from mnist_nn.synthetic import make_non_digits

    pictures, kinds = make_non_digits(n_per_kind, seed=seed)
    inputs, kept_kinds, refused = [], [], {}
    for picture, kind in zip(pictures, kinds, strict=True):
        try:
            inputs.append(prepare_digit_image(picture))
            kept_kinds.append(kind)
        except ValueError:
            refused[kind] = refused.get(kind, 0) + 1
    return np.array(inputs, dtype=np.uint8).reshape(-1, 28, 28), np.array(kept_kinds), refused


def flag_non_digits(model, X: np.ndarray) -> np.ndarray:
    """digit_verdict for many inputs (N, 28, 28) at once: (N,) True where it says "not sure"."""
    X = np.asarray(X)
    flagged = np.array([reads_digits(model) and bool(shape_problem(digit)) for digit in X])
    if KEY in model.provenance:
        check = model.provenance[KEY]
        flagged |= probe_scores(check, *last_features(model, X)) > check["threshold"]
    return flagged
