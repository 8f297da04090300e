"""The files shipped inside the package: the results card and the example pictures."""

from __future__ import annotations

import pytest

import mnist_nn as nn
from mnist_nn.resources import example_image, example_images, results_card


def test_results_card_holds_each_recipe_with_its_runs():
    card = results_card()
    runs = card["seed"]["runs"]
    assert sorted(runs) == ["0", "1", "2"]
    for run in runs.values():
        assert 0.9 < run["test_accuracy"] < 1
        assert run["command"].startswith("python -m mnist_nn train")


def test_example_pictures_are_read_as_digit_inputs():
    names = example_images()
    assert "digit-3.png" in names and all(name.startswith("digit-") for name in names)
    for name in names:
        inputs = nn.prepare_digit_image(nn.read_image(example_image(name)))
        assert inputs.shape == (28, 28)


def test_an_unknown_picture_names_the_ones_there_are():
    with pytest.raises(FileNotFoundError, match="digit-3.png"):
        example_image("digit-9.png")
