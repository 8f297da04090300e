"""The benchmark behind `python -m mnist_nn bench`: the same networks (MLPs and a small CNN) trained
by mnist_nn and, when it is installed, by PyTorch on the CPU, in alternating subprocesses, compared
by median epoch time, share of the machine's float32 matrix-multiply peak, test accuracy and peak
memory.

PyTorch is imported only inside its worker process; mnist_nn never needs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_nn.builders import build_model
from mnist_nn.conv import Conv2D, Flatten, MaxPool2D
from mnist_nn.layers import Dense
from mnist_nn.model import Model
from mnist_nn.settings import Settings
from mnist_nn.tables import format_table

FRAMEWORKS = ("mnist_nn", "pytorch")
LEARNING_RATES = {"momentum": 0.01, "adam": 1e-3}  # mnist_nn's defaults, given to both
IMAGE_SHAPE, N_CLASSES = (28, 28), 10


@dataclass(frozen=True)
class BenchCase:
    """One network and its training settings, trained identically by both frameworks."""

    settings: Settings

    @classmethod
    def of(cls, widths, optimizer: str, batch_size: int, model: str = "mlp") -> BenchCase:
        """A case by its network's widths (hidden sizes of an mlp, filters of a cnn)."""
        sizes = {"n_filters": widths} if model == "cnn" else {"hidden_sizes": widths}
        settings = Settings(
            model=model,
            optimizer=optimizer,
            learning_rate=LEARNING_RATES[optimizer],
            batch_size=batch_size,
            **sizes,
        )
        return cls(settings)

    @property
    def name(self) -> str:
        settings = self.settings
        if settings.model == "cnn":
            network = "cnn " + "-".join(map(str, settings.n_filters))
        else:
            network = "-".join(map(str, (784, *settings.hidden_sizes, N_CLASSES)))
        return f"{network} {settings.optimizer} b{settings.batch_size}"

    def model(self) -> Model:
        return build_model(self.settings, IMAGE_SHAPE, N_CLASSES)

    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 of one training step per sample: forward Z = X W, backward dW = X^T dZ
        and dX = dZ W^T for every layer but the first (nobody needs the images' gradient).

        Each of the three costs as many multiply-adds as the forward product: n_in * n_out for a
        dense layer, out_h * out_w * out_channels * k * k * in_channels for a convolution.
        ReLU and pooling are left out (no multiply-adds).
        """
        products = self.model().multiply_adds_per_sample()
        return 2 * (3 * sum(products) - products[0])


CASES = (
    BenchCase.of((128, 64), "momentum", 128),
    BenchCase.of((128, 64), "adam", 128),
    BenchCase.of((512, 256), "momentum", 128),
    BenchCase.of((512, 256), "adam", 128),
    BenchCase.of((512, 256), "momentum", 256),
    BenchCase.of((16, 32), "adam", 128, model="cnn"),
)
TINY_CASE = CASES[0]  # the default network
TINY_SIZES = (2_000, 500)  # training and test images in --tiny mode


def run(args: argparse.Namespace) -> int:
    """Load the data once, alternate the frameworks' runs, print the table, write the JSON."""
    cases, repeats, n_epochs = _plan(args)
    frameworks = _frameworks(args)
    (X_train, y_train), (X_test, y_test), data_name = _benchmark_data(args)
    print(f"data: {data_name}, {len(X_train):,} training and {len(X_test):,} test images")
    peak_before = gemm_peak_gflops(tiny=args.tiny)
    results = {
        "data": data_name,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "epochs_per_run": n_epochs,
        "repeats": repeats,
        "machine": machine_info(),
    }
    with tempfile.TemporaryDirectory(prefix="mnist_nn-bench-") as folder:
        data_path = Path(folder) / "data.npz"
        np.savez(data_path, X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)
        del X_train, X_test
        results["cases"] = [
            _run_case(case, frameworks, repeats, n_epochs, data_path) for case in cases
        ]
    _add_gemm_fractions(results, max(peak_before, gemm_peak_gflops(tiny=args.tiny)))
    print()
    print(format_results(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {args.json}")
    return 0


def _plan(args: argparse.Namespace) -> tuple[list[BenchCase], int, int]:
    """The cases to run, runs per framework and epochs per run, from the options."""
    for option in ("repeats", "n_epochs"):
        if getattr(args, option) < 1:
            raise ValueError(f"--{option.replace('_', '-')} must be at least 1")
    names = [case.name for case in CASES]
    unknown = [name for name in args.cases or () if name not in names]
    if unknown:
        raise ValueError(f"unknown --case {unknown[0]!r}; choose from {names}")
    cases = [case for case in CASES if not args.cases or case.name in args.cases]
    if args.tiny:
        return (cases if args.cases else [TINY_CASE]), 1, 1
    return cases, args.repeats, args.n_epochs


def _frameworks(args: argparse.Namespace) -> list[str]:
    if args.no_torch:
        return ["mnist_nn"]
    if importlib.util.find_spec("torch") is None:
        print("PyTorch is not installed: timing mnist_nn alone (see requirements-bench.txt)")
        return ["mnist_nn"]
    return list(FRAMEWORKS)


def _run_case(case: BenchCase, frameworks, repeats: int, n_epochs: int, data_path: Path) -> dict:
    runs = {framework: [] for framework in frameworks}
    for repeat in range(repeats):
        for framework in frameworks:  # alternated: A B A B ...
            print(f"  {case.name}: {framework} run {repeat + 1}/{repeats}", flush=True)
            runs[framework].append(_run_worker(framework, case, n_epochs, data_path))
    return _summarise(case, runs, n_epochs)


def _add_gemm_fractions(results: dict, peak: float) -> None:
    results["gemm_peak_gflops"] = peak
    for case_result in results["cases"]:
        for framework_result in case_result["frameworks"].values():
            framework_result["gemm_fraction"] = framework_result["gflops"] / peak


def _benchmark_data(args: argparse.Namespace):
    """MNIST (or --dataset) from the data folder if it is there, else synthetic digits."""
    from mnist_nn.datasets import DatasetNotFoundError, dataset_folder, load_dataset

    if args.tiny:
        n_train, n_test = TINY_SIZES
        train, test = load_dataset("synthetic", n_train=n_train, n_test=n_test)
        return train, test, "synthetic (tiny)"
    if args.dataset != "synthetic":
        try:
            train, test = load_dataset(args.dataset, args.data_dir, download=False, progress=False)
            return train, test, f"{args.dataset} from {dataset_folder(args.dataset, args.data_dir)}"
        except DatasetNotFoundError:
            print(
                f"no {args.dataset} files in {dataset_folder(args.dataset, args.data_dir)}; "
                "using synthetic digits at full size"
            )
    train, test = load_dataset("synthetic")
    return train, test, "synthetic"


def gemm_peak_gflops(tiny: bool = False) -> float:
    """NumPy's float32 matrix-multiply speed on a large square product, best of a few, GFLOP/s."""
    n = 256 if tiny else 2048
    rng = np.random.default_rng(0)
    A, B = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    C = np.empty((n, n), dtype=np.float32)
    best = float("inf")
    for _ in range(2 if tiny else 6):
        start = time.perf_counter()
        np.matmul(A, B, out=C)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def machine_info() -> dict:
    from threadpoolctl import threadpool_info

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threadpools": [
            {
                key: pool.get(key)
                for key in (
                    "internal_api",
                    "version",
                    "num_threads",
                    "architecture",
                    "threading_layer",
                )
            }
            for pool in threadpool_info()
        ],
    }


class BenchmarkFailed(RuntimeError):
    """A timed run's worker process failed (e.g. PyTorch is installed but broken)."""


def _run_worker(framework: str, case: BenchCase, n_epochs: int, data_path: Path) -> dict:
    """Train in a fresh process, so each framework's peak memory is its own."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    spec = {
        "framework": framework,
        "settings": case.settings.to_dict(),
        "n_epochs": n_epochs,
        "data": str(data_path),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "mnist_nn.bench", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
    )
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        advice = ""
        if framework == "pytorch":  # installed, but broken: not ours to fix, and not needed
            advice = (
                "; PyTorch is installed but does not work here: pass --no-torch to time "
                "mnist_nn alone"
            )
        raise BenchmarkFailed(f"the {framework} benchmark run failed: {last_line}{advice}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _summarise(case: BenchCase, runs: dict, n_epochs: int) -> dict:
    timed = slice(1, None) if n_epochs > 1 else slice(None)  # the first epoch warms up
    summary = {"name": case.name, "settings": case.settings.to_dict(), "frameworks": {}}
    for framework, framework_runs in runs.items():
        seconds = [s for run in framework_runs for s in run["epoch_seconds"][timed]]
        median = statistics.median(seconds)
        summary["frameworks"][framework] = {
            "epoch_seconds": seconds,
            "median_epoch_seconds": median,
            "gflops": case.flops_per_sample() * framework_runs[0]["n_train"] / median / 1e9,
            "test_accuracy": [run["test_accuracy"] for run in framework_runs],
            "peak_rss_mb": max((run["peak_rss_mb"] or 0.0) for run in framework_runs) or None,
            "n_params": framework_runs[0]["n_params"],
            "threads": framework_runs[0]["threads"],
        }
    if "pytorch" in runs:
        ours, theirs = (summary["frameworks"][f]["median_epoch_seconds"] for f in FRAMEWORKS)
        summary["ratio"] = ours / theirs
    return summary


def format_results(results: dict) -> str:
    """The results as a Markdown table, one row per case."""
    has_torch = any("ratio" in case for case in results["cases"])
    header = ["network, optimizer, batch"]
    header += (
        ["PyTorch s/epoch", "mnist_nn s/epoch", "ratio"] if has_torch else ["mnist_nn s/epoch"]
    )
    header += ["GEMM fraction", "peak RSS MB", "test accuracy"]
    rows = [header] + [_result_cells(case, has_torch) for case in results["cases"]]
    note = (
        f"GEMM peak {results['gemm_peak_gflops']:.0f} GFLOP/s; "
        f"medians of {results['repeats']} runs x {results['epochs_per_run']} epochs"
    )
    if has_torch:
        note += "; PyTorch's figures in parentheses"
    return format_table(rows, markdown=True) + "\n" + note


def _result_cells(case: dict, has_torch: bool) -> list[str]:
    ours = case["frameworks"]["mnist_nn"]
    accuracy = f"{statistics.median(ours['test_accuracy']):.4f}"
    rss, fraction = _megabytes(ours["peak_rss_mb"]), f"{ours['gemm_fraction']:.0%}"
    seconds = [f"{ours['median_epoch_seconds']:.3f}"]
    if has_torch:
        theirs = case["frameworks"]["pytorch"]
        seconds = [f"{theirs['median_epoch_seconds']:.3f}", *seconds, f"{case['ratio']:.2f}"]
        fraction += f" ({theirs['gemm_fraction']:.0%})"
        rss += f" ({_megabytes(theirs['peak_rss_mb'])})"
        accuracy += f" ({statistics.median(theirs['test_accuracy']):.4f})"
    return [case["name"], *seconds, fraction, rss, accuracy]


def _megabytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _peak_rss_mb() -> float | None:
    """This process's peak memory in MB; None where the resource module is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _train_mnist_nn(case: BenchCase, n_epochs: int, data) -> dict:
    from threadpoolctl import threadpool_info

    from mnist_nn.train import build_and_fit

    X_train, y_train, X_test, y_test = data
    model, history = build_and_fit(
        X_train, y_train, case.settings, n_epochs=n_epochs, progress=False, n_classes=N_CLASSES
    )
    return {
        "epoch_seconds": history["seconds"],
        "test_accuracy": model.evaluate(X_test, y_test).accuracy,
        "threads": [pool["num_threads"] for pool in threadpool_info()],
        "n_params": model.n_params,
    }


def _torch_model(case: BenchCase, torch):
    """The layers of our model, one for one, in PyTorch (with its default initialisation)."""
    layers = []
    for layer in case.model().layers:
        if isinstance(layer, Dense):
            layers.append(torch.nn.Linear(layer.n_inputs, layer.n_outputs))
        elif isinstance(layer, Conv2D):
            size = (layer.n_channels, layer.n_filters, layer.kernel_size)
            layers.append(torch.nn.Conv2d(*size, stride=layer.stride, padding=layer.padding))
        elif isinstance(layer, MaxPool2D):
            layers.append(torch.nn.MaxPool2d(layer.pool_size))
        elif isinstance(layer, Flatten):
            layers.append(torch.nn.Flatten())
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _train_pytorch(case: BenchCase, n_epochs: int, data) -> dict:
    """The usual eager PyTorch loop over in-memory tensors and shuffled index batches."""
    import torch

    torch.manual_seed(0)
    X_train, y_train, X_test, y_test = (torch.from_numpy(array) for array in data)
    # Per-sample shape: (784,) for the mlp, (1, 28, 28) for the cnn (channels first).
    sample_shape = case.model().input_shape
    X_train = X_train.reshape(len(X_train), *sample_shape)
    X_test = X_test.reshape(len(X_test), *sample_shape)
    y_train, y_test = y_train.long(), y_test.long()
    model = _torch_model(case, torch)
    settings = case.settings
    if settings.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=0.9)
    loss_function = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    epoch_seconds = []
    for _ in range(n_epochs):
        start = time.perf_counter()
        loss_sum = 0.0
        order = torch.randperm(len(X_train), generator=generator)
        for first in range(0, len(X_train), settings.batch_size):
            index = order[first : first + settings.batch_size]
            X_batch = X_train[index].float().div_(255.0)  # uint8 -> [0, 1], one batch at a time
            loss = loss_function(model(X_batch), y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(index)  # as fit sums the loss for its history
        epoch_seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        predictions = torch.cat(
            [
                model(X_test[i : i + 2048].float() / 255.0).argmax(1)
                for i in range(0, len(X_test), 2048)
            ]
        )
    return {
        "epoch_seconds": epoch_seconds,
        "test_accuracy": float((predictions == y_test).double().mean()),
        "threads": [torch.get_num_threads()],
        "n_params": sum(param.numel() for param in model.parameters()),
    }


def _worker(spec: dict) -> dict:
    """One timed training run (in its own process); returns what it measured."""
    with np.load(spec["data"]) as archive:
        data = tuple(archive[key] for key in ("X_train", "y_train", "X_test", "y_test"))
    case = BenchCase(Settings.from_dict(spec["settings"]))
    train = _train_mnist_nn if spec["framework"] == "mnist_nn" else _train_pytorch
    result = train(case, spec["n_epochs"], data)
    result.update(n_train=len(data[0]), peak_rss_mb=_peak_rss_mb())
    return result


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
