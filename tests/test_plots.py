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
    figure.canvas.draw()
    ticks = [tick.get_text() for tick in figure.axes[0].get_xticklabels() if tick.get_text()]
    assert all(text.lstrip("−-").isdigit() for text in ticks), ticks  # whole epochs only


def test_plot_confusion_matrix_writes_every_count():
    matrix = np.arange(100).reshape(10, 10)
    figure = plots.plot_confusion_matrix(matrix)
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts == [str(value) for value in range(100)]
    assert figure.axes[0].get_xticklabels()[0].get_rotation() == 0  # digits stay upright
    names = "T-shirt Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag Boot".split()
    figure = plots.plot_confusion_matrix(matrix, names)
    labels = figure.axes[0].get_xticklabels()
    assert [label.get_text() for label in labels] == names and labels[0].get_rotation() == 45


def test_plot_misclassified_shows_most_confident_mistakes_first(digits):
    images, labels = digits
    probabilities = np.full((30, 10), 0.01)
    probabilities[np.arange(30), labels] = 0.91  # all right ...
    probabilities[5] = np.eye(10)[2] * 0.6 + 0.04  # ... but two mistakes
    probabilities[7] = np.eye(10)[1] * 0.9 + 0.01
    figure = plots.plot_misclassified(images, labels, probabilities, n_images=5, n_columns=5)
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titles[0].startswith("true 7\nread 1") and titles[1].startswith("true 5\nread 2")
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


def test_plot_prepared_images_shows_each_picture_above_its_input(digits):
    images, _ = digits
    originals = [np.zeros((60, 40), dtype=np.uint8), np.zeros((30, 50, 3), dtype=np.uint8)]
    figure = plots.plot_prepared_images(originals, images[:2])
    assert len(figure.axes) == 4
    assert figure.axes[0].get_title() == "file: 40x60 px"  # width x height, like image viewers
    assert figure.axes[1].get_title() == "file: 50x30 px"
    assert figure.axes[3].get_images()[0].get_array().shape == (28, 28)
    with pytest.raises(ValueError):
        plots.plot_prepared_images(originals, images[:3])


def tuning_rows(grid: dict, accuracy) -> list[dict]:
    """Rows as GridResults.to_rows() gives them, with made-up scores: accuracy(settings) -> mean."""
    import itertools

    rows = []
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values, strict=True))
        mean = accuracy(settings)
        folds = [mean - 0.01, mean, mean + 0.01]
        rows.append(
            {
                **settings,
                "mean_val_accuracy": mean,
                "std_val_accuracy": float(np.std(folds, ddof=1)),
                "mean_val_loss": 1 - mean,
                "std_val_loss": 0.02,
                "fold_val_accuracy": folds,
                "fold_val_loss": [1 - mean] * 3,
            }
        )
    return rows


def test_validation_curve_has_error_bars_in_order_of_width():
    sizes = [[10], [128], [32], [128, 64]]
    rows = tuning_rows({"hidden_sizes": sizes}, lambda s: 0.5 + 0.003 * sum(s["hidden_sizes"]))
    figure = plots.plot_validation_curve(rows)
    axis = figure.axes[0]
    assert [tick.get_text() for tick in axis.get_xticklabels()] == ["10", "32", "128", "128-64"]
    line = axis.containers[0].lines[0]  # the one-layer widths, joined in order of width
    assert list(line.get_xdata()) == [0, 1, 2]
    assert np.allclose(line.get_ydata(), [53.0, 59.6, 88.4])
    # Error bars: one vertical segment per point, mean ± std.
    bars = [container.lines[2][0] for container in axis.containers]
    spans = [segment[:, 1] for collection in bars for segment in collection.get_segments()]
    assert len(spans) == 4 and np.allclose([high - low for low, high in spans], 2.0)
    assert axis.get_xlabel() == "hidden units" and "mean ± std" in axis.get_title()


def test_validation_curve_numeric_axis_and_one_line_per_other_setting():
    grid = {"hidden_sizes": [[16], [64]], "learning_rate": [1e-3, 1e-2]}
    rows = tuning_rows(grid, lambda s: 0.6 + s["hidden_sizes"][0] / 1000 + s["learning_rate"])
    axis = plots.plot_validation_curve(rows).axes[0]
    lines = [container.lines[0] for container in axis.containers]
    assert sorted(tuple(line.get_xdata()) for line in lines) == [(16, 64), (16, 64)]
    labels = [text.get_text() for text in axis.get_legend().get_texts()]
    assert labels == ["learning_rate=0.001", "learning_rate=0.01"]
    with pytest.raises(ValueError, match="no setting 'batch_size'"):
        plots.plot_validation_curve(rows, parameter="batch_size")


