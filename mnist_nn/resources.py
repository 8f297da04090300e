"""The files that ship inside the package (mnist_nn/data/): the results card and the example
digit pictures, found through importlib.resources wherever the package is installed."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

DATA = files("mnist_nn") / "data"


def results_card() -> dict:
    """The results card: for each recipe, its description and one run per seed on full MNIST
    (test accuracy, best epoch, seconds and the exact train command)."""
    return json.loads((DATA / "results_card.json").read_text(encoding="utf-8"))


def example_images() -> list[str]:
    """The names of the example digit pictures, e.g. "digit-3.png"."""
    return sorted(item.name for item in DATA.iterdir() if item.name.startswith("digit-"))


def example_image(name: str) -> Path:
    """The path of one example picture, as read_image and `predict` take it."""
    if name not in example_images():
        raise FileNotFoundError(f"no example picture {name!r}; there are {example_images()}")
    return Path(str(DATA / name))  # an installed package is a folder on disk, not a zip file
