"""Choosing hyperparameters honestly: stratified k-fold cross-validation and grid search over
training settings, run in parallel processes. Only training data goes in; the test set stays
untouched until the chosen configuration is refitted and evaluated once."""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
import os
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from mnist_nn.model import Model, build_mlp, check_images, check_labels
from mnist_nn.optimizers import make_optimizer, make_schedule
from mnist_nn.train import TrainConfig, TrainingDivergedError, fit

# Every setting a configuration may change, with its default. hidden_sizes lists the hidden
# layers: 64 or (64,) is one layer of 64 units, (128, 64) two layers, () none (softmax regression).
DEFAULT_SETTINGS: dict = {
    "hidden_sizes": (64,),
    "activation": "relu",
    "dropout": 0.0,
    "optimizer": "adam",
    "learning_rate": None,  # None: the optimizer's default (1e-3 for Adam)
    "schedule": "constant",
    "batch_size": 128,
    "epochs": 5,
    "weight_decay": 0.0,
}


def stratified_kfold(
    y: np.ndarray, k: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split sample indices into k folds that keep the class proportions; a list of k pairs
    (train_index, val_index), each sorted.

    Every sample is in exactly one validation fold. The samples of each class are shuffled and
    dealt to the folds in turn, so each fold holds floor(n_c / k) or ceil(n_c / k) samples of
    class c, and fold sizes differ by at most one.
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a non-empty 1-D array of integer labels, got shape {y.shape}")
    k = _as_int("k", k)
    classes, counts = np.unique(y, return_counts=True)
    if k < 2:
        raise ValueError(f"k must be at least 2 (one fold to train on, one to validate), got {k}")
    if k > counts.min():
        rarest = classes[counts.argmin()]
        raise ValueError(
            f"k={k} is larger than the smallest class (label {rarest} has {counts.min()} samples), "
            f"so some fold would miss that class; use k <= {counts.min()} or more data"
        )
    rng = np.random.default_rng(_as_seed(seed))
    # Classes one after the other, shuffled within each; dealing position i to fold i % k then
    # spreads every class evenly, and the rotation carries on across classes.
    order = np.concatenate([rng.permutation(np.flatnonzero(y == label)) for label in classes])
    fold_of = np.empty(len(y), dtype=np.int64)
    fold_of[order] = np.arange(len(y)) % k
    return [(np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)) for fold in range(k)]


@dataclass(frozen=True)
class CVResult:
    """Cross-validation of one configuration: per-fold validation accuracy and loss.

    std_* is the sample standard deviation across folds (ddof=1): how much the score moves with
    the choice of validation fold. seconds is the training time summed over folds; wall_seconds
    the time the whole call took (0.0 for entries of a grid search, see GridResults).
    """

    settings: dict
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
        row = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in self.settings.items()
        }
        row.update(
            mean_val_accuracy=self.mean_val_accuracy,
            std_val_accuracy=self.std_val_accuracy,
            mean_val_loss=self.mean_val_loss,
            std_val_loss=self.std_val_loss,
            fold_val_accuracy=list(self.fold_val_accuracy),
            fold_val_loss=list(self.fold_val_loss),
            seconds=self.seconds,
            n_diverged=self.n_diverged,
        )
        return row

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.settings.items())
        return (
            f"CVResult({settings}: val accuracy {self.mean_val_accuracy:.4f} ± "
            f"{self.std_val_accuracy:.4f}, val loss {self.mean_val_loss:.4f} ± "
            f"{self.std_val_loss:.4f} over {self.k} folds, {self.seconds:.1f} s of training)"
        )


