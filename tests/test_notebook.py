"""The walkthrough notebook runs from top to bottom, in quick mode: offline synthetic digits and
small sizes, so it takes seconds. The committed notebook itself holds no outputs
(tests/test_project.py checks that)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "MNIST-Walkthrough.ipynb"

SECTIONS = [
    "Data retrieval",
    "Exploring the data",
    "Preprocessing",
    "Architecture",
    "Activation functions",
    "Forward propagation",
    "Loss",
    "Backpropagation",
    "The training loop",
    "Validation and testing",
    "Hyperparameter tuning",
    "Looking inside",
    "Inference",
    "Going further: convolutions",
    "Your network",
]


def test_notebook_has_its_fifteen_sections_in_order():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    headings = [
        match.groups()
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for match in re.finditer(r"^## (\d+)\. (.+)$", cell.source, flags=re.M)
    ]
    assert headings == [(str(number), title) for number, title in enumerate(SECTIONS, 1)]


def test_notebook_runs_top_to_bottom_in_quick_mode(tmp_path, monkeypatch):
    # A kernel spec for this very interpreter, so the notebook runs with the packages of the
    # environment running the tests (e.g. CI's fresh venv), not whatever "python3" a user-wide
    # Jupyter installation points at.
    kernel_dir = tmp_path / "jupyter" / "kernels" / "mnist-nn-test"
    kernel_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "mnist_nn tests",
        "language": "python",
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MNIST_NN_QUICK", "true")  # any of 1, true, yes, on
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where quick mode saves its model
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.delenv("MNIST_NN_DATASET", raising=False)

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="mnist-nn-test",
        timeout=120,  # per cell
        resources={"metadata": {"path": str(ROOT)}},  # run where the notebook lives
    )
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError, naming the cell
        rerun_text = rerun_sections(client, notebook, first=5, last=9)

    text = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )
    assert "data set: synthetic" in text
    assert "all below 1e-6: True" in text  # the gradient check of section 8 passed
    assert "loaded model gives the same predictions: True" in text
    assert re.search(r"CNN: test accuracy \d+\.\d+%", text)  # section 14 trained and tested the CNN
    assert list(tmp_path.glob("mnist-nn-quick-*.npz"))  # saved in the temporary folder
    assert "This network runs the reference dense_forward" in text  # nothing attempted yet
    assert re.search(r"your network: test accuracy \d+\.\d+%", text)
    assert "every one of your pieces gives the package's outputs" in text
    assert "0 of 20 passed" in text  # the progress table
    assert "all below 1e-6: True" in rerun_text  # sections 5-9 again, after everything else


def rerun_sections(client: NotebookClient, notebook, first: int, last: int) -> str:
    """Run the cells of sections first..last again, in order, after the whole notebook has run
    (as a learner experimenting does): a later section must not break an earlier one. Returns
    their printed text."""
    starts = {
        int(match.group(1)): index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "markdown" and (match := re.search(r"^## (\d+)\. ", cell.source, re.M))
    }
    text = []
    for index in range(starts[first], starts[last + 1]):
        cell = notebook.cells[index]
        if cell.cell_type == "code":
            client.execute_cell(cell, index)
            text += [output.get("text", "") for output in cell.outputs]
    return "\n".join(text)
