"""How much a reader reads from fit(...) down to Dense.backward, and how big the core is.

    python benchmarks/reading_path.py            # this checkout
    PYTHONPATH=/some/other/checkout python benchmarks/reading_path.py

The reading path is measured, not guessed: a profiler watches a small fit (an MLP, default
settings, BLAS on one thread as in the notebook) and, each time Dense.backward starts, records
every mnist_nn function on the call stack between fit and it. Each is counted whole, from its
`def` line to its last line, docstring and comments included; the files are those they are in.
"Chain" is those functions; "chain + calls" adds every other mnist_nn function they call
directly during the run (what a reader meets on the way and may skip: the checks, the guard
rails). The core is the modules named in CORE, counted as whole files (wc -l).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import mnist_nn
from mnist_nn.layers import Dense

PACKAGE = Path(mnist_nn.__file__).resolve().parent
CORE = ("layers", "activations", "losses", "model", "optimizers", "loop", "gradcheck", "conv")


def _function_lines(path: Path) -> dict[int, int]:
    """{line of a def (its first decorator, as code objects count it): lines in the def}."""
    lines = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines[first] = node.end_lineno - first + 1
    return lines


def _in_package(code) -> bool:
    return Path(code.co_filename).resolve().parent == PACKAGE


def trace_fit() -> tuple[set, set]:
    """(chain, loop): the package's code objects on the stack at each Dense.backward inside fit,
    and those that run under the training loop (loop.train_epochs; fit itself where there is
    none) other than through the loop's hooks, whatever calls them (generated code, contextlib
    and the like included)."""
    chain, under_loop = set(), set()
    fit_code = mnist_nn.fit.__code__
    loop = getattr(sys.modules.get("mnist_nn.loop"), "train_epochs", mnist_nn.fit)
    train_step = getattr(mnist_nn.Model, "train_step", None)

    def hooks(frame) -> set:
        """The code of the functions a train_epochs frame got as its hooks."""
        values = [frame.f_locals.get(name) for name in ("step", "after_step")]
        return {
            value.__code__
            for value in values
            if callable(value)
            and getattr(value, "__func__", None) is not train_step
            and hasattr(value, "__code__")
        }

    def profile(frame, event, arg):
        if event != "call" or not _in_package(frame.f_code):
            return
        if frame.f_code is Dense.backward.__code__:
            outer = frame
            while outer is not None and outer.f_code is not fit_code:
                chain.add(outer.f_code)
                outer = outer.f_back
            chain.add(fit_code)
        outer = frame.f_back
        while outer is not None:
            if outer.f_code is loop.__code__:
                if frame.f_code not in hooks(outer) and not _under_hook(frame, outer, hooks):
                    under_loop.add(frame.f_code)
                return
            outer = outer.f_back

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (256, 28, 28), dtype=np.uint8), rng.integers(0, 10, 256)
    model = mnist_nn.build_mlp((16,), seed=0)
    with threadpool_limits(1):
        sys.setprofile(profile)
        try:
            mnist_nn.fit(
                model, X, y, n_epochs=1, batch_size=64, validation_data=(X, y), progress=False
            )
        finally:
            sys.setprofile(None)
    return chain, under_loop


def _under_hook(frame, loop_frame, hooks) -> bool:
    hook_codes = hooks(loop_frame)
    while frame is not None and frame is not loop_frame:
        if frame.f_code in hook_codes:
            return True
        frame = frame.f_back
    return False


def count(codes: set) -> tuple[int, list[str], list[tuple[str, str, int]]]:
    """(lines, files, [(file, function, lines)]) of a set of code objects."""
    rows, cache = [], {}
    for code in codes:
        path = Path(code.co_filename).resolve()
        if path not in cache:
            cache[path] = _function_lines(path)
        n_lines = cache[path].get(code.co_firstlineno, 0)
        rows.append((path.name, getattr(code, "co_qualname", code.co_name), n_lines))
    rows.sort()
    return sum(row[2] for row in rows), sorted({row[0] for row in rows}), rows


def core_lines() -> dict[str, int]:
    return {
        name: len((PACKAGE / f"{name}.py").read_text().splitlines())
        for name in CORE
        if (PACKAGE / f"{name}.py").is_file()
    }


def main() -> None:
    chain, under_loop = trace_fit()
    for title, codes in (("chain", chain), ("reading path", chain | under_loop)):
        lines, files, rows = count(codes)
        print(f"{title}: {lines} lines in {len(files)} files ({', '.join(files)})")
        for file, function, n_lines in rows:
            print(f"    {n_lines:4}  {file}: {function}")
    sizes = core_lines()
    print(f"core: {sum(sizes.values())} lines in {len(sizes)} files {sizes}")


if __name__ == "__main__":
    main()