def test_grid_heatmap_cells_and_best_outline():
    grid = {"learning_rate": [1e-3, 1e-2, 1e-1], "batch_size": [32, 128]}
    rows = tuning_rows(
        grid, lambda s: 0.9 - abs(np.log10(s["learning_rate"]) + 2) / 10 - s["batch_size"] / 10_000
    )
    figure = plots.plot_grid_heatmap(rows, x="batch_size", y="learning_rate")
    axis = figure.axes[0]
    image = axis.get_images()[0].get_array()
    assert image.shape == (3, 2)  # rows: learning rates, columns: batch sizes
    assert image[1, 0] == pytest.approx(100 * (0.9 - 0.0032))
    assert [tick.get_text() for tick in axis.get_yticklabels()] == ["0.001", "0.01", "0.1"]
    texts = [text.get_text() for text in axis.texts]
    assert len(texts) == 6 and all("±" in text for text in texts)
    (outline,) = axis.patches
    assert outline.get_xy() == (-0.5, 0.5)  # the best cell: batch 32, learning rate 0.01
    with pytest.raises(ValueError, match="another setting varies"):
        plots.plot_grid_heatmap(rows + [{**rows[0], "n_epochs": 9}], x="batch_size")


def test_conv_filter_and_feature_map_plots():
    from mnist_nn.model import build_cnn

    model = build_cnn(seed=0)
    figure = plots.plot_filters(model.layers[0].params["W"])
    images = [axis.get_images() for axis in figure.axes]
    assert sum(len(found) for found in images) == 16
    assert next(found for found in images if found)[0].get_array().shape == (5, 5)
    X = model.prepare_input(np.zeros((1, 1, 28, 28), np.uint8) + 200)
    maps = model.layers[1].forward(model.layers[0].forward(X))[0]  # (16, 28, 28)
    figure = plots.plot_feature_maps(maps, title="After ReLU")
    assert [text.get_text() for text in figure.texts] == ["After ReLU"]  # the suptitle
    with pytest.raises(ValueError, match="one image"):
        plots.plot_feature_maps(maps[None])
    with pytest.raises(ValueError, match=r"\(F, C, K, K\)"):
        plots.plot_filters(np.zeros((4, 5, 5)))


def test_augmented_and_learning_rate_range_plots():
    from mnist_nn.augment import augment
    from mnist_nn.preflight import LearningRateRange

    image = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    augmented = augment(np.repeat(image[None], 7, axis=0), "elastic", np.random.default_rng(0))
    figure = plots.plot_augmented(image, augmented)
    assert len([axis for axis in figure.axes if axis.images]) == 8
    assert figure.axes[0].get_title() == "original"
    rates = np.geomspace(1e-5, 1.0, 20)
    result = LearningRateRange(rates, np.linspace(2.3, 0.5, 20), suggested=1e-3)
    figure = plots.plot_learning_rate_range(result)
    assert figure.axes[0].get_xscale() == "log"


def test_computational_graph_shows_every_array_with_its_shape_and_the_gradients():
    rng = np.random.default_rng(0)
    X, W1, b1 = rng.random((4, 6)), rng.standard_normal((6, 3)), np.zeros(3)
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    values = {"X": X, "Z1": Z1, "A1": A1, "W1": W1, "b1": b1, "L": np.float64(2.3)}
    gradients = {"dZ1": Z1, "dA1": A1, "dW1": W1}
    figure = plots.plot_computational_graph(values, gradients)
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert "Z1\n(4, 3)\n" + f"{Z1.mean():.3g}" in texts
    assert "W1\n(6, 3)" in texts and "dW1 (6, 3)" in texts and "dZ1 (4, 3)" in texts
    assert any(text.startswith("L\n(one number)") for text in texts)


def test_descent_paths_draw_one_line_per_optimizer_over_the_valley():
    paths = {
        "SGD": np.array([[5.0, 1.0], [4.0, -0.5], [3.0, 0.2]]),
        "Adam": np.array([[5.0, 1.0], [4.5, 0.5]]),
    }
    figure = plots.plot_descent_paths(paths)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert "SGD" in labels and "Adam" in labels


def test_own_training_curve_marks_the_reference_accuracy():
    figure = plots.plot_own_training([2.3, 1.0, 0.5, 0.4], [0.91, 0.94], reference=0.95)
    accuracy_axis = figure.axes[1]
    assert [line.get_label() for line in accuracy_axis.get_lines()] == [
        "your network",
        "nn.fit, same settings",
    ]
