"""Choosing hyperparameters honestly: stratified k-fold cross-validation and grid search over
Settings, run in parallel worker processes (joblib). Only training data goes in; the test set
stays untouched until the chosen settings are trained once more (build_and_fit) and evaluated."""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import joblib
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from mnist_nn.builders import build_model
from mnist_nn.settings import FIELD_NAMES, Settings
from mnist_nn.tables import format_table, format_value
from mnist_nn.train import TrainingDivergedError, fit
from mnist_nn.validation import check_images, check_labels


def stratified_kfold(
    y: np.ndarray, k: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split sample indices into k folds that keep the class proportions; a list of k pairs
    (train_index, val_index), each sorted.

    Every sample is in exactly one validation fold. The samples of each class are shuffled and
    dealt to the folds in turn, so each fold holds floor(n_c / k) or ceil(n_c / k) samples of
    class c, and fold sizes differ by at most one.
    """
    y = check_labels(y)
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ValueError(f"k must be a whole number, got {k!r}")
    classes, counts = np.unique(y, return_counts=True)
    if k < 2:
        raise ValueError(f"k must be at least 2 (one fold to train on, one to validate), got {k}")
    if k > counts.min():
        raise ValueError(_too_few_of_a_class(k, classes, counts))
    rng = np.random.default_rng(seed)
    # Classes one after the other, shuffled within each; dealing position i to fold i % k then
    # spreads every class evenly, and the rotation carries on across classes.
    order = np.concatenate([rng.permutation(np.flatnonzero(y == label)) for label in classes])
    fold_of = np.empty(len(y), dtype=np.int64)
    fold_of[order] = np.arange(len(y)) % k
    return [(np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)) for fold in range(k)]


def _too_few_of_a_class(k: int, classes: np.ndarray, counts: np.ndarray) -> str:
    """Why k folds cannot each hold every class, and a fix that is possible: k >= 2 always."""
    rarest, fewest = classes[counts.argmin()], int(counts.min())
    problem = (
        f"k={k} is larger than the smallest class (label {rarest} has {fewest} sample"
        f"{'s' if fewest != 1 else ''}), so some fold would miss that class"
    )
    if fewest >= 2:
        return f"{problem}; use k <= {fewest} or more data"
    return (
        f"{problem}; cross-validation needs at least 2 samples of every class: add samples of "
        f"label {rarest} or leave that class out"
    )


@dataclass(frozen=True)
class CVResult:
    """Cross-validation of one Settings: per-fold validation accuracy and loss.

    std_* is the sample standard deviation across folds (ddof=1): how much the score moves with
    the choice of validation fold. seconds is the training time summed over folds; wall_seconds
    the time the whole call took (0.0 for entries of a grid search, see GridResults).
    """

    settings: Settings
    fold_val_accuracy: tuple[float, ...]
    fold_val_loss: tuple[float, ...]
    fold_seconds: tuple[float, ...]
    n_diverged: int = 0
    wall_seconds: float = 0.0

    @property
    def k(self) -> int:
        return len(self.fold_val_accuracy)

    @property
    def mean_val_accuracy(self) -> float:
        return float(np.mean(self.fold_val_accuracy))

    @property
    def std_val_accuracy(self) -> float:
        return float(np.std(self.fold_val_accuracy, ddof=1))

    @property
    def mean_val_loss(self) -> float:
        return float(np.mean(self.fold_val_loss))

    @property
    def std_val_loss(self) -> float:
        # A diverged fold has an infinite loss; the spread is then infinite too, not NaN.
        if not np.all(np.isfinite(self.fold_val_loss)):
            return math.inf
        return float(np.std(self.fold_val_loss, ddof=1))

    @property
    def seconds(self) -> float:
        return float(np.sum(self.fold_seconds))

    def to_dict(self) -> dict:
        """One plain row: the settings, then the scores (JSON-able)."""
        return {
            **self.settings.to_dict(),
            "mean_val_accuracy": self.mean_val_accuracy,
            "std_val_accuracy": self.std_val_accuracy,
            "mean_val_loss": self.mean_val_loss,
            "std_val_loss": self.std_val_loss,
            "fold_val_accuracy": list(self.fold_val_accuracy),
            "fold_val_loss": list(self.fold_val_loss),
            "seconds": self.seconds,
            "n_diverged": self.n_diverged,
        }

    def __repr__(self) -> str:
        return (
            f"CVResult({self.settings}: val accuracy {self.mean_val_accuracy:.4f} ± "
            f"{self.std_val_accuracy:.4f}, val loss {self.mean_val_loss:.4f} ± "
            f"{self.std_val_loss:.4f} over {self.k} folds, {self.seconds:.1f} s of training)"
        )


class GridResults:
    """The settings of a grid search, best first (highest mean validation accuracy; ties go to
    the lower mean loss, then to grid order).

    Prints as a table (and as an HTML table in a notebook); to_rows() gives a list of plain
    dicts for export. results[0] (also .best) is the winner, .best_settings its Settings.
    """

    def __init__(
        self, results: Sequence[CVResult], parameters: Sequence[str], wall_seconds: float
    ) -> None:
        order = sorted(
            range(len(results)),
            key=lambda i: (-results[i].mean_val_accuracy, results[i].mean_val_loss, i),
        )
        self.results = [results[i] for i in order]
        self.parameters = list(parameters)
        self.wall_seconds = wall_seconds

    @property
    def best(self) -> CVResult:
        return self.results[0]

    @property
    def best_settings(self) -> Settings:
        return self.best.settings

    def to_rows(self) -> list[dict]:
        return [result.to_dict() for result in self.results]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[CVResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> CVResult:
        return self.results[index]

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = ["rank", *self.parameters, "val accuracy", "val loss", "train s"]
        body = []
        for rank, result in enumerate(self.results, 1):
            values = [format_value(getattr(result.settings, name)) for name in self.parameters]
            accuracy = f"{result.mean_val_accuracy:.4f} ± {result.std_val_accuracy:.4f}"
            loss = f"{result.mean_val_loss:.4f} ± {result.std_val_loss:.4f}"
            if result.n_diverged:
                loss += f" ({result.n_diverged} diverged)"
            body.append([str(rank), *values, accuracy, loss, f"{result.seconds:.2f}"])
        return header, body

    def _caption(self) -> str:
        return (
            f"{len(self)} configurations x {self.results[0].k} folds, mean ± std across folds, "
            f"{self.wall_seconds:.1f} s"
        )

    def __str__(self) -> str:
        header, body = self._table()
        all_columns = range(len(header))
        return format_table([header, *body], right_aligned=all_columns) + f"\n({self._caption()})"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        header, body = self._table()
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in body
        )
        return (
            f"<table><caption>{self._caption()}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    settings: Settings | None = None,
    *,
    k: int = 5,
    n_jobs: int | None = None,
    progress: bool = True,
    **changes,
) -> CVResult:
    """k-fold cross-validation of one Settings on training data (X, y).

    Keyword changes apply to `settings` (default Settings()), e.g. hidden_sizes=(128, 64).
    Each fold trains a fresh network on the other k - 1 folds and evaluates it on its own.
    Folds come from stratified_kfold(y, k, settings.seed); each fold's initial weights and
    shuffling come from a seed derived from (settings, fold), so the numbers are the same for
    any n_jobs (None: all cores; folds run in separate processes).
    """
    start = time.perf_counter()
    settings = (settings or Settings()).replace(**changes)
    (result,) = _cross_validate_all(X, y, [settings], k, n_jobs, progress)
    return CVResult(
        result.settings,
        result.fold_val_accuracy,
        result.fold_val_loss,
        result.fold_seconds,
        result.n_diverged,
        wall_seconds=time.perf_counter() - start,
    )


def grid_search(
    X: np.ndarray,
    y: np.ndarray,
    grid: Mapping[str, Sequence],
    settings: Settings | None = None,
    *,
    k: int = 5,
    n_jobs: int | None = None,
    progress: bool = True,
) -> GridResults:
    """Cross-validate every combination of the values in `grid` (setting name -> candidates),
    the other settings taken from `settings`; results best first.

    Example: grid={"hidden_sizes": [10, 32, 128, (128, 64)], "learning_rate": [1e-3, 1e-2]}
    runs 8 configurations x k folds, spread over n_jobs processes (None: all cores). Each
    configuration gets exactly the numbers cross_validate would give it.
    """
    start = time.perf_counter()
    candidates = _grid_settings(grid, settings or Settings())
    results = _cross_validate_all(X, y, candidates, k, n_jobs, progress)
    return GridResults(results, list(grid), wall_seconds=time.perf_counter() - start)


def _grid_settings(grid: Mapping[str, Sequence], base: Settings) -> list[Settings]:
    """Every combination of the grid's values applied to `base`; bad grids raise ValueError."""
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(
            "grid must be a non-empty dict of setting name -> list of values; valid names are "
            f"{list(FIELD_NAMES)}"
        )
    for name, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValueError(
                f"grid[{name!r}] must be a non-empty list of candidate values, got {values!r}"
            )
    candidates = [
        base.replace(**dict(zip(grid, values, strict=True)))
        for values in itertools.product(*grid.values())
    ]
    if len(set(candidates)) < len(candidates):
        repeated = [c for c in candidates if candidates.count(c) > 1]
        raise ValueError(f"the grid lists the same configuration twice: {repeated[0]}")
    return candidates


def _cross_validate_all(X, y, candidates, k, n_jobs, progress) -> list[CVResult]:
    """Run every (settings, fold) pair as one task and gather them per settings."""
    X = check_images(X, np.shape(X)[1:])
    y = check_labels(y, len(X))
    n_classes = int(y.max()) + 1
    # Each candidate's folds follow its own seed, as in cross_validate (a grid may vary the seed).
    folds = {seed: stratified_kfold(y, k, seed) for seed in {c.seed for c in candidates}}
    n_folds = int(k)
    for settings in candidates:  # cheap dry run: a network that cannot be built fails here
        build_model(settings, X.shape[1:], n_classes)
    tasks = [
        joblib.delayed(_train_fold)(X, y, *folds[settings.seed][fold], settings, n_classes, fold)
        for settings in candidates
        for fold in range(n_folds)
    ]
    outcomes = _run_tasks(tasks, n_jobs, progress)
    results = []
    for index, settings in enumerate(candidates):
        per_fold = outcomes[index * n_folds : (index + 1) * n_folds]
        results.append(
            CVResult(
                settings,
                tuple(outcome["val_accuracy"] for outcome in per_fold),
                tuple(outcome["val_loss"] for outcome in per_fold),
                tuple(outcome["seconds"] for outcome in per_fold),
                sum(outcome["diverged"] for outcome in per_fold),
            )
        )
    return results


def _run_tasks(tasks: list, n_jobs: int | None, progress: bool) -> list[dict]:
    """The tasks' outcomes in task order, run by joblib's worker processes (loky: they start
    fresh on every platform, and Ctrl-C stops them all), or by the backend chosen with
    joblib.parallel_config, such as "dask" for a cluster."""
    n_jobs = min(_resolve_n_jobs(n_jobs), len(tasks))
    outcomes = []
    with tqdm(total=len(tasks), unit="fold", desc="cross-validation", disable=not progress) as bar:
        for outcome in joblib.Parallel(n_jobs=n_jobs, return_as="generator")(tasks):
            outcomes.append(outcome)
            bar.update()
    return outcomes


def _train_fold(X, y, train_index, val_index, settings: Settings, n_classes, fold) -> dict:
    """Train a fresh network on train_index and score it on val_index.

    One BLAS thread, wherever the task runs: n processes then use n cores rather than n x n
    threads fighting over them, and the arithmetic (so every number) is the same for any n_jobs.
    """
    # One BLAS thread, fixed: fit would otherwise time more, against the other workers.
    settings = settings.replace(seed=_fold_seed(settings, fold), n_threads=1)
    model = build_model(settings, X.shape[1:], n_classes)
    start = time.perf_counter()
    diverged = False
    with threadpool_limits(limits=1):
        try:
            fit(model, X[train_index], y[train_index], settings, progress=False)
        except TrainingDivergedError:
            # A learning rate far too large is a legitimate (bad) candidate, not a crash: the
            # fold counts as diverged with an infinite loss.
            diverged = True
        seconds = time.perf_counter() - start
        with np.errstate(over="ignore", invalid="ignore"):
            val_loss, val_accuracy = model.evaluate(X[val_index], y[val_index])
    return {
        "val_loss": math.inf if diverged or not math.isfinite(val_loss) else float(val_loss),
        "val_accuracy": float(val_accuracy),
        "seconds": seconds,
        "diverged": diverged,
    }


def _resolve_n_jobs(n_jobs: int | None) -> int:
    if n_jobs is None or n_jobs == -1:
        # All the active backend's workers: this machine's cores for loky, a cluster's for a
        # backend set with joblib.parallel_config (Ray's takes the number at its word).
        return max(1, joblib.effective_n_jobs(-1))
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise ValueError(
            f"n_jobs must be a positive number of processes (or None/-1 for all cores), "
            f"got {n_jobs!r}"
        )
    return int(n_jobs)


def _fold_seed(settings: Settings, fold: int) -> int:
    """A seed for one fold of one Settings, from (settings, fold) alone: it does not depend on
    the order in which tasks run, nor on which other settings are in the grid. (Python's hash()
    of a string changes between processes, so a SHA-256 digest is used.)"""
    key = json.dumps(settings.to_dict(), sort_keys=True)
    digest = hashlib.sha256(key.encode()).digest()
    entropy = [settings.seed, int.from_bytes(digest[:8], "little"), fold]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])
