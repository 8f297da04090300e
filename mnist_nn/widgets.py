"""Interactive tools for the notebook: a board that reads a digit while you draw it, live
learning curves, a playground to change the settings and retrain, and a look at why the network
answered as it did.

Imported only when used (``from mnist_nn import widgets``), so the package, the command line and
the tests need no Jupyter. Built on ipywidgets, plus anywidget for the one thing ipywidgets
lacks, a canvas to draw on (a 60-line JavaScript module below, no build step). Every callback is
a plain method that tests call without a browser.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence

import anywidget
import ipywidgets as w
import numpy as np
import traitlets
from IPython.display import display
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from mnist_nn import plots
from mnist_nn.builders import build_model
from mnist_nn.digit_check import NOT_A_DIGIT, digit_verdict
from mnist_nn.explain import explain_digit
from mnist_nn.images import prepare_digit_image
from mnist_nn.model import Model
from mnist_nn.settings import CHOICES, Settings
from mnist_nn.tables import format_value
from mnist_nn.train import TrainingInterrupted, fit

CANVAS_SIDE = 280  # pixels of the drawing board: 10 per pixel of MNIST's 28
STROKE_WIDTH = 22  # after the 20x20 fit, about MNIST's 2-3 pixel strokes
SEND_EVERY_MS = 150  # while drawing, the strokes go to Python at most this often
CURVE_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
PLAYGROUND_SAMPLES = 10_000  # training images of a playground run: seconds for an MLP
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
ONLY_FOR = {"hidden_sizes": "mlp", "activation": "mlp", "dropout": "mlp", "n_filters": "cnn"}


def strokes_to_image(
    strokes: Sequence[Sequence[Sequence[float]]],
    side: int = CANVAS_SIDE,
    stroke_width: int = STROKE_WIDTH,
) -> np.ndarray:
    """The board's picture, (side, side) uint8: white strokes on black, round ends and joints.

    strokes: a list of strokes, each a list of [x, y] points in board pixels, as drawn.
    """
    picture = Image.new("L", (side, side), 0)
    pen = ImageDraw.Draw(picture)
    radius = stroke_width / 2
    for stroke in strokes:
        points = [(float(x), float(y)) for x, y in stroke]
        if len(points) > 1:
            pen.line(points, fill=255, width=stroke_width, joint="curve")
        for x, y in (points[0], points[-1]) if points else ():  # round caps, or a dot
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(picture)


def png_bytes(image: np.ndarray | Figure, scale: int = 1) -> bytes:
    """A uint8 image (enlarged `scale` times, pixels kept sharp) or a Figure as PNG bytes."""
    buffer = io.BytesIO()
    if isinstance(image, Figure):
        image.savefig(buffer, format="png", dpi=72)
    else:
        picture = Image.fromarray(image)
        picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST).save(
            buffer, format="png"
        )
    return buffer.getvalue()


class DrawingBoard(anywidget.AnyWidget):
    """A canvas to draw on with mouse, pen or finger; `strokes` holds what is drawn."""

    _esm = """
    function guarded(action) {  // our errors name us in the console, where tests look
      return (...args) => {
        try { return action(...args); }
        catch (error) { console.error("mnist_nn DrawingBoard:", error); throw error; }
      };
    }

    function draw({ model, el }) {
      const side = model.get("side");
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = side;
      canvas.className = "mnist-nn-board";
      canvas.style.cssText = "touch-action: none; cursor: crosshair; border-radius: 4px";
      const pen = canvas.getContext("2d");
      let strokes = model.get("strokes").map((stroke) => stroke.slice());
      let current = null, timer = null;

      function paint() {
        pen.fillStyle = "black";
        pen.fillRect(0, 0, side, side);
        Object.assign(pen, { strokeStyle: "white", fillStyle: "white", lineCap: "round",
                             lineJoin: "round", lineWidth: model.get("stroke_width") });
        for (const stroke of strokes) {
          pen.beginPath();
          stroke.forEach(([x, y], i) => (i ? pen.lineTo(x, y) : pen.moveTo(x, y)));
          if (stroke.length === 1) pen.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
          pen.stroke();
        }
      }
      function send() {  // the whole drawing, so Python never misses a point
        clearTimeout(timer);
        timer = null;
        model.set("strokes", strokes.map((stroke) => stroke.slice()));
        model.save_changes();
      }
      function point(event) {
        const box = canvas.getBoundingClientRect();
        return [Math.round((event.clientX - box.left) * side / box.width),
                Math.round((event.clientY - box.top) * side / box.height)];
      }
      canvas.addEventListener("pointerdown", guarded((event) => {
        canvas.setPointerCapture(event.pointerId);
        current = [point(event)];
        strokes.push(current);
        paint();
      }));
      canvas.addEventListener("pointermove", guarded((event) => {
        if (current === null) return;
        current.push(point(event));
        paint();
        if (timer === null) timer = setTimeout(guarded(send), model.get("send_every_ms"));
      }));
      const finish = guarded(() => { if (current !== null) { current = null; send(); } });
      canvas.addEventListener("pointerup", finish);
      canvas.addEventListener("pointercancel", finish);
      model.on("change:strokes", guarded(() => {  // Clear and Undo, from Python
        if (current === null) { strokes = model.get("strokes").map((s) => s.slice()); paint(); }
      }));
      paint();
      el.appendChild(canvas);
    }
    export default { render: guarded(draw) };
    """
    strokes = traitlets.List([]).tag(sync=True)
    side = traitlets.Int(CANVAS_SIDE).tag(sync=True)
    stroke_width = traitlets.Int(STROKE_WIDTH).tag(sync=True)
    send_every_ms = traitlets.Int(SEND_EVERY_MS).tag(sync=True)


class DigitReader:
    """Draw a digit and watch the network read it: the 28x28 input it sees and its ten
    probabilities update as you draw. Works with any model on 28x28 images (MLP, CNN, Fashion).

    reader = DigitReader(model); display it (last line of a cell). reader.digit and
    reader.probabilities hold the latest input and answer; reader.read(strokes) is what the
    board calls, and can be called directly.
    """

    def __init__(
        self, model: Model, class_names: Sequence[str] | None = None, training_data=None
    ) -> None:
        self.model = model
        self.class_names = list(class_names or model.class_names())
        self.training_data = training_data  # (X, y): enables the "Why?" button
        self.digit: np.ndarray | None = None
        self.probabilities: np.ndarray | None = None
        self.board = DrawingBoard()
        self.board.observe(lambda change: self.read(change["new"]), names="strokes")
        self.seen = w.Image(format="png", width=140, height=140)
        self.answer = w.HTML()
        self.bars = [w.FloatProgress(min=0, max=1) for _ in self.class_names]
        self.percents = [w.Label() for _ in self.class_names]
        self.why = w.Image(format="png", layout={"max_width": "760px", "display": "none"})
        columns = w.HBox([self._board_column(), self._seen_column(), self._bar_column()])
        self.view = w.VBox([columns, self.why])
        self._show_nothing()

    def read(self, strokes: Sequence) -> np.ndarray | None:
        """Prepare the drawing as predict would, show the input and the probabilities."""
        try:
            digit = prepare_digit_image(strokes_to_image(strokes))
        except ValueError:  # nothing drawn yet, or only a dot
            self._show_nothing()
            return None
        verdict = digit_verdict(self.model, digit)  # softmax always picks a class: is it one?
        self._show(digit, verdict.probabilities, verdict.reason)
        return verdict.probabilities

    def explain(self, _button=None, true_label: int | None = None) -> Figure | None:
        """The "Why?" picture for the current drawing (plots.plot_explanation), also shown below
        the board; None if nothing is drawn."""
        if self.digit is None or self.training_data is None:
            return None
        explanation = explain_digit(self.model, self.digit, *self.training_data, true_label)
        figure = plots.plot_explanation(explanation, self.class_names)
        self.why.value = png_bytes(figure)
        self.why.layout.display = None  # shown from now on
        return figure

    def clear(self, _button=None) -> None:
        self.board.strokes = []
        self.why.layout.display = "none"

    def undo(self, _button=None) -> None:
        self.board.strokes = self.board.strokes[:-1]

    def _show(self, digit: np.ndarray | None, probabilities: np.ndarray, unlike: str = "") -> None:
        self.digit, self.probabilities = digit, None if digit is None else probabilities
        self.seen.value = png_bytes(np.zeros((28, 28), np.uint8) if digit is None else digit, 5)
        for bar, percent, probability in zip(self.bars, self.percents, probabilities, strict=True):
            bar.value, percent.value = float(probability), f"{probability:.0%}"
        if digit is None:
            self.answer.value = _answer_html("draw a digit")
        else:
            best = int(probabilities.argmax())
            text = f"{self.class_names[best]} ({probabilities[best]:.0%})"
            if unlike:  # digit_check: "not sure: this does not look like a handwritten digit"
                text = f"{NOT_A_DIGIT} ({unlike}); best guess {text}"
            self.answer.value = _answer_html(text)

    def _board_column(self) -> w.VBox:
        names = ("Clear", "Undo", "Why?")
        buttons = [w.Button(description=name, layout={"width": "80px"}) for name in names]
        for button, action in zip(buttons, (self.clear, self.undo, self.explain), strict=True):
            button.on_click(action)
        if self.training_data is None:
            buttons.pop()
        return w.VBox([self.board, w.HBox(buttons)])

    def _show_nothing(self) -> None:
        self._show(None, np.zeros(len(self.class_names)))

    def _seen_column(self) -> w.VBox:
        return w.VBox([w.HTML("what the network sees"), self.seen, self.answer])

    def _bar_column(self) -> w.VBox:
        rows = [
            w.HBox([w.Label(name, layout={"width": "90px"}), bar, percent])
            for name, bar, percent in zip(self.class_names, self.bars, self.percents, strict=True)
        ]
        return w.VBox(rows)

    def _ipython_display_(self) -> None:
        display(self.view)  # ipywidgets 8, and 7 (Colab's), which has no _repr_mimebundle_


def _answer_html(text: str) -> str:
    return f'<span class="mnist-nn-answer" style="font-size: 1.4em">{text}</span>'


class LiveCurves:
    """Learning curves redrawn while fit trains: after every epoch, and every `every_seconds`
    between, with the running batch loss as a thin line. Once done, plots.plot_history's figure.

        curves = LiveCurves()
        history = nn.fit(model, X, y, validation_data=(X_val, y_val), **curves.callbacks)
        curves.finish(history)

    show(figure) draws a figure; by default it replaces the cell's own output in place.
    """

    def __init__(self, show: Callable[[Figure], None] | None = None, every_seconds: float = 1.0):
        self.show = show or _show_in_place()
        self.every_seconds = every_seconds
        self.rows: list[dict] = []
        self.batch_positions: list[float] = []  # in epochs: 1.5 is half way through epoch 2
        self.batch_losses: list[float] = []
        self.last_drawn = -np.inf

    def batch_done(self, step: dict) -> None:
        self.batch_positions.append(step["epoch"] - 1 + step["batch"] / step["n_batches"])
        self.batch_losses.append(step["loss"])
        if time.perf_counter() - self.last_drawn >= self.every_seconds:
            self.draw()

    def epoch_done(self, row: dict) -> None:
        self.rows.append(row)
        self.draw()

    def figure(self) -> Figure:
        """The epochs so far as plot_history draws them, and the batch losses behind."""
        columns = {key: [row[key] for row in self.rows] for key in CURVE_KEYS}
        figure = plots.plot_history(columns)
        if self.batch_losses:
            loss_axis = figure.axes[0]
            loss_axis.plot(self.batch_positions, self.batch_losses, lw=0.8, alpha=0.5,
                           color="gray", label="training, per batch", zorder=0)  # fmt: skip
            loss_axis.legend()
        return figure

    @property
    def callbacks(self) -> dict:
        """fit's two hooks, to pass on as fit(..., **curves.callbacks)."""
        return {"on_epoch_end": self.epoch_done, "on_batch_end": self.batch_done}

    def draw(self) -> None:
        self.show(self.figure())
        self.last_drawn = time.perf_counter()

    def finish(self, history) -> None:
        """The final picture: exactly plots.plot_history(history)."""
        self.show(plots.plot_history(history))


