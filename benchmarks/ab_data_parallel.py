"""A/B timing of one training step as fit takes it today, on one and on two BLAS threads, against
data parallelism inside the step: the batch split in two halves, each run forward and backward in
its own Python thread with one BLAS thread (mnist_nn/threads.py's SplitStep).

    python benchmarks/ab_data_parallel.py --data-dir DIR

For build_cnn (cnn 16-32 adam) and the default MLP (784-128-64-10 adam) at batch 128 on MNIST
batches: first checks that the split step's gradients equal the full batch's, then times blocks
of steps, the three ways alternated, and prints each way's median ms per step, the split's
speed-up over the better of the other two, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import mnist_nn as nn
from mnist_nn.optimizers import make_optimizer
from mnist_nn.threads import SplitStep
from mnist_nn.validation import check_images

WAYS = ("1 BLAS thread", "2 BLAS threads", "split 2 x 1 thread")


def full_step(net, X, y) -> None:
    Z = net.forward(X, training=True)
    net.loss_function.forward(Z, y)
    net.backward(net.loss_function.backward())


def check_gradients(build, X, y) -> float:
    """Largest relative difference between the split step's and the full batch's gradients."""
    net = build()
    full_step(net, X, y)
    expected = [grad.copy() for _, grad in net.parameters()]
    split = SplitStep(net)
    split.forward_backward(X, y)
    split.close()
    worst = 0.0
    for want, (_, got) in zip(expected, net.parameters(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        worst = max(worst, float(np.max(np.abs(got - want)) / np.max(np.abs(want))))
    return worst


def time_block(way: str, net, split, optimizer, batches) -> float:
    """Seconds per step over `batches`, one optimizer step each."""
    threads = 2 if way == WAYS[1] else 1
    with threadpool_limits(threads, user_api="blas"):
        start = time.perf_counter()
        for X, y in batches:
            if way == WAYS[2]:
                split.forward_backward(X, y)
            else:
                full_step(net, X, y)
            optimizer.step()
        return (time.perf_counter() - start) / len(batches)


def compare(name: str, build, X_all, y_all, args) -> None:
    net = build()
    rng = np.random.default_rng(1)
    batches = []
    for _ in range(args.n_steps):
        index = rng.choice(len(X_all), args.batch_size, replace=False)
        batches.append((net.prepare_input(X_all[index]), y_all[index]))
    error = check_gradients(build, *batches[0])
    split = SplitStep(net)
    optimizer = make_optimizer("adam", net.parameters(), 1e-3)
    for way in WAYS:  # warm-up: buffers, caches, pages, the thread pool
        time_block(way, net, split, optimizer, batches[:5])
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    for repeat in range(args.repeats):
        order = WAYS if repeat % 2 == 0 else WAYS[::-1]  # alternated, and each way first once
        for way in order:
            times[way].append(1e3 * time_block(way, net, split, optimizer, batches))
    split.close()
    medians = {way: statistics.median(times[way]) for way in WAYS}
    best_today = min(medians[WAYS[0]], medians[WAYS[1]])
    print(f"{name}: gradients split vs full batch, max relative difference {error:.1e}")
    for way in WAYS:
        print(f"  {way}: {medians[way]:.2f} ms/step, runs {[round(t, 2) for t in times[way]]}")
    print(
        f"  speed-up of the split over the better of today's: {best_today / medians[WAYS[2]]:.2f}x;"
        f" load {load_before:.2f} -> {os.getloadavg()[0]:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with MNIST (default: synthetic)")
    parser.add_argument("--n-steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=6, help="timed blocks per way")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--only", choices=("cnn", "mlp"), default=None)
    args = parser.parse_args()
    if args.data_dir:
        (X, y), _ = nn.load_mnist(args.data_dir, download=False, progress=False)
    else:
        (X, y), _ = nn.load_dataset("synthetic", n_train=10_000, n_test=10)
    print(f"numpy {np.__version__}; load average {os.getloadavg()}")
    if args.only != "mlp":
        cnn = nn.build_cnn(seed=0)
        compare(
            "cnn 16-32 adam b128",
            lambda: nn.build_cnn(seed=0),
            check_images(X, cnn.input_shape),
            y,
            args,
        )
    if args.only != "cnn":
        compare(
            "784-128-64-10 adam b128",
            lambda: nn.build_mlp(seed=0),
            check_images(X, (784,)),
            y,
            args,
        )


if __name__ == "__main__":
    main()
