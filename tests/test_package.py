"""The package's shape (docs/package.md): the core stands alone, no two modules import each other
(even through others), the core stays within its line budget, and the reading path from fit to
Dense.backward within its own."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mnist_nn"
CORE = ("layers", "activations", "losses", "model", "optimizers", "loop", "gradcheck", "conv")
CORE_BUDGET = 1650  # lines in the core modules together
PATH_BUDGET = (300, 7)  # lines and files from fit(...) to Dense.backward
# The core's doors to the tools around it: imports inside a function, run only when that
# function is called, never when the core is imported or trains. (module, imported): why.
DOORS = {
    ("model", "validation"): "predict, predict_proba and evaluate check the user's inputs",
    ("model", "tables"): "summary lays out its table",
    ("model", "datasets"): "class_names looks up a data set's class names",
    ("model", "saving"): "Model.save writes the file (model_file.py reads it)",
    ("model", "builders"): "the builders' old address, mnist_nn.model.build_mlp (__getattr__)",
}


def imports(module: str) -> list[tuple[str, bool]]:
    """(imported mnist_nn module, at module level?) for each import in mnist_nn/<module>.py;
    imports under `if TYPE_CHECKING:` are for type hints only and not counted."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    type_only = _type_only(tree)
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        for name in _imported_modules(node):
            found.append((name, id(node) in top_level))
    return found


def _type_only(tree: ast.Module) -> set[int]:
    """The nodes under `if TYPE_CHECKING:`, which never run."""
    return {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for node in ast.walk(branch)
    }


def _imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module == "mnist_nn":
        names = [f"mnist_nn.{alias.name}" for alias in node.names]  # a submodule, or __init__
    elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module]
    else:
        return []
    found = []
    for name in names:
        parts = name.split(".")
        if parts[0] == "mnist_nn":
            is_module = len(parts) > 1 and (PACKAGE / f"{parts[1]}.py").is_file()
            found.append(parts[1] if is_module else "__init__")
    return found


def test_core_modules_import_only_the_core_and_name_their_doors():
    outside = {}
    for module in CORE:
        for imported, top_level in imports(module):
            if imported in CORE:
                continue
            if top_level or (module, imported) not in DOORS:
                outside.setdefault(module, set()).add(imported)
    assert not outside, f"core modules importing outside the core: {outside}"


def test_importing_the_core_loads_nothing_outside_it():
    # A fresh interpreter; the package's __init__ (which imports everything) is skipped.
    script = f"""
import sys, types
package = types.ModuleType("mnist_nn")
package.__path__ = [{str(PACKAGE)!r}]
sys.modules["mnist_nn"] = package
import {", ".join(f"mnist_nn.{module}" for module in CORE)}
print(sorted(name for name in sys.modules if name.startswith("mnist_nn.")))
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = {name.removeprefix("mnist_nn.") for name in eval(completed.stdout)}  # noqa: S307
    assert loaded == set(CORE), sorted(loaded - set(CORE))


def module_graph() -> dict[str, set[str]]:
    """Who imports whom in mnist_nn, wherever the import is (inside functions too), except type
    hints' imports and the forwards of old addresses in a module's __getattr__."""
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        forwards = _type_only(tree) | {
            id(node)
            for function in tree.body
            if isinstance(function, ast.FunctionDef) and function.name == "__getattr__"
            for node in ast.walk(function)
        }
        graph[path.stem] = {
            name
            for node in ast.walk(tree)
            if id(node) not in forwards
            for name in _imported_modules(node)
        } - {path.stem}
    return graph


def test_no_import_circle():
    graph = module_graph()
    finished, path = set(), []

    def visit(module: str) -> None:
        if module in path:
            raise AssertionError(f"import circle: {' -> '.join(path[path.index(module) :])}")
        if module in finished:
            return
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            visit(imported)
        path.pop()
        finished.add(module)

    for module in graph:
        if module != "__init__":  # it imports everything by design; nothing imports it back
            visit(module)
    assert "model_file" not in graph["model"] and "model" not in graph["saving"]


def reading_path_tool():
    path = ROOT / "benchmarks" / "reading_path.py"
    spec = importlib.util.spec_from_file_location("reading_path", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_the_core_is_within_its_line_budget():
    sizes = reading_path_tool().core_lines()
    assert set(sizes) == set(CORE)
    assert sum(sizes.values()) <= CORE_BUDGET, sizes


def test_the_reading_path_from_fit_to_dense_backward_is_within_its_budget():
    tool = reading_path_tool()
    chain, under_loop = tool.trace_fit()
    lines, files, rows = tool.count(chain | under_loop)
    functions = [function for _, function, _ in rows]
    assert "train_epochs" in functions and "Dense.backward" in functions
    assert not {"threads.py", "settings.py", "validation.py", "augment.py"} & set(files), files
    assert lines <= PATH_BUDGET[0] and len(files) <= PATH_BUDGET[1], (lines, files)


def test_docs_package_md_names_every_module():
    text = (ROOT / "docs" / "package.md").read_text()
    missing = [path.name for path in PACKAGE.glob("*.py") if f"`{path.name}`" not in text]
    assert not missing, f"add these to the module tables of docs/package.md: {missing}"