class GridResults:
    """The configurations of a grid search, best first (highest mean validation accuracy; ties
    go to the lower mean loss, then to grid order).

    Prints as a table (and as an HTML table in a notebook); to_rows() gives a list of plain
    dicts for export. results[0] (also .best) is the winner, .best_settings its settings.
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
    def best_settings(self) -> dict:
        return dict(self.best.settings)

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
            values = [_format_value(result.settings[name]) for name in self.parameters]
            accuracy = f"{result.mean_val_accuracy:.4f} ± {result.std_val_accuracy:.4f}"
            loss = f"{result.mean_val_loss:.4f} ± {result.std_val_loss:.4f}"
            if result.n_diverged:
                loss += f" ({result.n_diverged} diverged)"
            body.append([str(rank), *values, accuracy, loss, f"{result.seconds:.2f}"])
        return header, body

    def __str__(self) -> str:
        header, body = self._table()
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            for row in [header, *body]
        ]
        k = self.results[0].k
        lines.append(
            f"({len(self)} configurations x {k} folds, mean ± std across folds, "
            f"{self.wall_seconds:.1f} s)"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        header, body = self._table()
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in body
        )
        caption = (
            f"{len(self)} configurations x {self.results[0].k} folds, mean ± std across "
            f"folds, {self.wall_seconds:.1f} s"
        )
        return (
            f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    settings: Mapping | None = None,
    *,
    k: int = 5,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
    **overrides,
) -> CVResult:
    """k-fold cross-validation of one configuration on training data (X, y).

    settings (and keyword overrides, e.g. hidden_sizes=(128, 64), epochs=3) change
    DEFAULT_SETTINGS. Each fold trains a fresh model with build_mlp and fit on the other k - 1
    folds and evaluates it on its own. Folds come from stratified_kfold(y, k, seed); each fold's
    initial weights and shuffling come from a seed derived from (seed, settings, fold), so the
    numbers are the same for any n_jobs (None: all cores; folds run in separate processes).
    """
    start = time.perf_counter()
    config = _check_settings({**(settings or {}), **overrides})
    (result,) = _cross_validate_all(X, y, [config], k, seed, n_jobs, progress)
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
    settings: Mapping | None = None,
    *,
    k: int = 5,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
) -> GridResults:
    """Cross-validate every combination of the values in `grid` (name -> list of candidates),
    the other settings taken from `settings` over DEFAULT_SETTINGS; results best first.

    Example: grid={"hidden_sizes": [10, 32, 128, (128, 64)], "learning_rate": [1e-3, 1e-2]}
    runs 8 configurations x k folds, spread over n_jobs processes (None: all cores). Each
    configuration gets exactly the numbers cross_validate would give it with the same seed.
    """
    start = time.perf_counter()
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(
            f"grid must be a non-empty dict of setting name -> list of values; valid names are "
            f"{list(DEFAULT_SETTINGS)}"
        )
    unknown = [name for name in grid if name not in DEFAULT_SETTINGS]
    if unknown:
        raise ValueError(
            f"unknown setting(s) {unknown} in grid; valid names are {list(DEFAULT_SETTINGS)}"
        )
    for name, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValueError(
                f"grid[{name!r}] must be a non-empty list of candidate values, got {values!r}"
            )
    base = {**(settings or {})}
    configs = [
        _check_settings({**base, **dict(zip(grid, values, strict=True))})
        for values in itertools.product(*grid.values())
    ]
    keys = [_settings_key(config) for config in configs]
    if len(set(keys)) < len(keys):
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"the grid lists the same configuration twice: {duplicates}")
    results = _cross_validate_all(X, y, configs, k, seed, n_jobs, progress)
    return GridResults(results, list(grid), wall_seconds=time.perf_counter() - start)


def _cross_validate_all(X, y, configs, k, seed, n_jobs, progress) -> list[CVResult]:
    """Run every (configuration, fold) pair as one task and gather them per configuration."""
    X = check_images(X, np.shape(X)[1:])
    y = np.asarray(y)
    is_labels = y.ndim == 1 and y.size > 0 and np.issubdtype(y.dtype, np.integer)
    n_classes = int(y.max()) + 1 if is_labels else 1
    y = check_labels(y, len(X), n_classes)
    folds = stratified_kfold(y, k, seed)
    for config in configs:  # cheap dry run: bad settings fail here, not in a worker
        _check_buildable(config, int(np.prod(X.shape[1:])), n_classes)
    tasks = [
        (config, fold, _fold_seed(seed, config, fold))
        for config in configs
        for fold in range(len(folds))
    ]
    outcomes = _run_tasks(tasks, (X, y, folds, n_classes), n_jobs, progress)
    results = []
    for index, config in enumerate(configs):
        per_fold = outcomes[index * len(folds) : (index + 1) * len(folds)]
        results.append(
            CVResult(
                config,
                tuple(outcome["val_accuracy"] for outcome in per_fold),
                tuple(outcome["val_loss"] for outcome in per_fold),
                tuple(outcome["seconds"] for outcome in per_fold),
                sum(outcome["diverged"] for outcome in per_fold),
            )
        )
    return results


def refit(
    X: np.ndarray,
    y: np.ndarray,
    settings: Mapping | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    **overrides,
) -> Model:
    """A fresh network built and trained with `settings` (over DEFAULT_SETTINGS) on all of
    (X, y): the last step of tuning, once cross-validation has chosen the settings.

    The initial weights and the shuffling follow from `seed`. Raises TrainingDivergedError
    like fit. Like the cross-validation runs it uses one BLAS thread: products of this size
    gain little from more, and lose several-fold when other processes share the cores.
    """
    config = _check_settings({**(settings or {}), **overrides})
    model = _build_model(config, np.shape(X)[1:], int(np.max(y)) + 1, seed)
    with threadpool_limits(limits=1):
        _fit_settings(model, X, y, config, seed, progress)
    return model


def _build_model(config: dict, sample_shape, n_classes: int, seed: int) -> Model:
    init_seed = np.random.SeedSequence(_as_seed(seed)).generate_state(2)[0]
    return build_mlp(
        [int(np.prod(sample_shape)), *config["hidden_sizes"], n_classes],
        activation=config["activation"],
        dropout=config["dropout"],
        seed=int(init_seed),
    )


def _fit_settings(model: Model, X, y, config: dict, seed: int, progress: bool) -> None:
    shuffle_seed = np.random.SeedSequence(_as_seed(seed)).generate_state(2)[1]
    fit(
        model,
        X,
        y,
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        optimizer=config["optimizer"],
        learning_rate=config["learning_rate"],
        schedule=config["schedule"],
        weight_decay=config["weight_decay"],
        seed=int(shuffle_seed),
        progress=progress,
    )


def _train_fold(data, config: dict, fold: int, fold_seed: int) -> dict:
    """Train a fresh model on all folds but `fold`, as refit would, and score it on `fold`."""
    X, y, folds, n_classes = data
    train_index, val_index = folds[fold]
    model = _build_model(config, X.shape[1:], n_classes, fold_seed)
    start = time.perf_counter()
    diverged = False
    try:
        _fit_settings(model, X[train_index], y[train_index], config, fold_seed, progress=False)
    except TrainingDivergedError:
        # A learning rate far too large is a legitimate (bad) candidate, not a crash: the fold
        # counts as diverged with an infinite loss, and the accuracy of the weights
        # fit left behind (their logits may overflow, hence the silenced warnings).
        diverged = True
    seconds = time.perf_counter() - start
    with np.errstate(over="ignore", invalid="ignore"):
        val_loss, val_accuracy = model.evaluate(X[val_index], y[val_index])
    if diverged or not math.isfinite(val_loss):
        val_loss = math.inf
    return {
        "val_loss": float(val_loss),
        "val_accuracy": float(val_accuracy),
        "seconds": seconds,
        "diverged": diverged,
    }


_WORKER_DATA: tuple | None = None  # (X, y, folds, n_classes), set once per worker process


def _init_worker(data: tuple) -> None:
    global _WORKER_DATA
    _WORKER_DATA = data
    # Ctrl-C is the parent's to handle: it terminates the workers, which should not each
    # print a KeyboardInterrupt traceback. One BLAS thread per process, so n processes use
    # n cores rather than n x n threads fighting over them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(limits=1)


def _run_in_worker(task: tuple) -> dict:
    return _train_fold(_WORKER_DATA, *task)


def _run_tasks(tasks: list, data: tuple, n_jobs: int | None, progress: bool) -> list[dict]:
    """Outcomes of all tasks in task order, whatever order the processes finish them in."""
    n_jobs = min(_resolve_n_jobs(n_jobs), len(tasks))
    outcomes: list = [None] * len(tasks)
    bar = tqdm(total=len(tasks), unit="fold", desc="cross-validation", disable=not progress)
    try:
        if n_jobs == 1:
            # The same single BLAS thread as in the workers: identical arithmetic, identical
            # numbers for every n_jobs.
            with threadpool_limits(limits=1):
                for index, task in enumerate(tasks):
                    outcomes[index] = _train_fold(data, *task)
                    bar.update()
            return outcomes
        # The data go to each worker once, through the initializer (with fork they are simply
        # shared), not once per task.
        executor = ProcessPoolExecutor(n_jobs, initializer=_init_worker, initargs=(data,))
        try:
            futures = {executor.submit(_run_in_worker, task): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                outcomes[futures[future]] = future.result()
                bar.update()
        except BaseException:  # Ctrl-C (KeyboardInterrupt) or an error in one task
            _stop_workers(executor)
            raise
        executor.shutdown()
        return outcomes
    finally:
        bar.close()


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """Drop the queued tasks and end the running ones now, leaving no process behind."""
    # ProcessPoolExecutor has no public way to stop running tasks before Python 3.14
    # (terminate_workers), so terminate its processes directly.
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
    executor.shutdown(wait=True, cancel_futures=True)


def _resolve_n_jobs(n_jobs: int | None) -> int:
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if n_jobs is None or n_jobs == -1:
        return max(1, n_cores or 1)
    n_jobs = _as_int("n_jobs", n_jobs)
    if n_jobs < 1:
        raise ValueError(
            f"n_jobs must be a positive number of processes (or None/-1 for all "
            f"cores), got {n_jobs}"
        )
    return n_jobs


def _check_settings(settings: Mapping) -> dict:
    """DEFAULT_SETTINGS updated by `settings`, with plain Python types: 64 -> (64,),
    np.int64(128) -> 128, so equal configurations look equal (and get the same seeds)."""
    unknown = [name for name in settings if name not in DEFAULT_SETTINGS]
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; valid names are {list(DEFAULT_SETTINGS)}")
    config = {**DEFAULT_SETTINGS, **settings}
    hidden_sizes = config["hidden_sizes"]
    if isinstance(hidden_sizes, Sequence | np.ndarray) and not isinstance(hidden_sizes, str):
        config["hidden_sizes"] = tuple(_as_int("hidden_sizes", size) for size in hidden_sizes)
    else:
        config["hidden_sizes"] = (_as_int("hidden_sizes", hidden_sizes),)
    for name in ("batch_size", "epochs"):
        config[name] = _as_int(name, config[name])
    for name in ("dropout", "weight_decay", "learning_rate"):
        if config[name] is not None:
            config[name] = float(config[name])
    for name in ("activation", "optimizer", "schedule"):
        config[name] = str(config[name]).lower()
    learning_rate = config["learning_rate"]
    if learning_rate is not None and not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate must be a positive number (or None), got {learning_rate}")
    return config


def _check_buildable(config: dict, n_inputs: int, n_classes: int) -> None:
    """Raise ValueError now if the network, optimizer or schedule can't be built."""
    model = build_mlp(
        [n_inputs, *config["hidden_sizes"], n_classes],
        activation=config["activation"],
        dropout=config["dropout"],
    )
    TrainConfig(
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        optimizer=config["optimizer"],
        learning_rate=config["learning_rate"],
        schedule=config["schedule"],
        weight_decay=config["weight_decay"],
    )
    optimizer = make_optimizer(config["optimizer"], model.parameters(), config["learning_rate"])
    make_schedule(config["schedule"], optimizer.learning_rate, n_epochs=config["epochs"])


def _settings_key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def _fold_seed(seed: int, config: dict, fold: int) -> int:
    """A seed for one fold of one configuration, from (seed, settings, fold) alone: it does not
    depend on the order in which tasks run, nor on which other configurations are in the grid.
    (Python's hash() of a string changes between processes, so a SHA-256 digest is used.)"""
    digest = hashlib.sha256(_settings_key(config).encode()).digest()
    entropy = [_as_seed(seed), int.from_bytes(digest[:8], "little"), fold]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])


def _as_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _as_seed(seed) -> int:
    seed = _as_int("seed", seed)
    if seed < 0:
        raise ValueError(f"seed must be 0 or positive, got {seed}")
    return seed


def _format_value(value) -> str:
    if isinstance(value, tuple):
        return "-".join(map(str, value)) if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "default" if value is None else str(value)
