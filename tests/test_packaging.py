"""The package as a learner gets it: a wheel and an sdist ready for a release, a `notebook`
extra that installs everything the walkthrough imports, and the walkthrough alone in an empty
folder, in a fresh environment without mnist_nn, installing it in its first cell and then
running to the end (quick mode). That last test builds a wheel and a virtual environment: about
a minute, with pip's cache warm. Building and collecting the wheels needs the package index or
pip's cache; without either these tests are skipped, except in CI."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "MNIST-Walkthrough.ipynb"
# What a release holds; the rest of a working copy (data, environments, runs) stays behind.
TOP_LEVEL_ONLY = {"data", "runs", "build", "dist", "venv"}  # mnist_nn/data/ is package data
ANYWHERE = shutil.ignore_patterns(
    ".git", ".venv*", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
    ".ipynb_checkpoints", ".ci-screenshots",
)  # fmt: skip


def _not_source(folder: str, names: list[str]) -> set[str]:
    top = Path(folder).resolve() == ROOT
    return set(ANYWHERE(folder, names)) | {name for name in names if top and name in TOP_LEVEL_ONLY}


def _run(command: list, **options) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, capture_output=True, text=True, **options)
    assert completed.returncode == 0, f"{command}:\n{completed.stdout}\n{completed.stderr}"
    return completed


def _fetch(command: list) -> None:
    """A step that needs the package index (or pip's cache): skipped when it cannot be
    reached, unless MNIST_NN_PACKAGING_TEST=required (CI), where that is a failure."""
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        message = f"{command}:\n{completed.stdout}\n{completed.stderr}"
        if os.environ.get("MNIST_NN_PACKAGING_TEST") == "required":
            pytest.fail(message)
        pytest.skip(f"no package index or cache here? {message[-500:]}")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The wheel and the sdist, built by `python -m build` from a copy of the checkout."""
    pytest.importorskip("build", reason="python -m build (requirements-dev.txt)")
    work = tmp_path_factory.mktemp("release")
    shutil.copytree(ROOT, work / "source", ignore=_not_source)
    _fetch([sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(work / "source")])
    return work / "dist"


def test_wheel_and_sdist_pass_twine_check_and_hold_the_package_data(dist):
    pytest.importorskip("twine", reason="twine (requirements-dev.txt)")
    wheel, sdist = next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))
    _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)])
    import tarfile
    import zipfile

    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    in_sdist = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    shipped = [f"mnist_nn/data/{path.name}" for path in (ROOT / "mnist_nn" / "data").iterdir()]
    assert "mnist_nn/data/results_card.json" in shipped
    assert set(shipped) <= in_wheel and set(shipped) <= in_sdist
    assert any(name.endswith("licenses/LICENSE") for name in in_wheel)
    assert {"LICENSE", "MNIST-Walkthrough.ipynb", "README.md"} <= in_sdist


def _imported_modules(source: str) -> set[str]:
    """Top-level names of the modules that code imports (absolute imports only)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def _module_level_imports(path: Path) -> set[str]:
    """What importing a module of the package imports (not imports inside its functions)."""
    tree = ast.parse(path.read_text())
    body = [node for node in tree.body if not isinstance(node, ast.FunctionDef | ast.ClassDef)]
    return _imported_modules(ast.unparse(body))


def _notebook_imports() -> set[str]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    modules = set()
    for cell in notebook.cells:
        if cell.cell_type == "code":  # IPython's %magics and !commands are not Python
            lines = [line for line in cell.source.splitlines() if line.lstrip()[:1] not in "%!"]
            modules |= _imported_modules("\n".join(lines))
    return modules


def _installed_closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, following installed dependencies."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found, todo = set(), [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate()):
            continue
        found.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        extras = requirement.extras or {""}
        for text in requires:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                dependency.marker = None
                todo.append(dependency)
    return found


def test_the_notebook_extra_installs_everything_the_walkthrough_imports():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _installed_closure(
        project["dependencies"] + project["optional-dependencies"]["notebook"]
    )
    modules = _notebook_imports()
    for path in (ROOT / "mnist_nn").glob("*.py"):  # the package's modules the notebook loads
        modules |= _module_level_imports(path)
    third_party = modules - set(sys.stdlib_module_names) - {"mnist_nn"}
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(third_party):
        names = {canonicalize_name(name) for name in distributions.get(module, [module])}
        if not names & declared:
            missing[module] = sorted(names)
    assert not missing, f"imported but not installed by mnist_nn[notebook]: {missing}"
    assert {"ipywidgets", "anywidget"} <= declared


@pytest.fixture(scope="module")
def wheelhouse(dist, tmp_path_factory) -> Path:
    """The wheel and every wheel it and a kernel need, collected once (from pip's cache or the
    package index): afterwards the fresh environment installs with no index at all."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    wheel = next(dist.glob("*.whl"))
    _fetch([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(folder),
            f"{wheel}[notebook]", "ipykernel"])  # fmt: skip
    return folder


def test_the_notebook_alone_installs_the_package_and_runs(wheelhouse, tmp_path, monkeypatch):
    environment = tmp_path / "env"
    _run([sys.executable, "-m", "venv", str(environment)])
    python = environment / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}
    # A kernel, as Colab or any Jupyter has; mnist_nn is not there.
    kernel = [str(python), "-m", "pip", "install", "--quiet", "ipykernel"]
    _run(kernel, env={**os.environ, **offline})
    check = [str(python), "-c", "import importlib.util as u; print(u.find_spec('mnist_nn'))"]
    assert _run(check, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""}).stdout.strip() == "None"

    kernel_dir = tmp_path / "jupyter" / "kernels" / "fresh"
    kernel_dir.mkdir(parents=True)
    spec = {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "fresh", "language": "python"}  # fmt: skip
    (kernel_dir / "kernel.json").write_text(json.dumps(spec))
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder)  # the notebook and nothing else, as a learner downloads it
    for name, value in offline.items():
        monkeypatch.setenv(name, value)  # so the first cell's pip can only use the wheelhouse
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MNIST_NN_QUICK", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("PYTHONPATH", "MNIST_NN_INSTALL", "MNIST_NN_DATASET", "MNIST_NN_DATA"):
        monkeypatch.delenv(name, raising=False)

    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    where = "import mnist_nn\nprint('mnist_nn from', mnist_nn.__file__)"
    notebook.cells.append(nbformat.v4.new_code_cell(where))
    client = NotebookClient(
        notebook, kernel_name="fresh", timeout=300, resources={"metadata": {"path": str(folder)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell raises

    text = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.name == "stdout"
    )
    assert "installing mnist_nn[notebook] with pip" in text
    installed_at = re.search(r"mnist_nn from (.+)", text).group(1)
    assert Path(installed_at).is_relative_to(environment), installed_at
    assert "results card, seeds 0, 1, 2" in text  # package data, read from the installed wheel
    assert re.search(r"CNN: test accuracy \d+\.\d+%", text)  # the last section ran
    assert sorted(path.name for path in folder.iterdir()) == [NOTEBOOK.name]
