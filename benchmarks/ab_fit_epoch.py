"""A/B timing of one epoch of fit as the command line runs it (default MLP 784-128-64-10 and
build_cnn 16-32, Adam, batch 128, 54,000 training and 6,000 validation images of MNIST, the
thread choice on), in two checkouts: old and new, alternated in one run.

    python benchmarks/ab_fit_epoch.py --old OLD_CHECKOUT --new . --data-dir DIR

One worker process per checkout (PYTHONPATH set to it) loads the data once, then times
fit(n_epochs=1) on a fresh network each time the driver asks; the driver alternates the two,
the first one changing every round. --n-threads 1 takes the thread choice (noisy on a busy
machine) out of the comparison; --limit 6400 gives shorter epochs, so more rounds alternate
within the same minutes. Prints each timing, the medians, the ratio new / old, and
the load average (uptime) before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import sys, time, warnings
warnings.simplefilter("ignore")
from mnist_nn.datasets import load_dataset
from mnist_nn.preprocess import train_val_split
from mnist_nn.settings import Settings
from mnist_nn.train import fit
try:
    from mnist_nn.builders import build_model
except ImportError:  # before the loop moved to loop.py
    from mnist_nn.model import build_model

(X, y), _ = load_dataset("mnist", sys.argv[1], download=False, progress=False)
(X, y), validation = train_val_split(X, y, val_fraction=0.1, seed=0)
X, y = X[: int(sys.argv[2])], y[: int(sys.argv[2])]
print("ready", flush=True)
for line in sys.stdin:
    network, n_threads = line.split()
    n_threads = None if n_threads == "choose" else int(n_threads)
    settings = Settings(model=network, n_epochs=1, n_threads=n_threads)
    model = build_model(settings, X.shape[1:], 10)
    start = time.perf_counter()
    history = fit(model, X, y, settings, validation_data=validation, progress=False)
    print(time.perf_counter() - start, history["threads"][0], flush=True)
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def start_worker(checkout: Path, data_dir: str, limit: int) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(checkout.resolve()), MPLBACKEND="Agg")
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, data_dir, str(limit)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert worker.stdout.readline().strip() == "ready"
    return worker


def time_epoch(worker: subprocess.Popen, network: str, n_threads: str) -> tuple[float, str]:
    worker.stdin.write(f"{network} {n_threads}\n")
    worker.stdin.flush()
    seconds, threads = worker.stdout.readline().split()
    return float(seconds), threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--new", type=Path, default=Path("."))
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rounds", type=int, nargs=2, default=(8, 3), help="mlp, cnn rounds")
    parser.add_argument(
        "--limit", type=int, default=54_000, help="training images (shorter epochs, more rounds)"
    )
    parser.add_argument(
        "--n-threads", default="choose", help="a fixed count, or choose (the default, as the CLI)"
    )
    args = parser.parse_args()
    print("before:", uptime())
    workers = {name: start_worker(path, args.data_dir, args.limit) for name, path in [
        ("old", args.old), ("new", args.new)]}  # fmt: skip
    for network, rounds in zip(("mlp", "cnn"), args.rounds, strict=True):
        if rounds == 0:
            continue
        times = {"old": [], "new": []}
        for round_index in range(rounds):
            order = ("old", "new") if round_index % 2 == 0 else ("new", "old")
            for name in order:
                seconds, threads = time_epoch(workers[name], network, args.n_threads)
                times[name].append(seconds)
                print(f"{network} round {round_index + 1} {name}: {seconds:.3f} s ({threads})")
        old, new = (statistics.median(times[name]) for name in ("old", "new"))
        print(
            f"{network}, threads {args.n_threads}: median old {old:.3f} s, "
            f"new {new:.3f} s, new / old {new / old:.3f}"
        )
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()
    print("after:", uptime())


if __name__ == "__main__":
    main()
