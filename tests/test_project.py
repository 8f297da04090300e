"""The project's promises about itself: README commands, CI script, clean notebook."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_test_command():
    test_commands = [c for c in readme_commands() if "pytest" in c]
    assert len(test_commands) == 1, f"README should give one test command, found {test_commands}"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_commands[0] in ci_lines


def test_notebook_is_committed_without_outputs():
    notebook = json.loads((ROOT / "MNIST-Walkthrough.ipynb").read_text())
    dirty = [
        index
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"clear the outputs of cells {dirty} before committing the notebook"


def test_no_function_in_the_package_is_over_50_lines():
    import ast

    long = []
    for path in sorted((ROOT / "mnist_nn").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 50:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert not long, f"split these into named steps: {long}"


def test_lint_and_format_are_clean():
    import subprocess
    import sys

    for command in (["check", "."], ["format", "--check", "."]):
        completed = subprocess.run(
            [sys.executable, "-m", "ruff", *command], capture_output=True, text=True, cwd=ROOT
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
