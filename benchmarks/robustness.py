"""Robustness: saved models tested on corrupted copies of the MNIST test set.

The copies are made here, in code, from the real t10k images with a fixed seed, and are used
only for judging (nothing trains or tunes on them): digits shifted by 2-4 pixels, rotated by
10-20 degrees, rescaled by 15-25%, sheared by 15-25 degrees, with thicker or thinner strokes,
blurred, noisy, or on a grey "foggy" background. Prints one row per model (clean accuracy, each
corruption, their mean) and writes them to a JSON file.

    python benchmarks/robustness.py --data-dir DIR \
        runs/card/mlp-800-seed0.npz runs/card/mlp-elastic-seed0.npz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import mnist_nn as nn
from mnist_nn.augment import transform

SEED = 2003


def _magnitudes(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """n values with |value| in [low, high] and a random sign."""
    return rng.uniform(low, high, n) * rng.choice([-1.0, 1.0], n)


def _affine(images: np.ndarray, matrix: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
    shift = np.zeros((len(images), 2)) if shift is None else shift
    return transform(images, matrix, shift)


def shifted(images, rng):
    angle = rng.uniform(0, 2 * np.pi, len(images))
    distance = rng.uniform(2, 4, len(images))
    shift = np.stack([distance * np.sin(angle), distance * np.cos(angle)], axis=1)
    return _affine(images, np.broadcast_to(np.eye(2), (len(images), 2, 2)), shift)


def rotated(images, rng):
    angle = np.radians(_magnitudes(rng, len(images), 10, 20))
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
    return _affine(images, matrix)


def rescaled(images, rng):
    size = 1 + _magnitudes(rng, len(images), 0.15, 0.25)
    return _affine(images, np.eye(2) * size[:, None, None])


def sheared(images, rng):
    matrix = np.tile(np.eye(2), (len(images), 1, 1))
    matrix[:, 1, 0] = np.tan(np.radians(_magnitudes(rng, len(images), 15, 25)))
    return _affine(images, matrix)


def _neighbourhood(images: np.ndarray, reduce) -> np.ndarray:
    """reduce (np.maximum or np.minimum) over each pixel and its four neighbours."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    out = padded[:, 1:-1, 1:-1].copy()
    for rows, cols in ((slice(None, -2), slice(1, -1)), (slice(2, None), slice(1, -1))):
        out = reduce(out, padded[:, rows, cols])
    for rows, cols in ((slice(1, -1), slice(None, -2)), (slice(1, -1), slice(2, None))):
        out = reduce(out, padded[:, rows, cols])
    return out


def thicker(images, rng):
    return _neighbourhood(images, np.maximum)  # grey dilation by a plus sign


def thinner(images, rng):
    # A full erosion would delete MNIST's 2-3 pixel strokes; half of it thins them.
    return 0.5 * (images + _neighbourhood(images, np.minimum))


def blurred(images, rng):
    offsets = np.arange(28)
    G = np.exp(-((offsets[:, None] - offsets[None, :]) ** 2) / (2 * 1.0**2))
    G /= np.exp(-(np.arange(-4, 5) ** 2) / 2.0).sum()
    return np.clip(G @ images @ G.T, 0, 1)  # Gaussian, sigma 1 pixel


def noisy(images, rng):
    return np.clip(images + rng.normal(0, 0.3, images.shape), 0, 1)


def foggy(images, rng):
    return 0.4 + 0.6 * images  # a grey veil: paper at 0.4, ink still at 1


CORRUPTIONS = {
    "shift 2-4 px": shifted,
    "rotate 10-20°": rotated,
    "rescale 15-25%": rescaled,
    "shear 15-25°": sheared,
    "thicker": thicker,
    "thinner": thinner,
    "blur": blurred,
    "noise": noisy,
    "fog": foggy,
}


def corrupted_copies(X_test: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    images = X_test.astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    return {name: make(images, rng).astype(np.float32) for name, make in CORRUPTIONS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data-dir", required=True, help="folder with MNIST's t10k files")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/robustness.json"))
    parser.add_argument(
        "--readme", action="store_true", help="rewrite the table in docs/robustness.md"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="draws the corrupted copies")
    args = parser.parse_args()
    X_test, y_test = nn.load_mnist(args.data_dir, split="test", download=False, progress=False)
    copies = {"clean": X_test, **corrupted_copies(X_test, args.seed)}
    results = {}
    for path in args.models:
        model = nn.load_model(path)
        row = {name: model.evaluate(X, y_test).accuracy for name, X in copies.items()}
        row["mean of corruptions"] = float(np.mean([row[name] for name in CORRUPTIONS]))
        results[str(path)] = row
        print(path, "  ".join(f"{name} {value:.2%}" for name, value in row.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.readme:
        write_readme(results)


def table(results: dict) -> str:
    names = ["clean", *CORRUPTIONS, "mean of corruptions"]
    lines = ["| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for path, row in results.items():
        cells = " | ".join(f"{row[name]:.1%}" for name in names)
        lines.append(f"| `{Path(path).stem}` | {cells} |")
    return "\n".join(lines)


def write_readme(results: dict) -> None:
    readme = Path(__file__).resolve().parents[1] / "docs" / "robustness.md"
    start_marker, end_marker = "<!-- robustness:start -->", "<!-- robustness:end -->"
    text = readme.read_text()
    start, end = text.index(start_marker) + len(start_marker), text.index(end_marker)
    readme.write_text(text[:start] + "\n" + table(results) + "\n" + text[end:])


if __name__ == "__main__":
    main()