def _show_in_place() -> Callable[[Figure], None]:
    """A show() that draws the first figure below the cell and replaces it afterwards."""
    from IPython.display import display

    handle = None

    def show(figure: Figure) -> None:
        nonlocal handle
        if handle is None:
            handle = display(figure, display_id=True)
        else:
            handle.update(figure)

    return show


class Playground:
    """Change the settings, press Train, watch the curves, compare the runs in a table.

    Trains on the first n_train training images (a slider; on a busy two-core machine 10,000
    images took 0.5 s for 5 epochs of the default MLP, 31 s for the CNN) in a background thread, so
    that Stop works while it runs; playground.train(settings) is one run
    in the foreground, what the Train button runs.
    """

    def __init__(
        self,
        train_data: tuple[np.ndarray, np.ndarray],
        validation_data: tuple[np.ndarray, np.ndarray],
        test_data: tuple[np.ndarray, np.ndarray] | None = None,
        n_train: int = PLAYGROUND_SAMPLES,
        settings: Settings | None = None,
    ) -> None:
        X, y = train_data
        self.train_data = train_data
        self.n_train = w.IntSlider(
            value=min(n_train, len(X)), min=min(500, len(X)), max=len(X), step=500,
            description="images", style={"description_width": "100px"},
        )  # fmt: skip
        self.validation_data, self.test_data = validation_data, test_data
        self.n_classes = int(max(np.max(y), np.max(validation_data[1]))) + 1
        self.runs: list[dict] = []
        self.stop_requested = threading.Event()
        self.controls = _setting_controls(settings or Settings(n_epochs=5))
        self.train_button = w.Button(description="Train", button_style="success")
        self.stop_button = w.Button(description="Stop", disabled=True)
        self.train_button.on_click(self.start)
        self.stop_button.on_click(self.stop)
        self.status = w.HTML("press Train")
        self.curves = w.Image(format="png", layout={"max_width": "760px"})
        self.table = w.HTML()
        buttons = w.HBox([self.train_button, self.stop_button, self.status])
        self.controls["model"].observe(self._show_applicable, names="value")
        self._show_applicable()
        grid = _control_grid(self.controls)
        grid.children += (self.n_train,)  # how many training images: not a setting of the run
        self.view = w.VBox([grid, buttons, self.curves, self.table])

    def settings(self) -> Settings:
        """The settings the widgets show, those that apply to the chosen model only (a CNN has
        no hidden sizes, activation or dropout here); ValueError says which one is wrong."""
        model = self.controls["model"].value
        values = {
            name: control.value for name, control in self.controls.items() if _applies(name, model)
        }
        for name in ("hidden_sizes", "n_filters"):
            if name in values:
                values[name] = _parse_sizes(values[name], name.replace("_", " "))
        return Settings(**values)

    def _show_applicable(self, _change=None) -> None:
        """Show only the widgets of settings that the chosen model uses."""
        model = self.controls["model"].value
        for name, control in self.controls.items():
            control.layout.display = None if _applies(name, model) else "none"

    def train(self, settings: Settings | None = None) -> dict:
        """One run with `settings` (default: the widgets'); adds its row to the table."""
        settings = settings or self.settings()
        n_train = self.n_train.value
        X, y = self.train_data[0][:n_train], self.train_data[1][:n_train]
        model = build_model(settings, X.shape[1:], self.n_classes)
        curves = LiveCurves(show=self._show_curves, every_seconds=0.5)
        start, outcome = time.perf_counter(), "done"
        self.stop_requested.clear()
        try:
            history = fit(
                model, X, y, settings, validation_data=self.validation_data,
                progress=False, on_epoch_end=curves.epoch_done,
                on_batch_end=self._stop_or(curves.batch_done),
            )  # fmt: skip
        except TrainingInterrupted as stopped:
            history, outcome = stopped.history, "stopped"
        if len(history):
            curves.finish(history)
        seconds = time.perf_counter() - start
        return self._add_run(settings, model, history, outcome, n_train, seconds)

    def start(self, _button=None) -> None:
        """The Train button: one run in a background thread."""
        try:
            settings = self.settings()
        except ValueError as error:
            self.status.value = f"<b>not trained:</b> {error}"
            return
        self._set_running(True)
        threading.Thread(target=self._train_in_background, args=(settings,), daemon=True).start()

    def stop(self, _button=None) -> None:
        """The Stop button: the run ends after the current batch, keeping its best epoch."""
        self.stop_requested.set()

    def _train_in_background(self, settings: Settings) -> None:
        try:
            row = self.train(settings)
            self.status.value = f"run {row['run']}: validation accuracy {row['val_accuracy']}"
        except Exception as error:  # noqa: BLE001 - a thread has no cell to show it: the page does
            self.status.value = f"<b>training failed:</b> {error}"
        finally:
            self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.train_button.disabled, self.stop_button.disabled = running, not running
        if running:
            self.status.value = "training..."

    def _stop_or(self, batch_done: Callable[[dict], None]) -> Callable[[dict], None]:
        def on_batch_end(step: dict) -> None:
            if self.stop_requested.is_set():
                raise KeyboardInterrupt  # fit keeps the best epoch and says how far it got
            batch_done(step)

        return on_batch_end

    def _show_curves(self, figure: Figure) -> None:
        self.curves.value = png_bytes(figure)

    def _add_run(self, settings, model, history, outcome, n_train, seconds) -> dict:
        shown = {  # what the run used; "-" for a setting its model does not have
            name: format_value(getattr(settings, name)) if _applies(name, settings.model) else "-"
            for name in self.controls
        }
        best = history.best_epoch
        row = {"run": len(self.runs) + 1, **shown, "images": f"{n_train:,}",
               "epochs": len(history), "outcome": outcome}  # fmt: skip
        row["val_accuracy"] = "-" if best is None else f"{history['val_accuracy'][best - 1]:.2%}"
        row["test_accuracy"] = "-"
        if self.test_data is not None and best is not None:
            row["test_accuracy"] = f"{model.evaluate(*self.test_data).accuracy:.2%}"
        row["seconds"] = f"{seconds:.1f}"
        self.runs.append(row)
        self.table.value = _html_table(self.runs)
        return row

    def _ipython_display_(self) -> None:
        display(self.view)  # ipywidgets 8, and 7 (Colab's), which has no _repr_mimebundle_


