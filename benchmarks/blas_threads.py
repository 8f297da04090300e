"""By-hand check for the BLAS thread choice: fit's automatic choice against one and two fixed
threads, on this machine as it is and under an extra load of busy processes.

    python benchmarks/blas_threads.py --data-dir DIR --load 0 2

For each load, the three ways train the same network in turn (auto, 1, 2, auto, 1, 2, ...) and
the script prints each one's median seconds per epoch and auto's ratio to the better fixed one.
A timing means something only as such a ratio, measured in one run. Not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

import mnist_nn as nn

WAYS = {"auto": None, "1 thread": 1, "2 threads": 2}


def burn(stop_at: float) -> None:
    """Keep one core busy until stop_at (time.time()), like another user's job would."""
    while time.time() < stop_at:
        sum(i * i for i in range(10_000))


def time_ways(X, y, settings: nn.Settings, repeats: int) -> dict[str, list[float]]:
    seconds = {way: [] for way in WAYS}
    for _ in range(repeats):
        for way, n_threads in WAYS.items():
            _, history = nn.build_and_fit(X, y, settings, n_threads=n_threads, progress=False)
            seconds[way] += history["seconds"][1:]  # the first epoch warms up
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with MNIST (default: synthetic)")
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    parser.add_argument("--limit", type=int, default=20_000, help="training images")
    parser.add_argument("--n-epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--load", type=int, nargs="+", default=[0, 2], help="busy processes")
    args = parser.parse_args()
    if args.data_dir:
        (X, y), _ = nn.load_mnist(args.data_dir, download=False, progress=False)
    else:
        (X, y), _ = nn.load_dataset("synthetic", n_train=args.limit, n_test=10)
    X, y = X[: args.limit], y[: args.limit]
    settings = nn.Settings(model=args.model, n_epochs=args.n_epochs)
    for load in args.load:
        stop_at = time.time() + 3600
        burners = [multiprocessing.Process(target=burn, args=(stop_at,)) for _ in range(load)]
        for process in burners:
            process.start()
        try:
            seconds = time_ways(X, y, settings, args.repeats)
        finally:
            for process in burners:
                process.terminate()
        medians = {way: statistics.median(times) for way, times in seconds.items()}
        best_fixed = min(medians["1 thread"], medians["2 threads"])
        line = ", ".join(f"{way} {median:.2f} s/epoch" for way, median in medians.items())
        print(f"load +{load}: {line}; auto / best fixed = {medians['auto'] / best_fixed:.2f}")


if __name__ == "__main__":
    main()
