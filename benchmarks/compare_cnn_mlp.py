"""By-hand check for issue 7: build_cnn against the 784-128-64-10 ReLU MLP on real digits.

Real MNIST digits when only the 10,000-image test file is at hand: a seeded permutation of it,
8,000 to train and 2,000 to test (the same split as the mnist-test-split dataset). Both models
train with Adam (learning rate 1e-3), batch 128, the same epochs and seeds. Not a test: it needs
the real files, e.g. a copy of ../shared/data/mnist-t10k in /tmp/mnist-real.

    python benchmarks/compare_cnn_mlp.py --data-dir /tmp/mnist-real --n-epochs 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mnist_nn as nn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with MNIST's t10k files")
    parser.add_argument("--n-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="model and training seed")
    parser.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args()

    X, y = nn.load_mnist(args.data_dir, split="test", download=False, progress=False)
    order = np.random.default_rng(args.split_seed).permutation(len(X))
    train, test = order[:8000], order[8000:]
    models = {
        "MLP 784-128-64-10": nn.build_mlp((128, 64), seed=args.seed),
        "CNN (build_cnn)": nn.build_cnn(seed=args.seed),
    }
    for name, model in models.items():
        start = time.perf_counter()
        history = nn.fit(
            model,
            X[train],
            y[train],
            n_epochs=args.n_epochs,
            batch_size=128,
            optimizer="adam",
            learning_rate=1e-3,
            seed=args.seed,
            progress=False,
        )
        seconds = time.perf_counter() - start
        loss, accuracy = model.evaluate(X[test], y[test])
        print(
            f"{name:20s} test accuracy {accuracy:.2%}  test loss {loss:.4f}  "
            f"train accuracy {history['train_accuracy'][-1]:.2%}  "
            f"{args.n_epochs} epochs in {seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
