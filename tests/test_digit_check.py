"""The "not sure" verdict: shape checks, the non-digit probe, calibration and its round trip."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn import digit_check
from mnist_nn.digit_check import (
    NOT_A_DIGIT,
    calibrate_digit_check,
    digit_verdict,
    fit_probe,
    flag_non_digits,
    shape_problem,
)
from mnist_nn.model import build_mlp
from mnist_nn.model_file import load_model
from mnist_nn.synthetic import NON_DIGIT_KINDS, make_non_digits, make_synthetic_digits
from mnist_nn.train import fit


@pytest.fixture(scope="module")
def digits():
    return make_synthetic_digits(1200, seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    X, y = digits
    model = build_mlp((32,), seed=0)
    fit(model, X[:1000], y[:1000], n_epochs=5, batch_size=32, progress=False, n_threads=1)
    return model


def test_dash_and_dot_fail_the_shape_checks_and_drawn_digits_pass(digits):
    dash = np.zeros((28, 28), dtype=np.uint8)
    dash[13:16, 4:24] = 255
    dot = np.zeros((28, 28), dtype=np.uint8)
    rows, columns = np.mgrid[0:28, 0:28]
    dot[(rows - 14) ** 2 + (columns - 14) ** 2 <= 100] = 255
    assert "flat" in shape_problem(dash)
    assert "blob" in shape_problem(dot)
    assert "empty" in shape_problem(np.zeros((28, 28), dtype=np.uint8))
    problems = [shape_problem(x) for x in digits[0][:300]]
    assert sum(bool(problem) for problem in problems) <= 3, set(problems)


def test_fit_probe_separates_two_clouds_and_its_weights_apply_to_raw_inputs():
    rng = np.random.default_rng(0)
    digits = rng.normal(0, 1, (400, 5)) * [1, 2, 3, 4, 5] + 10
    others = digits[:200] + [3, 0, 0, 0, 0]  # shifted along the first input only
    weights, bias = fit_probe(digits, others)
    scores_digits = digits @ weights + bias
    scores_others = others @ weights + bias
    assert np.mean(scores_others > np.median(scores_digits)) > 0.9
    assert np.argmax(np.abs(weights * [1, 2, 3, 4, 5])) == 0  # the input that differs


def test_non_digit_pictures_are_seeded_and_of_every_kind():
    pictures, kinds = make_non_digits(2, seed=3)
    again, _ = make_non_digits(2, seed=3)
    assert kinds == [kind for kind in NON_DIGIT_KINDS for _ in range(2)]
    assert all(p.shape == (160, 160) and p.dtype == np.uint8 for p in pictures)
    assert all(np.array_equal(a, b) for a, b in zip(pictures, again, strict=True))
    other, _ = make_non_digits(2, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(pictures, other, strict=True))


def test_calibration_flags_about_its_rate_of_held_out_digits_and_travels_with_the_model(
    trained, digits, tmp_path
):
    X, _ = digits
    model = trained
    check = calibrate_digit_check(model, X[:600], X[600:1000], n_per_kind=8, flag_rate=0.05)
    assert model.provenance["digit_check"] is check
    held_out = digit_check.probe_scores(check, *digit_check.last_features(model, X[600:1000]))
    assert np.mean(held_out > check["threshold"]) == pytest.approx(0.05, abs=0.01)
    loaded = load_model(model.save(tmp_path / "checked.npz"))
    assert loaded.provenance["digit_check"]["threshold"] == check["threshold"]
    np.testing.assert_array_equal(
        flag_non_digits(loaded, X[1000:]), flag_non_digits(model, X[1000:])
    )
    inputs, kinds, refused = digit_check.prepared_non_digits(8, seed=9)
    caught = (flag_non_digits(model, inputs).sum() + sum(refused.values())) / (
        len(kinds) + sum(refused.values())
    )
    assert caught > np.mean(flag_non_digits(model, X[1000:])) + 0.3  # far more than digits


def test_verdict_says_not_sure_with_the_best_guess(trained, digits):
    dash = np.zeros((28, 28), dtype=np.uint8)
    dash[13:16, 4:24] = 255
    verdict = digit_verdict(trained, dash)
    assert not verdict.is_digit
    assert verdict.message.startswith(NOT_A_DIGIT)
    assert f"best guess {verdict.label}" in verdict.message
    assert verdict.probabilities.shape == (10,)
    assert np.isclose(verdict.probabilities.sum(), 1, atol=1e-5)
    X, y = digits
    plain = build_mlp((8,), seed=1)  # never calibrated: the shape checks alone
    assert "digit_check" not in plain.provenance
    assert digit_verdict(plain, X[0]).is_digit
    assert digit_verdict(plain, X[0]).message.startswith(f"{digit_verdict(plain, X[0]).label}  (")


def test_a_model_of_clothes_skips_the_digit_shape_checks():
    model = build_mlp((8,), seed=0)
    model.provenance["dataset"] = "fashion-mnist"  # a flat shape may be a pair of sandals
    dash = np.zeros((28, 28), dtype=np.uint8)
    dash[13:16, 4:24] = 255
    assert digit_verdict(model, dash).is_digit
    model.provenance["dataset"] = "mnist"
    assert not digit_verdict(model, dash).is_digit
