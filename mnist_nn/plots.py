"""Every figure of the walkthrough. Each function takes data or results and returns a matplotlib
Figure; none trains anything or calls plt.show()."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from mnist_nn.tables import format_value

# Figures are built with Figure() rather than pyplot, so nothing piles up in pyplot's global
# list of open figures; Jupyter still shows a returned Figure inline.


def plot_digits(
    images: np.ndarray,
    labels: Sequence[int] | None = None,
    predictions: Sequence[int] | None = None,
    n_columns: int = 10,
    title: str | None = None,
) -> Figure:
    """A grid of (N, 28, 28) digits, captioned with their labels (and predictions, if given)."""
    images = np.asarray(images).reshape(len(images), 28, 28)
    n_rows = int(np.ceil(len(images) / n_columns))
    figure = Figure(figsize=(1.1 * n_columns, 1.25 * n_rows + (0.4 if title else 0)))
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_axis_off()
        if index >= len(images):
            continue
        axis.imshow(images[index], cmap="gray_r")
        caption = "" if labels is None else str(labels[index])
        color = "black"
        if predictions is not None:
            caption = f"{caption} → {predictions[index]}" if caption else str(predictions[index])
            if labels is not None and predictions[index] != labels[index]:
                color = "crimson"
        axis.set_title(caption, fontsize=9, color=color)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_class_counts(labels: np.ndarray, class_names: Sequence[str] | None = None) -> Figure:
    """Bar chart of how many samples each class has."""
    counts = np.bincount(np.asarray(labels), minlength=10)
    names = class_names or [str(digit) for digit in range(len(counts))]
    figure = Figure(figsize=(7, 3))
    axis = figure.subplots()
    bars = axis.bar(names, counts, color="steelblue")
    axis.bar_label(bars, fontsize=8)
    axis.set(xlabel="class", ylabel="samples", title="Samples per class")
    _tilt_long_names(axis, names)
    figure.tight_layout()
    return figure


def plot_mean_images(
    images: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None
) -> Figure:
    """The average image of each class: what a 'typical' 0, 1, ..., 9 looks like."""
    images, labels = np.asarray(images), np.asarray(labels)
    figure = Figure(figsize=(11, 1.6))
    axes = figure.subplots(1, 10)
    for digit, axis in enumerate(axes):
        # Sum in float64 over the class: the uint8 images are never converted all at once.
        mean_image = images[labels == digit].mean(axis=0, dtype=np.float64)
        axis.imshow(mean_image.reshape(28, 28), cmap="magma")
        axis.set_title(str(digit) if class_names is None else class_names[digit], fontsize=9)
        axis.set_axis_off()
    figure.suptitle("Mean image per class")
    figure.tight_layout()
    return figure


def plot_pixel_histogram(images: np.ndarray) -> Figure:
    """Histogram of pixel values 0..255 (log scale: most pixels are background)."""
    counts = np.bincount(np.asarray(images, dtype=np.uint8).ravel(), minlength=256)
    figure = Figure(figsize=(7, 3))
    axis = figure.subplots()
    axis.bar(np.arange(256), counts, width=1.0, color="gray")
    axis.set_yscale("log")
    axis.set(xlabel="pixel value", ylabel="count (log)", title="Pixel values")
    figure.tight_layout()
    return figure


def plot_functions(curves: Mapping[str, tuple], x: np.ndarray) -> Figure:
    """One panel per function: its values and its derivative on x.

    curves maps a name to (function, derivative), e.g. {"ReLU": (relu, relu_derivative)}.
    """
    figure = Figure(figsize=(3.2 * len(curves), 3))
    axes = figure.subplots(1, len(curves), squeeze=False)[0]
    for axis, (name, (function, derivative)) in zip(axes, curves.items(), strict=True):
        axis.plot(x, function(x), label=name, linewidth=2)
        axis.plot(x, derivative(x), label="derivative", linestyle="--")
        axis.axhline(0, color="gray", linewidth=0.5)
        axis.axvline(0, color="gray", linewidth=0.5)
        axis.set(title=name, xlabel="z")
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_history(history) -> Figure:
    """Learning curves: loss and accuracy per epoch, training against validation.

    history is a train.History or any mapping with lists under "train_loss", "train_accuracy"
    and, optionally, "val_loss", "val_accuracy".
    """
    figure = Figure(figsize=(11, 3.5))
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        axis.plot(epochs, history[f"train_{metric}"], marker="o", label="training")
        validation = _optional_series(history, f"val_{metric}")
        if validation is not None:
            axis.plot(epochs, validation, marker="o", label="validation")
        axis.set(xlabel="epoch", ylabel=metric, title=metric.capitalize())
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str] | None = None, normalize: bool = False
) -> Figure:
    """Heat map of a confusion matrix: rows are true classes, columns predictions."""
    matrix = np.asarray(matrix)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    names = class_names or [str(index) for index in range(len(matrix))]
    figure = Figure(figsize=(6.5, 5.5))
    axis = figure.subplots()
    image = axis.imshow(shown, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    threshold = shown.max() / 2
    for (row, column), value in np.ndenumerate(shown):
        text = f"{value:.2f}" if normalize else str(value)
        color = "white" if value > threshold else "black"
        axis.text(column, row, text, ha="center", va="center", fontsize=7, color=color)
    axis.set_xticks(range(len(names)), names)
    axis.set_yticks(range(len(names)), names)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    _tilt_long_names(axis, names)
    figure.tight_layout()
    return figure


def plot_per_class_accuracy(
    per_class: np.ndarray, class_names: Sequence[str] | None = None
) -> Figure:
    """Bar chart of accuracy (recall) per class."""
    per_class = np.asarray(per_class)
    names = class_names or [str(index) for index in range(len(per_class))]
    figure = Figure(figsize=(7, 3))
    axis = figure.subplots()
    bars = axis.bar(names, 100 * per_class, color="seagreen")
    axis.bar_label(bars, fmt="%.1f", fontsize=8)
    axis.set_ylim(max(0.0, 100 * per_class.min() - 10), 100)
    axis.set(xlabel="class", ylabel="accuracy (%)", title="Accuracy per class")
    _tilt_long_names(axis, names)
    figure.tight_layout()
    return figure


def plot_misclassified(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    n_images: int = 20,
    n_columns: int = 10,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """A gallery of the most confident mistakes: true label, prediction and its probability."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")[:n_images]]
    n_rows = max(1, int(np.ceil(len(chosen) / n_columns)))
    names = class_names or [str(index) for index in range(probabilities.shape[1])]
    figure = Figure(figsize=(1.5 * n_columns, 2.0 * n_rows + 0.4), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, index in zip(axes.flat, chosen, strict=False):
        axis.imshow(np.asarray(images[index]).reshape(28, 28), cmap="gray_r")
        probability = probabilities[index, predictions[index]]
        true, predicted = names[labels[index]][:10], names[predictions[index]][:10]
        axis.set_title(f"true {true}\nread {predicted}\n{probability:.0%}", fontsize=8)
        axis.title.set_color("crimson")
    figure.suptitle(f"Misclassified: {len(wrong)} of {len(labels)} (most confident first)")
    return figure


def plot_predictions(
    images: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Each image beside a bar chart of the class probabilities, titled with the prediction (and
    the true label where labels gives one, not None; a wrong prediction in red)."""
    probabilities = np.atleast_2d(probabilities)
    n_images = len(probabilities)
    names = class_names or [str(index) for index in range(probabilities.shape[1])]
    figure = Figure(figsize=(6, 1.7 * n_images))
    axes = figure.subplots(n_images, 2, squeeze=False, width_ratios=[1, 3])
    for index, ((image_axis, bar_axis), image, row) in enumerate(
        zip(axes, images, probabilities, strict=True)
    ):
        image_axis.imshow(np.asarray(image).reshape(28, 28), cmap="gray_r")
        image_axis.set_axis_off()
        colors = ["crimson" if k == row.argmax() else "lightgray" for k in range(len(row))]
        bar_axis.bar(range(len(row)), row, color=colors)
        bar_axis.set_xticks(range(len(row)), names)
        _tilt_long_names(bar_axis, names)
        bar_axis.set_ylim(0, 1)
        title = f"prediction {names[row.argmax()]} ({row.max():.1%})"
        label = None if labels is None else labels[index]
        if label is not None:
            title = f"true {names[label]}, {title}"
        wrong = label is not None and label != row.argmax()
        bar_axis.set_title(title, fontsize=9, color="crimson" if wrong else "black")
    figure.tight_layout()
    return figure


def plot_prepared_images(originals: Sequence[np.ndarray], prepared: np.ndarray) -> Figure:
    """Each picture as it was read, above the MNIST-style 28x28 input made from it."""
    n_images = len(originals)
    figure = Figure(figsize=(2.4 * n_images, 4.6))
    axes = figure.subplots(2, n_images, squeeze=False)
    for column, (original, digit) in enumerate(zip(originals, prepared, strict=True)):
        original = np.asarray(original)
        if original.ndim == 2:  # grayscale: show the true levels, not stretched to black/white
            axes[0, column].imshow(original, cmap="gray", vmin=0, vmax=_white_level(original))
        else:
            axes[0, column].imshow(original)
        axes[0, column].set_title(f"file: {original.shape[1]}x{original.shape[0]} px", fontsize=9)
        axes[1, column].imshow(np.asarray(digit).reshape(28, 28), cmap="gray")
        axes[1, column].set_title("network input: 28x28", fontsize=9)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    return figure


def plot_digit_steps(
    original: np.ndarray, steps: Mapping[str, np.ndarray], title: str | None = None
) -> Figure:
    """A picture as it was read, then each step of images.digit_image_steps, ending with the
    28x28 input the network sees: what went wrong when a digit is misread."""
    panels = [("file", np.asarray(original)), *steps.items()]
    figure = Figure(figsize=(2.2 * len(panels), 2.6))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (name, image) in zip(axes, panels, strict=True):
        if image.ndim == 2:  # grey levels as they are, not stretched to black and white
            high = _white_level(image) if image.dtype != bool else 1
            axis.imshow(image, cmap="gray", vmin=0, vmax=high)
        else:
            axis.imshow(image)
        axis.set_title(f"{name.replace('_', ' ')}\n{image.shape[1]}x{image.shape[0]}", fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def _white_level(image: np.ndarray) -> float:
    return float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else 1.0


def plot_weight_images(W: np.ndarray, n_columns: int = 8) -> Figure:
    """First-layer weights (784, H): each hidden unit's 784 weights drawn as a 28x28 image.

    Red is a positive weight (that pixel's ink excites the unit), blue a negative one.
    """
    W = np.asarray(W)
    n_units = W.shape[1]
    n_rows = int(np.ceil(n_units / n_columns))
    limit = np.abs(W).max()
    figure = Figure(figsize=(1.3 * n_columns, 1.3 * n_rows))
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    for unit, axis in enumerate(axes.flat):
        axis.set_axis_off()
        if unit < n_units:
            image = axis.imshow(
                W[:, unit].reshape(28, 28), cmap="coolwarm", vmin=-limit, vmax=limit
            )
            axis.set_title(f"unit {unit}", fontsize=7)
    figure.suptitle("First-layer weights")
    figure.tight_layout()
    figure.colorbar(image, ax=axes, fraction=0.02, label="weight")
    return figure


def plot_filters(W: np.ndarray, n_columns: int = 8, title: str = "Learned filters") -> Figure:
    """Convolution filters W (F, C, K, K), e.g. Conv2D.params["W"]: each filter's K x K weights
    for input channel 0 as a small image, red positive and blue negative, one color scale."""
    W = np.asarray(W)
    if W.ndim != 4:
        raise ValueError(f"filters must have shape (F, C, K, K), got {W.shape}")
    return _image_grid(W[:, 0], n_columns, "filter", title, "coolwarm", symmetric=True)


def plot_feature_maps(maps: np.ndarray, n_columns: int = 8, title: str = "Feature maps") -> Figure:
    """One image's feature maps (F, H, W), e.g. a Conv2D or ReLU output for a single digit:
    where in the picture each filter responds."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"feature maps must have shape (F, H, W) for one image, got {maps.shape}")
    return _image_grid(maps, n_columns, "map", title, "viridis", symmetric=False)


def _image_grid(images, n_columns, label, title, cmap, symmetric) -> Figure:
    n_images = len(images)
    n_columns = min(n_columns, n_images)
    n_rows = int(np.ceil(n_images / n_columns))
    limit = float(np.abs(images).max()) or 1.0
    low, high = (-limit, limit) if symmetric else (float(images.min()), float(images.max()))
    figure = Figure(figsize=(1.3 * n_columns, 1.45 * n_rows + 0.5))
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_axis_off()
        if index < n_images:
            image = axis.imshow(images[index], cmap=cmap, vmin=low, vmax=high)
            axis.set_title(f"{label} {index}", fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.colorbar(image, ax=axes, fraction=0.02)
    return figure


def plot_comparison(
    values: Sequence, scores: Sequence[float], name: str, log_x: bool = False
) -> Figure:
    """Validation accuracy against one hyperparameter (learning rate, batch size, ...)."""
    figure = Figure(figsize=(5, 3.2))
    axis = figure.subplots()
    axis.plot(values, 100 * np.asarray(scores), marker="o")
    if log_x:
        axis.set_xscale("log")
    axis.set(xlabel=name, ylabel="validation accuracy (%)", title=f"Validation accuracy by {name}")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_validation_curve(results, parameter: str = "hidden_sizes") -> Figure:
    """Cross-validated accuracy against one setting: the mean over folds with error bars of
    ± one standard deviation, and each fold's score as a faint dot.

    results: a tuning.GridResults or its to_rows() (dicts with the settings, "mean_val_accuracy",
    "std_val_accuracy" and "fold_val_accuracy"). Hidden sizes with one layer go on a numeric
    axis; shapes like (128, 64) make it categorical. Any other setting that varies gets a line
    of its own.
    """
    rows = _result_rows(results)
    if parameter not in rows[0]:
        raise ValueError(f"no setting {parameter!r} in the results; they have {list(rows[0])}")
    values = [_plain_value(row[parameter]) for row in rows]
    numeric = all(isinstance(value, int | float) for value in values)
    categories = sorted(set(values), key=_category_order)
    position = {value: (value if numeric else index) for index, value in enumerate(categories)}
    others = _varying_settings(rows, exclude=(parameter,))
    groups: dict[str, list[tuple[float, dict]]] = {}
    for value, row in zip(values, rows, strict=True):
        label = ", ".join(f"{name}={format_value(row[name])}" for name in others)
        groups.setdefault(label, []).append((position[value], row))
    figure = Figure(figsize=(6.5, 3.8))
    axis = figure.subplots()
    for label, points in groups.items():
        _plot_group(axis, label, sorted(points, key=lambda point: point[0]), parameter)
    axis.set_xticks(
        [position[value] for value in categories], [format_value(value) for value in categories]
    )
    k = len(rows[0]["fold_val_accuracy"])
    axis.set(
        xlabel="hidden units" if parameter == "hidden_sizes" else parameter,
        ylabel="validation accuracy (%)",
        title=f"{k}-fold cross-validation: mean ± std over folds",
    )
    axis.grid(alpha=0.3)
    if others:
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _plot_group(axis, label: str, points: list[tuple[float, dict]], parameter: str) -> None:
    """One group's means with error bars and fold dots; one-layer widths are joined by a line,
    deeper shapes like 128-64 stand apart in the same colour."""
    color = None
    for deeper in (False, True):
        chosen = [(x, row) for x, row in points if (_n_layers(row[parameter]) > 1) == deeper]
        if not chosen:
            continue
        x = np.array([point[0] for point in chosen], dtype=float)
        line = axis.errorbar(
            x,
            [100 * row["mean_val_accuracy"] for _, row in chosen],
            yerr=[100 * row["std_val_accuracy"] for _, row in chosen],
            marker="s" if deeper else "o",
            linestyle="none" if deeper else "-",
            capsize=4,
            color=color,
            label=None if (deeper and color) else (label or None),
        )
        color = line.lines[0].get_color()
        for x_value, (_, row) in zip(x, chosen, strict=True):
            folds = 100 * np.asarray(row["fold_val_accuracy"])
            axis.scatter(
                np.full(len(folds), x_value), folds, s=14, alpha=0.35, color=color, linewidths=0
            )


def plot_grid_heatmap(
    results, x: str = "batch_size", y: str = "learning_rate", value: str = "mean_val_accuracy"
) -> Figure:
    """Heat map of a two-setting grid (e.g. learning rate x batch size): each cell is the
    cross-validated mean, written with ± its standard deviation; the best cell is outlined.

    results: a tuning.GridResults or its to_rows(). Every (x, y) pair must appear at most once:
    if a third setting varies too, pass only the rows for one value of it.
    """
    rows = _result_rows(results)
    for name in (x, y, value):
        if name not in rows[0]:
            raise ValueError(f"no column {name!r} in the results; they have {list(rows[0])}")
    x_values = sorted({_plain_value(row[x]) for row in rows}, key=_category_order)
    y_values = sorted({_plain_value(row[y]) for row in rows}, key=_category_order)
    grid, spread = _grid_cells(rows, x, y, value, x_values, y_values)
    scale = 100 if "accuracy" in value else 1
    figure = Figure(figsize=(1.3 * len(x_values) + 2.5, 0.8 * len(y_values) + 1.8))
    axis = figure.subplots()
    image = axis.imshow(scale * grid, cmap="viridis", aspect="auto")
    figure.colorbar(
        image, ax=axis, label=value.replace("_", " ") + (" (%)" if scale == 100 else "")
    )
    _write_cells(axis, scale * grid, scale * spread, decimals=1 if scale == 100 else 3)
    best = np.nanargmax(grid) if "accuracy" in value else np.nanargmin(grid)
    best_row, best_column = np.unravel_index(best, grid.shape)
    outline = Rectangle((best_column - 0.5, best_row - 0.5), 1, 1, fill=False, linewidth=2.5)
    outline.set_edgecolor("crimson")
    axis.add_patch(outline)
    axis.set_xticks(range(len(x_values)), [format_value(item) for item in x_values])
    axis.set_yticks(range(len(y_values)), [format_value(item) for item in y_values])
    axis.set(
        xlabel=x.replace("_", " "),
        ylabel=y.replace("_", " "),
        title=f"{value.replace('_', ' ')} (best outlined)",
    )
    figure.tight_layout()
    return figure


def _grid_cells(rows, x, y, value, x_values, y_values) -> tuple[np.ndarray, np.ndarray]:
    """The value and its standard deviation for each (y, x) cell; NaN where no row is."""
    grid = np.full((len(y_values), len(x_values)), np.nan)
    spread = np.full_like(grid, np.nan)
    std_key = value.replace("mean_", "std_", 1)
    for row in rows:
        cell = (y_values.index(_plain_value(row[y])), x_values.index(_plain_value(row[x])))
        if not np.isnan(grid[cell]):
            raise ValueError(
                f"several rows share {x}={format_value(row[x])}, {y}={format_value(row[y])}: "
                f"another setting varies too ({_varying_settings(rows, exclude=(x, y))}); "
                "pass only the rows for one value of it"
            )
        grid[cell] = row[value]
        spread[cell] = row.get(std_key, np.nan)
    return grid, spread


def _write_cells(axis, grid: np.ndarray, spread: np.ndarray, decimals: int) -> None:
    """Each cell's value (± its spread) in a colour that reads on the cell's shade."""
    middle = np.nanmean([np.nanmin(grid), np.nanmax(grid)])
    for (row, column), cell_value in np.ndenumerate(grid):
        if np.isnan(cell_value):
            continue
        text = f"{cell_value:.{decimals}f}"
        if not np.isnan(spread[row, column]):
            text += f"\n± {spread[row, column]:.{decimals}f}"
        color = "black" if cell_value > middle else "white"
        axis.text(column, row, text, ha="center", va="center", fontsize=8, color=color)


_SCORE_KEYS = (
    "mean_val_accuracy",
    "std_val_accuracy",
    "mean_val_loss",
    "std_val_loss",
    "fold_val_accuracy",
    "fold_val_loss",
    "seconds",
    "n_diverged",
)


def _tilt_long_names(axis, names: Sequence[str]) -> None:
    """Class names longer than a digit (e.g. Fashion-MNIST's) are tilted so they don't overlap."""
    if max(len(str(name)) for name in names) > 2:
        axis.tick_params(axis="x", labelrotation=45)
        for label in axis.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")


def _result_rows(results) -> list[dict]:
    rows = results.to_rows() if hasattr(results, "to_rows") else list(results)
    if not rows:
        raise ValueError("got no results to plot")
    return rows


def _varying_settings(rows: Sequence[dict], exclude: Sequence[str]) -> list[str]:
    """Settings (not scores) that take more than one value across the rows."""
    names = [name for name in rows[0] if name not in _SCORE_KEYS and name not in exclude]
    return [name for name in names if len({repr(row[name]) for row in rows}) > 1]


def _plain_value(value):
    """Hashable form of a setting: [64] -> 64 (one hidden layer), [128, 64] -> (128, 64)."""
    if isinstance(value, list | tuple):
        return value[0] if len(value) == 1 else tuple(value)
    return value


def _n_layers(value) -> int:
    value = _plain_value(value)
    return len(value) if isinstance(value, tuple) else 1


def _category_order(value) -> tuple:
    # Numbers by size, then layer shapes by depth and widths, then anything else as text.
    if isinstance(value, int | float):
        return (0, value, ())
    if isinstance(value, tuple):
        return (1, len(value), value)
    return (2, 0, (str(value),))


def _optional_series(history, key: str):
    """The series under key, or None when it is missing or holds no numbers (no validation)."""
    try:
        series = history[key]
    except KeyError:
        return None
    values = [np.nan if value is None else value for value in series]
    return None if len(values) == 0 or np.all(np.isnan(values)) else values


def plot_augmented(image: np.ndarray, augmented: np.ndarray, n_columns: int = 8) -> Figure:
    """One digit (28, 28) and its augmented versions (n, 28, 28) or (n, 784) in a grid, the
    original first (e.g. augmented = augment(np.repeat(image[None], 15, 0), "elastic", rng))."""
    side = int(np.sqrt(np.asarray(image).size))
    images = [
        np.asarray(image, dtype=float).reshape(side, side) / (255 if image.dtype == np.uint8 else 1)
    ]
    images += list(np.asarray(augmented, dtype=float).reshape(-1, side, side))
    n_columns = min(n_columns, len(images))
    n_rows = int(np.ceil(len(images) / n_columns))
    figure = Figure(figsize=(1.2 * n_columns, 1.3 * n_rows + 0.4))
    for index, axis in enumerate(figure.subplots(n_rows, n_columns, squeeze=False).flat):
        axis.set_axis_off()
        if index < len(images):
            axis.imshow(images[index], cmap="gray_r", vmin=0.0, vmax=1.0)
            axis.set_title("original" if index == 0 else f"#{index}", fontsize=7)
    figure.suptitle("One digit and its random distortions")
    figure.tight_layout()
    return figure


def plot_learning_rate_range(result) -> Figure:
    """The learning-rate range test (preflight.find_learning_rate): smoothed loss against the
    learning rate on a log axis, with the suggested rate marked."""
    figure = Figure(figsize=(6, 3.5))
    axis = figure.subplots()
    axis.plot(result.learning_rates, result.losses)
    axis.axvline(result.suggested, color="tab:red", linestyle="--")
    axis.annotate(
        f"suggested {result.suggested:.2g}",
        (result.suggested, float(np.max(result.losses))),
        xytext=(5, -12),
        textcoords="offset points",
        color="tab:red",
    )
    axis.set(
        xscale="log",
        xlabel="learning rate",
        ylabel="smoothed loss",
        title="Learning-rate range test",
    )
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_explanation(explanation: Mapping, class_names: Sequence[str] | None = None) -> Figure:
    """Why the network read a digit as it did (explain.explain_digit's result): the input, the
    average training digit of the predicted and of the true class, the saliency map, and below,
    the nearest training digits."""
    names = class_names or [str(label) for label in range(len(explanation["probabilities"]))]
    predicted, true = explanation["predicted"], explanation["true_label"]
    confidence = explanation["probabilities"][predicted]
    panels = [(explanation["image"], f"input: read as {names[predicted]} ({confidence:.0%})")]
    panels.append((explanation["predicted_mean"], f"average {names[predicted]}"))
    if true is not None and true != predicted:
        panels.append((explanation["true_mean"], f"average {names[true]} (true)"))
    nearest = list(zip(explanation["nearest_images"], explanation["nearest_labels"], strict=True))
    n_columns = max(len(panels) + 1, len(nearest))
    figure = Figure(figsize=(2.4 * n_columns, 5.6))
    axes = figure.subplots(2, n_columns, squeeze=False)
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, (image, title) in zip(axes[0], panels, strict=False):  # more axes than panels
        axis.imshow(image, cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=11)
    _plot_saliency(axes[0][len(panels)], explanation["saliency"], names[predicted])
    for axis, (image, label) in zip(axes[1], nearest, strict=False):
        axis.imshow(image, cmap="gray", vmin=0, vmax=1)
        axis.set_title(f"nearest: {names[label]}", fontsize=11)
    figure.tight_layout()
    return figure


def _plot_saliency(axis, saliency: np.ndarray, name: str) -> None:
    limit = float(np.abs(saliency).max()) or 1.0
    axis.imshow(saliency, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axis.set_title(f"saliency for {name}\nred: ink here raises it", fontsize=11)


# The computational graph of an MLP: the forward chain left to right, each dense layer's
# parameters above it, and the gradients (red) flowing back underneath.
_OPERATIONS = {"Z": "X W + b", "A": "ReLU", "P": "softmax", "L": "cross-entropy"}


def plot_computational_graph(
    values: Mapping[str, np.ndarray], gradients: Mapping[str, np.ndarray]
) -> Figure:
    """The forward pass as a graph: each array a box (its name, shape and mean value), each
    operation an arrow; above each dense layer its W and b, and in red each gradient's shape.

    values holds the forward arrays in order, e.g. {"X": X, "Z1": Z1, "A1": A1, ..., "P": P,
    "L": L, "W1": W1, "b1": b1, ...}; gradients {"dZ3": dZ3, "dW3": dW3, ...} (any subset).
    """
    chain = [name for name in values if not name.startswith(("W", "b"))]
    figure = Figure(figsize=(1.65 * len(chain), 3.6))
    axis = figure.subplots()
    axis.set(xlim=(-0.7, len(chain) - 0.3), ylim=(-1.55, 1.55))
    axis.set_axis_off()
    for x, name in enumerate(chain):
        _graph_box(axis, x, 0.0, name, values[name], "black")
        if x:
            _graph_step(axis, x, name, gradients.get(f"d{name}"))
        layer = name[1:] if name.startswith("Z") else None
        for offset, key in ((-0.2, f"W{layer}"), (0.2, f"b{layer}")):
            if layer and key in values:
                _graph_parameter(axis, x - 0.5 + offset, key, values[key], gradients.get(f"d{key}"))
    logits = max(x for x, name in enumerate(chain) if name.startswith("Z"))
    if f"d{chain[logits]}" in gradients and logits < len(chain) - 1:  # softmax + loss, fused
        arrow = {"arrowstyle": "->", "color": "crimson"}
        axis.annotate("", (logits + 0.1, -1.0), (len(chain) - 1.1, -1.0), arrowprops=arrow)
        middle, text = (logits + len(chain) - 1) / 2, f"d{chain[logits]} = (P - Y) / N"
        axis.text(middle, -1.2, text, ha="center", fontsize=7, color="crimson")
    legend = "black: forward values (mean)   red: gradients, flowing back"
    axis.text(len(chain) - 1, -1.5, legend, ha="right", fontsize=8, color="dimgray")
    figure.tight_layout()
    return figure


def _graph_step(axis, x: int, name: str, gradient) -> None:
    """The operation from box x - 1 to box x, and below it the gradient flowing back."""
    operation = _OPERATIONS.get(name[0], "")
    axis.annotate("", (x - 0.42, 0), (x - 0.58, 0), arrowprops={"arrowstyle": "->"})
    label = operation.replace("X W", "A W") if x > 1 else operation
    axis.text(x - 0.5, 0.1, label, ha="center", fontsize=7)
    if gradient is not None:
        arrow = {"arrowstyle": "->", "color": "crimson"}
        axis.annotate("", (x - 0.9, -0.62), (x - 0.1, -0.62), arrowprops=arrow)
        text = f"d{name} {_shape_words(gradient)}"
        axis.text(x - 0.5, -0.82, text, ha="center", fontsize=7, color="crimson")


def _shape_words(array) -> str:
    shape = np.shape(array)
    return "(" + ", ".join(map(str, shape)) + ")" if shape else "(one number)"


def _graph_box(axis, x: float, y: float, name: str, array, color: str) -> None:
    value = float(np.mean(array))
    axis.text(
        x,
        y,
        f"{name}\n{_shape_words(array)}\n{value:.3g}",
        ha="center",
        va="center",
        fontsize=8,
        color=color,
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": color},
    )


def _graph_parameter(axis, x: float, name: str, array, gradient) -> None:
    axis.text(
        x,
        0.95,
        f"{name}\n{_shape_words(array)}",
        ha="center",
        va="center",
        fontsize=7,
        bbox={"boxstyle": "round", "facecolor": "#eef", "edgecolor": "steelblue"},
    )
    arrow = {"arrowstyle": "->", "color": "steelblue"}
    axis.annotate("", (x, 0.2), (x, 0.75), arrowprops=arrow)
    if gradient is not None:
        axis.text(
            x, 1.38, f"d{name} {_shape_words(gradient)}", ha="center", fontsize=6.5, color="crimson"
        )


def plot_descent_paths(
    paths: Mapping[str, np.ndarray], curvatures: tuple[float, float] = (1.0, 50.0)
) -> Figure:
    """Paths of optimizers on the valley L(w) = (a w1^2 + b w2^2) / 2 with (a, b) = curvatures,
    drawn over its contour lines; paths maps a name to its (steps + 1, 2) positions."""
    a, b = curvatures
    everything = np.concatenate([np.asarray(path) for path in paths.values()])
    reach = np.abs(everything).max(axis=0) * 1.15
    w1, w2 = np.meshgrid(
        np.linspace(-reach[0], reach[0], 200), np.linspace(-reach[1], reach[1], 200)
    )
    figure = Figure(figsize=(10, 4))
    axis = figure.subplots()
    levels = np.geomspace(1e-3, 0.5 * (a * reach[0] ** 2 + b * reach[1] ** 2), 14)
    axis.contour(w1, w2, 0.5 * (a * w1**2 + b * w2**2), levels=levels, colors="lightgray")
    for (name, path), color in zip(
        paths.items(), ["tab:blue", "tab:orange", "tab:green", "tab:red"], strict=False
    ):
        path = np.asarray(path)
        axis.plot(path[:, 0], path[:, 1], marker=".", markersize=4, lw=1, color=color, label=name)
    axis.plot(*np.asarray(next(iter(paths.values())))[0], "ko")
    axis.plot(0, 0, "k*", markersize=12)
    axis.set(
        xlabel="$w_1$ (gentle slope)",
        ylabel="$w_2$ (steep slope)",
        title=f"$L = ({a:g} w_1^2 + {b:g} w_2^2) / 2$, from the dot to the star",
    )
    axis.legend()
    figure.tight_layout()
    return figure


def plot_own_training(
    batch_losses: Sequence[float], val_accuracies: Sequence[float], reference: float | None = None
) -> Figure:
    """The capstone network's learning curve: the loss of every batch (and its moving mean) and
    the validation accuracy after each epoch, with a reference accuracy as a dashed line."""
    figure = Figure(figsize=(11, 3.3))
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    losses = np.asarray(batch_losses, dtype=float)
    loss_axis.plot(losses, color="lightgray", lw=0.7, label="each batch")
    window = max(1, len(losses) // 50)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    loss_axis.plot(np.arange(window - 1, len(losses)), smooth, label=f"mean of {window}")
    loss_axis.set(xlabel="step", ylabel="loss", title="Loss while it trains", yscale="log")
    loss_axis.legend()
    epochs = np.arange(1, len(val_accuracies) + 1)
    accuracy_axis.plot(epochs, val_accuracies, marker="o", label="your network")
    if reference is not None:
        accuracy_axis.axhline(reference, color="tab:green", ls="--", label="nn.fit, same settings")
    accuracy_axis.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    accuracy_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    accuracy_axis.legend()
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure
