"""Where one CNN training step spends its time, by operation: im2col, the matrix products, col2im,
ReLU, pooling, softmax and loss, the optimizer.

    python benchmarks/profile_cnn_step.py --data-dir DIR

Trains build_cnn (conv 5x5x16 -> pool -> conv 5x5x32 -> pool -> dense 10) with Adam at batch 128
as fit does (forward, loss, backward, Adam step), with a timer wrapped around each operation: the
functions and methods listed in OPERATIONS. Each operation's time is its own, without the
operations it calls ("self time"), so the rows add up to the step. Prints a table of
milliseconds per step and shares. Not a test; timings on a shared machine mean something only as
shares or as ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict

import numpy as np
from threadpoolctl import threadpool_limits

import mnist_nn as nn
from mnist_nn import activations, conv, layers, losses, model, optimizers
from mnist_nn.validation import check_images

# (object, attribute, operation): the timed callables. Whatever an object lacks is skipped, so
# the script runs on older and newer versions of the package alike.
OPERATIONS = [
    (conv, "im2col", "im2col (window copy)"),
    (conv.Conv2D, "_pad", "conv: zero-padding copy"),
    (conv.Conv2D, "forward", "conv forward: GEMM + bias"),
    (conv, "col2im", "col2im (window adds)"),
    (conv, "col2im_products", "conv dX: per-offset GEMMs + col2im adds"),
    (conv.Conv2D, "backward", "conv backward: GEMM dW, db (+ dX GEMMs before)"),
    (activations.ReLU, "forward", "ReLU forward"),
    (activations.ReLU, "backward", "ReLU backward"),
    (conv.MaxPool2D, "forward", "max-pool forward"),
    (conv.MaxPool2D, "backward", "max-pool backward"),
    (conv, "relu_max_pool", "ReLU + max-pool forward (fused)"),
    (conv.Flatten, "forward", "flatten"),
    (conv.Flatten, "backward", "flatten"),
    (layers.Dense, "forward", "dense forward GEMM"),
    (layers.Dense, "backward", "dense backward GEMMs"),
    (losses.SoftmaxCrossEntropy, "forward", "softmax + loss"),
    (losses.SoftmaxCrossEntropy, "backward", "softmax + loss"),
    (optimizers.Optimizer, "step", "optimizer (Adam)"),
    (model.Model, "prepare_input", "batch: uint8 -> float32"),
]


class SelfTimer:
    """Accumulates each operation's own time: a call's duration minus its timed callees'."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.stack: list[float] = []  # time spent in timed callees, one entry per open call

    def wrap(self, function, operation: str):
        def timed(*args, **kwargs):
            self.stack.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                callees = self.stack.pop()
                self.seconds[operation] += elapsed - callees
                if self.stack:
                    self.stack[-1] += elapsed

        return timed


def install(timer: SelfTimer) -> None:
    """Wrap every operation that this version of the package has."""
    for owner, attribute, operation in OPERATIONS:
        function = owner.__dict__.get(attribute)
        if function is not None:
            setattr(owner, attribute, timer.wrap(function, operation))


def train_steps(net, X, y, n_steps: int, batch_size: int, seed: int) -> float:
    """n_steps training steps as fit takes them; returns the wall time."""
    optimizer = optimizers.make_optimizer("adam", net.parameters(), 1e-3)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(n_steps):
        index = rng.choice(len(X), batch_size, replace=False)
        Z = net.forward(net.prepare_input(X[index]), training=True)
        net.loss_function.forward(Z, y[index])
        net.backward(net.loss_function.backward())
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with MNIST (default: synthetic)")
    parser.add_argument("--n-steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    parser.add_argument(
        "--time-only", action="store_true", help="print only the untimed ms per step, as JSON"
    )
    args = parser.parse_args()
    if args.threads is not None:
        threadpool_limits(args.threads, user_api="blas")
    if args.data_dir:
        (X, y), _ = nn.load_mnist(args.data_dir, download=False, progress=False)
    else:
        (X, y), _ = nn.load_dataset("synthetic", n_train=10_000, n_test=10)
    net = nn.build_cnn(seed=0)
    X = check_images(X, net.input_shape)  # (N, 1, 28, 28), as fit sees them
    train_steps(net, X, y, 10, args.batch_size, seed=1)  # warm-up: buffers, caches, pages
    untimed = train_steps(net, X, y, args.n_steps, args.batch_size, seed=2)
    if args.time_only:
        print(json.dumps({"ms_per_step": 1e3 * untimed / args.n_steps}))
        return
    timer = SelfTimer()
    install(timer)
    timed = train_steps(net, X, y, args.n_steps, args.batch_size, seed=3)
    timer.seconds["other (indexing, Python)"] = timed - sum(timer.seconds.values())
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; numpy {np.__version__}")
    print(f"{args.n_steps} steps at batch {args.batch_size}: {1e3 * untimed / args.n_steps:.1f} ms")
    print(f"per step untimed, {1e3 * timed / args.n_steps:.1f} ms with the timers\n")
    rows = sorted(timer.seconds.items(), key=lambda item: -item[1])
    print("| operation | ms per step | share |\n|---|---|---|")
    for operation, seconds in rows:
        print(f"| {operation} | {1e3 * seconds / args.n_steps:.2f} | {seconds / timed:.0%} |")


if __name__ == "__main__":
    main()
