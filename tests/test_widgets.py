"""The notebook's widgets, driven as the browser would drive them but from Python: a drawing
(a list of strokes) is read as `predict` reads the same picture saved to a file, the live curves
draw what fit reports, and the playground trains, stops and fills its table."""

import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import mnist_nn as nn
from mnist_nn import cli, plots, widgets
from mnist_nn.synthetic import make_synthetic_digits

# A "7": a bar across the top and a stroke down to the bottom left, in board pixels.
SEVEN = [[[70, 60], [140, 58], [210, 60]], [[210, 60], [170, 140], [130, 230]]]


@pytest.fixture(scope="module")
def data():
    return make_synthetic_digits(3000, seed=0), make_synthetic_digits(300, seed=1)


@pytest.fixture(scope="module")
def model(data):
    (X, y), _ = data
    model = nn.build_mlp((32,))
    nn.fit(model, X, y, n_epochs=3, progress=False)
    return model


def test_strokes_become_white_lines_on_black():
    image = widgets.strokes_to_image([[[40, 100], [240, 100]]], side=280, stroke_width=20)
    assert image.shape == (280, 280) and image.dtype == np.uint8
    assert image[100, 40:241].min() == 255  # along the stroke
    assert image[100 - 9 : 100 + 10, 140].min() == 255  # its width
    assert image[80, 140] == 0 and image[120, 140] == 0 and image[100, 10] == 0  # beside it
    dot = widgets.strokes_to_image([[[50, 50]]], side=100, stroke_width=10)
    assert dot[50, 50] == 255 and dot.sum() < 255 * 10 * 10


def test_a_drawing_is_read_as_predict_reads_the_same_picture(model, tmp_path, capsys):
    reader = widgets.DigitReader(model)
    reader.board.strokes = SEVEN  # what the page sends
    picture = tmp_path / "drawn.png"
    Image.fromarray(widgets.strokes_to_image(SEVEN)).save(picture)
    model_path = model.save(tmp_path / "model.npz")
    assert cli.main(["predict", str(model_path), str(picture)]) == 0
    printed = capsys.readouterr().out
    best = int(reader.probabilities.argmax())
    assert f"{picture}: {best}  ({best} {reader.probabilities[best]:.1%}" in printed
    assert f"{best} ({reader.probabilities[best]:.0%})" in reader.answer.value
    np.testing.assert_array_equal(reader.digit, nn.load_digit_image(picture))
    assert [bar.value for bar in reader.bars] == pytest.approx(list(reader.probabilities))


def test_a_dash_on_the_board_gets_not_sure_with_a_best_guess(model):
    reader = widgets.DigitReader(model)
    reader.board.strokes = [[[60, 140], [220, 140]]]  # softmax alone would still pick a digit
    assert "not sure: this does not look like a handwritten digit" in reader.answer.value
    assert "best guess" in reader.answer.value and reader.probabilities is not None
    reader.board.strokes = SEVEN
    assert "not sure" not in reader.answer.value


def test_undo_and_clear(model):
    reader = widgets.DigitReader(model)
    reader.board.strokes = SEVEN[:1]
    only_bar = reader.probabilities.copy()
    reader.board.strokes = SEVEN
    reader.undo()
    assert reader.board.strokes == SEVEN[:1]
    np.testing.assert_array_equal(reader.probabilities, only_bar)
    reader.clear()
    assert reader.digit is None and reader.probabilities is None
    assert "draw a digit" in reader.answer.value
    assert all(bar.value == 0 for bar in reader.bars)


def test_a_cnn_and_class_names_from_a_fashion_model(data):
    (X, y), _ = data
    cnn = nn.build_cnn((4,))
    nn.fit(cnn, X[:300], y[:300], n_epochs=1, progress=False)
    cnn.provenance["class_names"] = list(nn.datasets.FASHION_MNIST_CLASSES)
    reader = widgets.DigitReader(cnn)
    probabilities = reader.read(SEVEN)
    assert probabilities.shape == (10,) and probabilities.sum() == pytest.approx(1, rel=1e-5)
    assert reader.class_names[int(probabilities.argmax())] in reader.answer.value
    labels = [row.children[0].value for row in reader.view.children[0].children[2].children]
    assert labels == list(nn.datasets.FASHION_MNIST_CLASSES)


def test_why_shows_the_explanation_of_the_drawing(model, data):
    (X, y), _ = data
    reader = widgets.DigitReader(model, training_data=(X, y))
    assert reader.explain() is None  # nothing drawn yet
    reader.read(SEVEN)
    figure = reader.explain()
    assert any(axis.get_title().startswith("saliency for") for axis in figure.axes)
    assert bytes(reader.why.value).startswith(b"\x89PNG")


