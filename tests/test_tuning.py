"""k-fold splits, cross-validation and grid search: exact partitions, stratification,
reproducibility for any number of processes, sensible rankings and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_nn.settings import FIELD_NAMES, Settings
from mnist_nn.synthetic import make_synthetic_digits
from mnist_nn.train import build_and_fit
from mnist_nn.tuning import (
    CVResult,
    GridResults,
    cross_validate,
    grid_search,
    stratified_kfold,
)

FAST = Settings(hidden_sizes=16, n_epochs=2, batch_size=32)


@pytest.fixture(scope="module")
def digits():
    return make_synthetic_digits(240, seed=0)


def scores(result: CVResult) -> tuple:
    """Everything but the timings."""
    return result.settings, result.fold_val_accuracy, result.fold_val_loss, result.n_diverged


@pytest.mark.parametrize("k", [2, 3, 7])
def test_folds_partition_the_indices(k):
    y = np.random.default_rng(1).integers(0, 10, size=203)
    folds = stratified_kfold(y, k, seed=3)
    assert len(folds) == k
    validation = np.concatenate([val_index for _, val_index in folds])
    assert np.array_equal(np.sort(validation), np.arange(len(y)))  # each sample once
    for train_index, val_index in folds:
        assert np.intersect1d(train_index, val_index).size == 0
        assert np.array_equal(np.union1d(train_index, val_index), np.arange(len(y)))
    sizes = [len(val_index) for _, val_index in folds]
    assert max(sizes) - min(sizes) <= 1


def test_folds_keep_class_proportions_within_one_sample():
    # Unequal classes (5 to 50 samples) make a naive split drift by several samples.
    y = np.repeat(np.arange(10), [5, 50, 12, 33, 7, 21, 9, 40, 16, 28])
    np.random.default_rng(0).shuffle(y)
    k = 5
    counts = np.array(
        [np.bincount(y[val_index], minlength=10) for _, val_index in stratified_kfold(y, k, 0)]
    )
    expected = np.bincount(y) / k
    assert np.all(np.abs(counts - expected) < 1)
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)


def test_folds_follow_the_seed():
    y = np.arange(100) % 4
    first, again = stratified_kfold(y, 4, seed=5), stratified_kfold(y, 4, seed=5)
    other = stratified_kfold(y, 4, seed=6)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("k", [1, 0, 6])
def test_bad_k_is_rejected(k):
    y = np.repeat(np.arange(3), [10, 10, 5])  # smallest class: 5 samples
    with pytest.raises(ValueError, match="k must be at least 2|smallest class"):
        stratified_kfold(y, k)


def test_a_class_with_one_sample_asks_for_more_samples_not_k_at_most_1():
    y = np.repeat(np.arange(3), [10, 10, 1])
    with pytest.raises(ValueError, match="label 2 has 1 sample\\)") as error:
        stratified_kfold(y, 3)
    assert "k <=" not in str(error.value) and "add samples of label 2" in str(error.value)


def test_cross_validate_same_seed_same_numbers(digits):
    X, y = digits
    result = cross_validate(X, y, FAST, k=3, seed=1, n_jobs=1, progress=False)
    again = cross_validate(X, y, k=3, n_jobs=1, progress=False, **FAST.replace(seed=1).to_dict())
    other_seed = cross_validate(X, y, FAST, k=3, seed=2, n_jobs=1, progress=False)
    assert scores(result) == scores(again)
    assert result.fold_val_accuracy != other_seed.fold_val_accuracy
    assert result.k == 3 and result.settings == FAST.replace(seed=1)
    assert result.settings.hidden_sizes == (16,)
    assert result.mean_val_accuracy == pytest.approx(np.mean(result.fold_val_accuracy))
    assert result.std_val_accuracy == pytest.approx(np.std(result.fold_val_accuracy, ddof=1))
    assert result.wall_seconds >= result.seconds / 10 > 0  # time is measured


def test_two_processes_give_the_numbers_of_one(digits):
    X, y = digits
    grid = {"hidden_sizes": [8, (16, 8)], "learning_rate": [1e-3, 1e-2]}
    base = FAST.replace(seed=4)
    serial = grid_search(X, y, grid, base, k=3, n_jobs=1, progress=False)
    parallel = grid_search(X, y, grid, base, k=3, n_jobs=2, progress=False)
    assert [scores(result) for result in serial] == [scores(result) for result in parallel]
    # A configuration's numbers don't depend on the rest of the grid either.
    alone = cross_validate(
        X, y, FAST, hidden_sizes=(16, 8), learning_rate=1e-2, k=3, seed=4, n_jobs=1, progress=False
    )
    assert scores(alone) in [scores(result) for result in serial]


def test_grid_search_ranks_a_tiny_learning_rate_last(digits):
    X, y = digits
    results = grid_search(
        X, y, {"learning_rate": [1e-6, 1e-2]}, FAST, k=3, n_jobs=1, progress=False
    )
    assert isinstance(results, GridResults) and len(results) == 2
    assert isinstance(results.best_settings, Settings)
    assert results.best_settings == FAST.replace(learning_rate=1e-2)
    assert results[1].settings.learning_rate == 1e-6
    assert results[0].mean_val_accuracy > results[1].mean_val_accuracy + 0.2


def test_results_print_and_export_as_plain_rows(digits):
    X, y = digits
    results = grid_search(
        X,
        y,
        {"hidden_sizes": [4, 16, (16, 8)]},
        Settings(n_epochs=2),
        k=2,
        n_jobs=1,
        progress=False,
    )
    rows = results.to_rows()
    accuracies = [row["mean_val_accuracy"] for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert set(FIELD_NAMES) <= set(rows[0])
    assert (
        Settings.from_dict({name: rows[0][name] for name in FIELD_NAMES}) == results.best_settings
    )
    assert json.loads(json.dumps(rows)) == rows  # plain data only
    text = str(results)
    assert "hidden_sizes" in text and "val accuracy" in text and "16-8" in text
    assert text.splitlines()[1].split()[0] == "1"
    assert "<table>" in results._repr_html_() and "±" in results._repr_html_()


def test_a_diverging_setting_is_scored_not_fatal(digits):
    X, y = digits
    result = cross_validate(
        X, y, FAST, optimizer="sgd", learning_rate=1e20, k=2, n_jobs=1, progress=False
    )
    assert result.n_diverged == 2
    assert np.isfinite(result.mean_val_accuracy)
    assert result.mean_val_loss == result.std_val_loss == np.inf  # never NaN


@pytest.mark.parametrize(
    "grid, message",
    [
        ({}, "non-empty dict"),
        ({"hidden_units": [10]}, r"unknown setting.*hidden_units.*valid names.*hidden_sizes"),
        ({"learning_rate": []}, "non-empty list"),
        ({"learning_rate": 0.1}, "non-empty list"),
        ({"activation": ["relu", "swish"]}, "swish"),
        ({"learning_rate": [-1.0]}, "learning_rate"),
        ({"hidden_sizes": [64, (64,)]}, "same configuration twice"),
    ],
)
def test_bad_grids_are_rejected(digits, grid, message):
    X, y = digits
    with pytest.raises(ValueError, match=message):
        grid_search(X, y, grid, FAST, k=2, n_jobs=1, progress=False)


@pytest.mark.parametrize("k", [1, 1000])
def test_bad_k_in_grid_search(digits, k):
    X, y = digits
    with pytest.raises(ValueError, match="k must be at least 2|smallest class"):
        grid_search(X, y, {"learning_rate": [1e-3]}, FAST, k=k, n_jobs=1, progress=False)


def test_unknown_setting_and_bad_data_in_cross_validate(digits):
    X, y = digits
    with pytest.raises(ValueError, match="valid names"):
        cross_validate(X, y, n_hidden=10, k=2, progress=False)
    with pytest.raises(ValueError, match="one label per image"):
        cross_validate(X, y[:-1], FAST, k=2, progress=False)
    with pytest.raises(ValueError, match="n_jobs"):
        cross_validate(X, y, FAST, k=2, n_jobs=0, progress=False)


def test_the_chosen_settings_train_on_all_data_with_build_and_fit(digits):
    # The last step of tuning (refit before): train the winner once more on all the data.
    X, y = digits
    settings = FAST.replace(hidden_sizes=(16, 8), learning_rate=1e-2, n_epochs=5, seed=3)
    model, history = build_and_fit(X, y, settings, progress=False)
    again, _ = build_and_fit(X, y, settings, progress=False)
    assert history.settings == settings
    assert [layer.params["W"].shape for layer in model.layers if layer.params] == [
        (784, 16),
        (16, 8),
        (8, 10),
    ]
    assert np.array_equal(model.predict_proba(X), again.predict_proba(X))
    assert model.evaluate(X, y).accuracy > 0.5  # it learned something


def test_a_grid_over_seeds_gives_each_seed_the_numbers_cross_validate_gives_it(digits):
    # The folds follow each candidate's own seed, as they do in cross_validate.
    X, y = digits
    results = grid_search(X, y, {"seed": [0, 1]}, FAST, k=2, n_jobs=1, progress=False)
    for seed in (0, 1):
        alone = cross_validate(X, y, FAST, seed=seed, k=2, n_jobs=1, progress=False)
        assert scores(alone) in [scores(result) for result in results]


SPAWNED_RUN = """
import multiprocessing, sys
multiprocessing.set_start_method("spawn", force=True)  # the default on macOS and Windows
import numpy as np
from mnist_nn import cli
from mnist_nn.datasets import load_dataset
from mnist_nn.settings import Settings
from mnist_nn.tuning import cross_validate

(X, y), _ = load_dataset("synthetic", n_train=300, n_test=10)
settings = Settings(hidden_sizes=(8,), n_epochs=1)
two = cross_validate(X, y, settings, k=2, n_jobs=2, progress=False)
one = cross_validate(X, y, settings, k=2, n_jobs=1, progress=False)
assert two.fold_val_loss == one.fold_val_loss, (two, one)
sys.exit(cli.main(["train", "--dataset", "synthetic", "--limit", "300", "--n-epochs", "1",
                   "--out", sys.argv[1]]))
"""


def test_the_pool_and_the_command_line_work_under_the_spawn_start_method(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "m.npz"
    completed = subprocess.run(
        [sys.executable, "-c", SPAWNED_RUN, str(out)], capture_output=True, text=True, cwd=root
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert out.is_file()
