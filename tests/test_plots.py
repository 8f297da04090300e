"""Every plot returns a Figure with the panels and labels it promises."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from mnist_nn import plots


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    labels = np.arange(30) % 10
    return images, labels


def test_plot_digits_marks_wrong_predictions(digits):
    images, labels = digits
    predictions = labels.copy()
    predictions[3] = 9
    figure = plots.plot_digits(images[:12], labels[:12], predictions[:12], n_columns=6)
    assert isinstance(figure, Figure) and len(figure.axes) == 12
    assert figure.axes[3].get_title() == "3 → 9"
    assert figure.axes[3].title.get_color() == "crimson"
    assert figure.axes[0].title.get_color() == "black"


def test_data_plots(digits):
    images, labels = digits
    counts = plots.plot_class_counts(labels)
    heights = [patch.get_height() for patch in counts.axes[0].patches]
    assert heights == [3] * 10
    assert len(plots.plot_mean_images(images, labels).axes) == 10
    histogram = plots.plot_pixel_histogram(images)
    assert sum(patch.get_height() for patch in histogram.axes[0].patches) == images.size


def test_plot_history_with_and_without_validation():
    history = {"train_loss": [1.0, 0.5], "train_accuracy": [0.6, 0.8]}
    figure = plots.plot_history(history)
    assert [len(axis.lines) for axis in figure.axes] == [1, 1]
    history |= {"val_loss": [1.1, 0.7], "val_accuracy": [0.5, 0.7]}
    figure = plots.plot_history(history)
    assert [len(axis.lines) for axis in figure.axes] == [2, 2]
    np.testing.assert_array_equal(figure.axes[0].lines[1].get_ydata(), [1.1, 0.7])


def test_plot_confusion_matrix_writes_every_count():
    matrix = np.arange(100).reshape(10, 10)
    figure = plots.plot_confusion_matrix(matrix)
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts == [str(value) for value in range(100)]


def test_plot_misclassified_shows_most_confident_mistakes_first(digits):
    images, labels = digits
    probabilities = np.full((30, 10), 0.01)
    probabilities[np.arange(30), labels] = 0.91  # all right ...
    probabilities[5] = np.eye(10)[2] * 0.6 + 0.04  # ... but two mistakes
    probabilities[7] = np.eye(10)[1] * 0.9 + 0.01
    figure = plots.plot_misclassified(images, labels, probabilities, n_images=5, n_columns=5)
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titles[0].startswith("true 7\npred 1") and titles[1].startswith("true 5\npred 2")
    assert len(titles) == 2


def test_other_plots_build(digits, tmp_path):
    images, _ = digits
    probabilities = np.full((3, 10), 0.1)
    assert len(plots.plot_predictions(images[:3], probabilities).axes) == 6
    W = np.random.default_rng(1).normal(size=(784, 10))
    assert len([a for a in plots.plot_weight_images(W, n_columns=5).axes if a.images]) == 10
    figure = plots.plot_per_class_accuracy(np.linspace(0.9, 1.0, 10))
    figure.savefig(tmp_path / "per_class.png")
    assert (tmp_path / "per_class.png").stat().st_size > 1000
    relu = (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float))
    assert len(plots.plot_functions({"ReLU": relu}, np.linspace(-3, 3, 50)).axes) == 1
    assert plots.plot_comparison([1e-3, 1e-2], [0.9, 0.95], "learning rate", log_x=True).axes
