"""Make README's learning-curve picture from a training run on real digits.

    python examples/make_readme_figure.py --dataset mnist                       # full MNIST
    python examples/make_readme_figure.py --dataset mnist-test-split --data-dir DIR

The second form is for machines that have only MNIST's 10,000-image test file: it trains on
8,000 of those digits and tests on the other 2,000. The network and its settings are the kind
the walkthrough's tuning section picks; 10% of the training digits are held out for the
validation curve. Writes examples/learning-curves.png and prints the test accuracy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mnist_nn as nn
from mnist_nn import plots

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "mnist-test-split"])
    parser.add_argument("--data-dir", default=None, help="folder with the IDX files")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--n-epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=HERE / "learning-curves.png")
    args = parser.parse_args()

    (X_train, y_train), (X_test, y_test) = nn.load_dataset(args.dataset, args.data_dir)
    (X_train, y_train), (X_val, y_val) = nn.train_val_split(X_train, y_train, seed=args.seed)
    sizes = [784, *args.hidden_sizes, 10]
    settings = nn.Settings(
        hidden_sizes=args.hidden_sizes,
        dropout=args.dropout,
        optimizer="adam",
        learning_rate=args.learning_rate,
        schedule="cosine",
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        seed=args.seed,
    )
    start = time.perf_counter()
    model, history = nn.build_and_fit(X_train, y_train, settings, validation_data=(X_val, y_val))
    seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(X_test, y_test)

    name = "-".join(map(str, sizes))
    source = {
        "mnist": f"MNIST, {len(X_train):,} training digits",
        "mnist-test-split": f"real MNIST digits (test file split): {len(X_train):,} training",
    }[args.dataset]
    figure = plots.plot_history(history)
    figure.suptitle(
        f"{name} MLP, Adam, dropout {args.dropout:g}, {source}, {len(X_val):,} validation; "
        f"test accuracy {test_accuracy:.2%} on {len(X_test):,}",
        fontsize=10,
    )
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=90)
    print(f"{name}: test accuracy {test_accuracy:.2%} (loss {test_loss:.4f}), {seconds:.0f} s")
    print("wrote", args.output)


if __name__ == "__main__":
    main()