def _setting_controls(settings: Settings) -> dict[str, w.ValueWidget]:
    """One widget per setting the playground offers, showing `settings`."""

    def choice(name: str) -> w.Dropdown:
        return w.Dropdown(options=CHOICES[name], value=getattr(settings, name))

    return {
        "model": choice("model"),
        "hidden_sizes": w.Text(value=format_value(settings.hidden_sizes)),
        "n_filters": w.Text(value=format_value(settings.n_filters)),
        "activation": choice("activation"),
        "optimizer": choice("optimizer"),
        "learning_rate": w.FloatLogSlider(
            value=settings.learning_rate or 1e-3,
            base=10,
            min=-4,
            max=0,
            step=0.25,
            readout_format=".1e",
        ),  # fmt: skip
        "batch_size": w.SelectionSlider(options=BATCH_SIZES, value=settings.batch_size),
        "n_epochs": w.IntSlider(value=settings.n_epochs, min=1, max=30),
        "dropout": w.FloatSlider(value=settings.dropout, min=0.0, max=0.7, step=0.05),
        "augment": choice("augment"),
    }


def _control_grid(controls: dict[str, w.ValueWidget]) -> w.GridBox:
    for name, control in controls.items():
        control.description = name.replace("_", " ")
        control.style = {"description_width": "100px"}
    return w.GridBox(list(controls.values()), layout={"grid_template_columns": "repeat(3, 320px)"})


def _applies(name: str, model: str) -> bool:
    """Whether the setting `name` changes a network of kind `model` ("mlp" or "cnn")."""
    return ONLY_FOR.get(name, model) == model


def _parse_sizes(text: str, what: str = "hidden sizes") -> tuple[int, ...]:
    """'128-64', '128, 64' or '128 64' -> (128, 64); 'none' or '' -> ()."""
    parts = text.replace(",", " ").replace("-", " ").split()
    if parts in ([], ["none"]):
        return ()
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"{what} must be whole numbers such as 128-64, got {text!r}")
    return tuple(int(part) for part in parts)


def _html_table(rows: list[dict]) -> str:
    header = "".join(f"<th>{name.replace('_', ' ')}</th>" for name in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{value}</td>" for value in row.values()) + "</tr>" for row in rows
    )
    return f'<table class="mnist-nn-runs"><tr>{header}</tr>{body}</table>'