def test_the_board_script_is_valid_javascript(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = tmp_path / "board.mjs"
    script.write_text(widgets.DrawingBoard._esm)
    result = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fit_reports_every_batch_and_stops_when_asked(data):
    (X, y), _ = data
    steps = []
    nn.fit(nn.build_mlp((8,)), X[:1000], y[:1000], n_epochs=2, batch_size=250, progress=False,
           on_batch_end=steps.append)  # fmt: skip
    assert [(step["epoch"], step["batch"]) for step in steps] == [
        (epoch, batch) for epoch in (1, 2) for batch in (1, 2, 3, 4)
    ]
    assert all(step["n_batches"] == 4 and np.isfinite(step["loss"]) for step in steps)

    def stop_in_epoch_two(step):
        if step["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(nn.TrainingInterrupted) as stopped:
        nn.fit(nn.build_mlp((8,)), X[:1000], y[:1000], n_epochs=3, progress=False,
               on_batch_end=stop_in_epoch_two)  # fmt: skip
    assert len(stopped.value.history) == 1


def test_live_curves_draw_what_fit_reports(data):
    (X, y), (X_val, y_val) = data
    figures = []
    curves = widgets.LiveCurves(show=figures.append, every_seconds=0)
    history = nn.fit(
        nn.build_mlp((8,)), X[:1000], y[:1000], n_epochs=2, batch_size=500, progress=False,
        validation_data=(X_val, y_val), **curves.callbacks,
    )  # fmt: skip
    assert len(figures) == 2 * 2 + 2  # every batch (every_seconds=0) and every epoch
    loss_lines = {line.get_label(): line for line in figures[-1].axes[0].lines}
    np.testing.assert_allclose(loss_lines["validation"].get_ydata(), history["val_loss"])
    np.testing.assert_allclose(loss_lines["training, per batch"].get_xdata(), [0.5, 1, 1.5, 2])
    curves.finish(history)
    final, expected = figures[-1], plots.plot_history(history)
    for axis, expected_axis in zip(final.axes, expected.axes, strict=True):
        for line, expected_line in zip(axis.lines, expected_axis.lines, strict=True):
            np.testing.assert_array_equal(line.get_ydata(), expected_line.get_ydata())


def test_live_curves_redraw_batches_at_most_every_so_often():
    figures = []
    curves = widgets.LiveCurves(show=figures.append, every_seconds=60)
    for batch in range(1, 101):
        curves.batch_done({"epoch": 1, "batch": batch, "n_batches": 100, "loss": 1 / batch})
    assert len(figures) == 1 and len(curves.batch_losses) == 100


@pytest.fixture
def playground(data):
    (X, y), (X_val, y_val) = data
    playground = widgets.Playground((X, y), (X_val, y_val), (X_val, y_val), n_train=1000)
    playground.controls["hidden_sizes"].value = "16"
    playground.controls["n_epochs"].value = 2
    return playground


def test_the_playground_trains_what_its_widgets_say(playground):
    row = playground.train()
    assert row["hidden_sizes"] == "16" and row["epochs"] == 2 and row["outcome"] == "done"
    assert row["val_accuracy"].endswith("%") and row["test_accuracy"].endswith("%")
    playground.controls["optimizer"].value = "sgd"
    playground.controls["learning_rate"].value = 0.1
    second = playground.train()
    assert second["run"] == 2 and second["optimizer"] == "sgd" and second["learning_rate"] == "0.1"
    assert playground.table.value.count("<tr>") == 3  # the header and two runs
    assert second["images"] == "1,000"
    playground.controls["optimizer"].value = "adam"
    playground.n_train.value = 500
    assert playground.train()["images"] == "500"
    assert bytes(playground.curves.value).startswith(b"\x89PNG")


def test_the_playground_shows_and_records_only_the_settings_its_model_uses(playground):
    hidden = {name for name, control in playground.controls.items() if control.layout.display}
    assert hidden == {"n_filters"}  # an MLP: no filters
    playground.controls["model"].value = "cnn"
    hidden = {name for name, control in playground.controls.items() if control.layout.display}
    assert hidden == {"hidden_sizes", "activation", "dropout"}
    playground.controls["n_filters"].value = "4"
    playground.controls["n_epochs"].value = 1
    playground.n_train.value = 500
    row = playground.train()
    assert row["model"] == "cnn" and row["n_filters"] == "4"
    assert row["hidden_sizes"] == row["activation"] == row["dropout"] == "-"  # not used
    playground.controls["model"].value = "mlp"
    assert playground.train()["n_filters"] == "-"


def test_the_playground_stop_button_ends_the_run(playground):
    playground._show_curves = lambda figure: playground.stop()  # pressed at the first redraw
    playground.controls["n_epochs"].value = 5
    row = playground.train()
    assert row["outcome"] == "stopped" and row["epochs"] < 5


def test_the_train_button_runs_in_the_background_and_reports_bad_settings(playground):
    playground.controls["hidden_sizes"].value = "sixteen"
    playground.start()
    assert "hidden sizes must be whole numbers" in playground.status.value
    assert playground.runs == []
    playground.controls["hidden_sizes"].value = "16-8"
    playground.start()
    deadline = time.monotonic() + 60
    while playground.train_button.disabled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [run["hidden_sizes"] for run in playground.runs] == ["16-8"]
    assert playground.status.value.startswith("run 1: validation accuracy")


def test_importing_the_package_does_not_import_jupyter():
    code = "import mnist_nn, sys; print(sorted({'ipywidgets', 'anywidget'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
