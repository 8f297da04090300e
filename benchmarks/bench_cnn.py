"""Per-epoch training time of build_cnn against the same CNN in PyTorch on the CPU (issue 7).

Both sides train the same architecture (conv 5x5x16 -> ReLU -> pool -> conv 5x5x32 -> ReLU ->
pool -> dense 10) with Adam (learning rate 1e-3) and the same batch size, on the same uint8
images held in memory: each epoch shuffles indices, gathers a batch and scales it to float32.
The two are timed in alternation, one epoch each per round (the order flips every round), so
load from other programs on the machine hits both alike; the ratio per round and the median
ratio are what to read, not the seconds. On a shared machine `--threads 1` gives steadier
ratios: two spinning thread pools on two busy cores time mostly the waiting. torch is imported
here only, never by the package.

    python benchmarks/bench_cnn.py                          # Fashion-MNIST, 60,000 images
    python benchmarks/bench_cnn.py --dataset synthetic --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import mnist_nn as nn


def torch_cnn(padding: int, n_filters: tuple[int, int] = (16, 32)) -> torch.nn.Module:
    """The layers of nn.build_cnn(padding=padding) in PyTorch."""
    size = 28
    for _ in n_filters:
        size = (size + 2 * padding - 5 + 1) // 2
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, n_filters[0], 5, padding=padding),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(n_filters[0], n_filters[1], 5, padding=padding),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(n_filters[1] * size * size, 10),
    )


def torch_epoch(model, optimizer, X: torch.Tensor, y: torch.Tensor, batch_size: int, generator):
    """One epoch as fit() runs it: shuffled indices, uint8 batch -> float32 / 255, Adam step."""
    order = torch.randperm(len(X), generator=generator)
    for start in range(0, len(X), batch_size):
        index = order[start : start + batch_size]
        X_batch = X[index].float().div_(255.0)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(X_batch), y[index])
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", choices=["fashion-mnist", "synthetic"], default="fashion-mnist"
    )
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--n-images", type=int, default=60_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--padding", type=int, default=2, help="conv padding (build_cnn: 2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both sides (BLAS and torch); default: each library's own default",
    )
    args = parser.parse_args()
    if args.threads is not None:
        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)

    if args.dataset == "synthetic":
        (X, y), _ = nn.load_synthetic(n_train=args.n_images, n_test=1, seed=args.seed)
    else:
        (X, y), _ = nn.load_mnist(args.data_dir, dataset="fashion-mnist", download=False,
                                  progress=False)  # fmt: skip
    X, y = X[: args.n_images], y[: args.n_images].astype(np.int64)

    model = nn.build_cnn(padding=args.padding, seed=args.seed)
    optimizer = nn.Adam(model.parameters(), learning_rate=1e-3)
    torch.manual_seed(args.seed)
    reference = torch_cnn(args.padding)
    torch_optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    X_torch = torch.from_numpy(X.reshape(-1, 1, 28, 28).copy())
    y_torch = torch.from_numpy(y)
    generator = torch.Generator().manual_seed(args.seed)

    blas = ", ".join(f"{pool['internal_api']} {pool['num_threads']} threads"
                     for pool in threadpool_info())  # fmt: skip
    print(f"{len(X):,} {args.dataset} images, batch {args.batch_size}, padding {args.padding}; "
          f"NumPy {np.__version__} ({blas}); torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")  # fmt: skip
    print(model.summary())

    def time_numpy(round_index: int) -> float:
        start = time.perf_counter()
        nn.fit(model, X, y, epochs=1, batch_size=args.batch_size, optimizer=optimizer,
               seed=args.seed + round_index, progress=False)  # fmt: skip
        return time.perf_counter() - start

    def time_torch(round_index: int) -> float:
        start = time.perf_counter()
        torch_epoch(reference, torch_optimizer, X_torch, y_torch, args.batch_size, generator)
        return time.perf_counter() - start

    numpy_seconds, torch_seconds = [], []
    for round_index in range(args.rounds):
        runs = [("numpy", time_numpy), ("torch", time_torch)]
        if round_index % 2:
            runs.reverse()
        seconds = {name: run(round_index) for name, run in runs}
        numpy_seconds.append(seconds["numpy"])
        torch_seconds.append(seconds["torch"])
        print(f"round {round_index + 1}: mnist_nn {seconds['numpy']:6.1f} s  "
              f"torch {seconds['torch']:6.1f} s  ratio {seconds['numpy'] / seconds['torch']:.2f}",
              flush=True)  # fmt: skip
    ratios = [a / b for a, b in zip(numpy_seconds, torch_seconds, strict=True)]
    print(
        f"median per epoch: mnist_nn {statistics.median(numpy_seconds):.1f} s, torch "
        f"{statistics.median(torch_seconds):.1f} s; median ratio {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
