"""The grid search on a Dask cluster: a LocalCluster of 2 worker processes stands in for a real
one, and joblib's "dask" backend gives the same numbers as n_jobs=1, bit for bit."""

from __future__ import annotations

import joblib
import pytest

from mnist_nn import tuning
from mnist_nn.settings import Settings
from mnist_nn.synthetic import make_synthetic_digits
from mnist_nn.tuning import cross_validate, grid_search

distributed = pytest.importorskip(
    "distributed", reason="dask[distributed] is not installed (pip install -r requirements-dev.txt)"
)

FAST = Settings(hidden_sizes=16, n_epochs=2, batch_size=32)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def digits():
    return make_synthetic_digits(240, seed=0)


def scores(results) -> list[tuple]:
    """Everything but the timings, best first."""
    return [(r.settings, r.fold_val_accuracy, r.fold_val_loss, r.n_diverged) for r in results]


def test_grid_search_on_dask_matches_one_process(client, digits):
    X, y = digits
    grid = {"learning_rate": [1e-3, 1e-2], "hidden_sizes": [8, 16]}
    expected = grid_search(X, y, grid, FAST, k=3, n_jobs=1, progress=False)
    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        results = grid_search(X, y, grid, FAST, k=3, progress=False)
    assert scores(results) == scores(expected)
    # joblib sends the folds in batches, so count the workers that ran them, not the tasks.
    assert len({task["worker"] for task in stream.data}) == 2


def test_cross_validate_on_dask_matches_one_process(client, digits):
    X, y = digits
    expected = cross_validate(X, y, FAST, k=3, n_jobs=1, progress=False)
    with joblib.parallel_config(backend="dask"):
        result = cross_validate(X, y, FAST, k=3, progress=False)
    assert scores([result]) == scores([expected])


def test_all_cores_means_the_clusters_under_a_backend(client, monkeypatch):
    # A one-core laptop driving the cluster: n_jobs=None asks the backend, not this machine
    # (Ray's backend, unlike Dask's, runs no more workers than it is given).
    monkeypatch.setattr(joblib, "cpu_count", lambda *args, **kwargs: 1)
    with joblib.parallel_config(backend="dask"):
        assert tuning._resolve_n_jobs(None) == sum(client.ncores().values()) == 2
