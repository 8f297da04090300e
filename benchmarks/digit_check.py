"""Calibrate a saved model's "not sure" verdict, measure it, save the calibrated copy.

The probe is fitted on training digits the model trained on against non-digits drawn with one
seed; its threshold comes from the model's own validation split (held-out training digits, the
split `train` made with the model's seed). Nothing is tuned on the test set: MNIST's test digits
and non-digits drawn with another seed only measure it. Also printed: each kind of non-digit left
out of the probe's training (how it does on a kind it never saw), and pictures of test digits
made as image_reading.py makes them. Run from the repository's root (PYTHONPATH=.):

    python benchmarks/digit_check.py runs/cnn.npz --data-dir ../shared/data/mnist \
        --out runs/cnn-checked.npz
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from image_reading import KINDS, read_kind

import mnist_nn as nn
from mnist_nn import digit_check
from mnist_nn.synthetic import NON_DIGIT_KINDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", required=True, help="where to save the calibrated model")
    parser.add_argument("--n-train", type=int, default=10_000, help="training digits for the probe")
    parser.add_argument("--n-per-kind", type=int, default=200, help="non-digits of each kind")
    parser.add_argument("--n-pictures", type=int, default=100, help="test digits per picture kind")
    args = parser.parse_args()

    model = nn.load_model(args.model)
    (X, y), (X_test, y_test) = nn.load_mnist(args.data_dir, download=False, progress=False)
    seed = model.settings.seed if model.settings is not None else 0
    (X_train, _), (X_val, _) = nn.train_val_split(X, y, val_fraction=0.1, seed=seed)
    chosen = np.random.default_rng(0).choice(len(X_train), args.n_train, replace=False)
    start = time.perf_counter()
    check = digit_check.calibrate_digit_check(
        model, X_train[chosen], X_val, args.n_per_kind, seed=1
    )
    print(
        f"{args.model}: calibrated in {time.perf_counter() - start:.1f} s on {args.n_train:,} "
        f"training digits, {check['n_non_digits']:,} non-digits (seed 1), threshold from "
        f"{len(X_val):,} held-out training digits"
    )
    model.save(args.out)

    flagged = digit_check.flag_non_digits(model, X_test)
    print(
        f"MNIST test digits flagged: {flagged.mean():.2%} of {len(X_test):,} "
        f"(accuracy on the rest {np.mean(model.predict(X_test[~flagged]) == y_test[~flagged]):.2%})"
    )
    inputs, kinds, refused = digit_check.prepared_non_digits(args.n_per_kind, seed=2)
    caught = digit_check.flag_non_digits(model, inputs)
    total = len(kinds) + sum(refused.values())
    print(
        f"non-digits caught (seed 2, refused as blank counts as caught): "
        f"{(caught.sum() + sum(refused.values())) / total:.1%} of {total:,}"
    )
    left_out = leave_one_kind_out(model, X_train[chosen], X_val, inputs, kinds, args.n_per_kind)
    print(f"{'kind':12s} {'caught':>7s} {'refused':>8s} {'kind left out of the probe':>27s}")
    for kind in NON_DIGIT_KINDS:
        n_refused = refused.get(kind, 0)
        share = (caught[kinds == kind].sum() + n_refused) / ((kinds == kind).sum() + n_refused)
        print(f"{kind:12s} {share:7.1%} {n_refused:8d} {left_out[kind]:27.1%}")
    pictures_flagged(model, X_test, args.n_pictures)
    drawn_flagged(model, args.n_pictures)


def leave_one_kind_out(model, X_train, X_val, inputs, kinds, n_per_kind) -> dict[str, float]:
    """Each kind's catch rate when the probe was fitted without any non-digit of that kind."""
    digits = np.concatenate(digit_check.last_features(model, X_train), axis=1).astype(float)
    fitted_inputs, fitted_kinds, _ = digit_check.prepared_non_digits(n_per_kind, seed=1)
    others = np.concatenate(digit_check.last_features(model, fitted_inputs), axis=1).astype(float)
    val = digit_check.last_features(model, X_val)
    shapes = np.array([bool(digit_check.shape_problem(digit)) for digit in inputs])
    result = {}
    for kind in NON_DIGIT_KINDS:
        weights, bias = digit_check.fit_probe(digits, others[fitted_kinds != kind])
        check = {"weights": weights, "bias": bias}
        threshold = np.quantile(digit_check.probe_scores(check, *val), 1 - digit_check.FLAG_RATE)
        scores = digit_check.probe_scores(
            check, *digit_check.last_features(model, inputs[kinds == kind])
        )
        result[kind] = float(np.mean((scores > threshold) | shapes[kinds == kind]))
    return result


def pictures_flagged(model, X_test, n: int) -> None:
    """Test digits made into pictures (paper photos, screen drawings, transparent PNGs): the
    share flagged as not digits, which should stay about as low as on MNIST's own inputs."""
    rng = np.random.default_rng(3)
    digits = X_test[rng.choice(len(X_test), n, replace=False)]
    with tempfile.TemporaryDirectory() as folder:
        for kind in KINDS:
            prepared, refused, _ = read_kind(kind, digits, nn.images, Path(folder), rng)
            flagged = digit_check.flag_non_digits(model, prepared[~refused])
            print(
                f"pictures of test digits, {kind}: {flagged.mean():.1%} flagged of {len(flagged)}"
            )


def drawn_flagged(model, n: int) -> None:
    """Digits drawn by code (synthetic.py's pen strokes, not MNIST) enlarged to a 280x280 board
    and prepared: the share flagged, and the share read right among the rest."""
    from PIL import Image

    from mnist_nn.synthetic import make_synthetic_digits

    X, y = make_synthetic_digits(n, seed=4)
    boards = [
        np.asarray(Image.fromarray(x).resize((280, 280), Image.Resampling.BICUBIC)) for x in X
    ]
    prepared = np.stack([nn.prepare_digit_image(board) for board in boards])
    flagged = digit_check.flag_non_digits(model, prepared)
    right = np.mean(model.predict(prepared[~flagged]) == y[~flagged])
    print(
        f"digits drawn by code on a 280x280 board: {flagged.mean():.1%} flagged of {n}, "
        f"{right:.1%} of the rest read right"
    )


if __name__ == "__main__":
    main()
