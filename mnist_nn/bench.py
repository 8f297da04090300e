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
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnist_nn.conv import conv_output_size

FRAMEWORKS = ("mnist_nn", "pytorch")
LEARNING_RATES = {"momentum": 0.01, "adam": 1e-3}  # mnist_nn's defaults, given to both
IMAGE_SIDE, N_CLASSES = 28, 10
CNN_KERNEL_SIZE, CNN_PADDING = 5, 2  # build_cnn's defaults: "same" convolutions


@dataclass(frozen=True)
class BenchCase:
    """One network and its training settings, trained identically by both frameworks.

    widths: the hidden layer sizes for model "mlp" (build_mlp); the filters of each conv 5x5 ->
    ReLU -> max-pool 2x2 block for model "cnn" (build_cnn, padding 2).
    """

    widths: tuple[int, ...]
    optimizer: str  # "momentum" (SGD with momentum 0.9) or "adam"
    batch_size: int
    model: str = "mlp"

    @property
    def name(self) -> str:
        if self.model == "cnn":
            network = f"cnn {'-'.join(map(str, self.widths))}"
        else:
            network = "-".join(map(str, (IMAGE_SIDE**2, *self.widths, N_CLASSES)))
        return f"{network} {self.optimizer} b{self.batch_size}"

    @property
    def learning_rate(self) -> float:
        return LEARNING_RATES[self.optimizer]

    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 of one training step per sample: forward Z = X W, backward dW = X^T dZ
        and dX = dZ W^T for every layer but the first (nobody needs the images' gradient).

        Each of the three costs as many multiply-adds as the forward product: n_in * n_out for a
        dense layer, out_h * out_w * out_channels * k * k * in_channels for a convolution.
        ReLU and pooling are left out (no multiply-adds).
        """
        products = self._layer_products()
        return 2 * (3 * sum(products) - products[0])

    def _layer_products(self) -> list[int]:
        """Forward multiply-adds per sample of each layer with weights, input to output."""
        if self.model == "mlp":
            sizes = (IMAGE_SIDE**2, *self.widths, N_CLASSES)
            return [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
        products, side, n_channels = [], IMAGE_SIDE, 1
        for n_filters in self.widths:
            side = conv_output_size(side, CNN_KERNEL_SIZE, stride=1, padding=CNN_PADDING)
            products.append(side * side * n_filters * CNN_KERNEL_SIZE**2 * n_channels)
            side, n_channels = side // 2, n_filters  # max-pool 2x2
        return [*products, side * side * n_channels * N_CLASSES]


CASES = (
    BenchCase((128, 64), "momentum", 128),
    BenchCase((128, 64), "adam", 128),
    BenchCase((512, 256), "momentum", 128),
    BenchCase((512, 256), "adam", 128),
    BenchCase((512, 256), "momentum", 256),
    BenchCase((16, 32), "adam", 128, model="cnn"),
)
TINY_CASE = BenchCase((32, 16), "momentum", 128)
TINY_SIZES = (2_000, 500)  # training and test images in --tiny mode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench subcommand's options (the CLI adds --dataset and --data-dir)."""
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework (default: 3)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="epochs per run; the first is a warm-up and not timed when there are more "
        "(default: 3)",
    )
    parser.add_argument(
        "--case",
        dest="cases",
        action="append",
        choices=[case.name for case in CASES],
        help="run only this case (repeatable; default: all)",
    )
    parser.add_argument("--no-torch", action="store_true", help="time mnist_nn alone")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a seconds-long smoke run: 2,000 synthetic images, one epoch, a small mlp (or the "
        "--case networks)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("runs/bench.json"),
        help="where to write the results (default: runs/bench.json)",
    )


def run(args: argparse.Namespace) -> int:
    """Load the data once, alternate the frameworks' runs, print the table, write the JSON."""
    for option in ("repeats", "epochs"):
        if getattr(args, option) < 1:
            raise ValueError(f"--{option} must be at least 1, got {getattr(args, option)}")
    cases = [case for case in CASES if not args.cases or case.name in args.cases]
    repeats, epochs = args.repeats, args.epochs
    if args.tiny:
        cases, repeats, epochs = (cases if args.cases else [TINY_CASE]), 1, 1
    frameworks = ["mnist_nn"]
    if args.no_torch:
        pass
    elif importlib.util.find_spec("torch") is None:
        print(
            "PyTorch is not installed: timing mnist_nn alone (pip install -r "
            "requirements-bench.txt)"
        )
    else:
        frameworks.append("pytorch")

    (X_train, y_train), (X_test, y_test), data_name = _benchmark_data(args)
    print(f"data: {data_name}, {len(X_train):,} training and {len(X_test):,} test images")
    peak_before = gemm_peak_gflops(tiny=args.tiny)
    results = {
        "data": data_name,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "epochs_per_run": epochs,
        "repeats": repeats,
        "machine": machine_info(),
        "cases": [],
    }
    with tempfile.TemporaryDirectory(prefix="mnist_nn-bench-") as folder:
        data_path = Path(folder) / "data.npz"
        np.savez(data_path, X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)
        del X_train, X_test
        for case in cases:
            runs = {framework: [] for framework in frameworks}
            for repeat in range(repeats):
                for framework in frameworks:  # alternated: A B A B ...
                    print(f"  {case.name}: {framework} run {repeat + 1}/{repeats}", flush=True)
                    runs[framework].append(_run_worker(framework, case, epochs, data_path))
            results["cases"].append(_summarise(case, runs, epochs))
    peak = max(peak_before, gemm_peak_gflops(tiny=args.tiny))
    results["gemm_peak_gflops"] = peak
    for case_result in results["cases"]:
        for framework_result in case_result["frameworks"].values():
            framework_result["gemm_fraction"] = framework_result["gflops"] / peak

    print()
    print(format_table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {args.json}")
    return 0


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


def _run_worker(framework: str, case: BenchCase, epochs: int, data_path: Path) -> dict:
    """Train in a fresh process, so each framework's peak memory is its own."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    spec = {"framework": framework, "case": asdict(case), "epochs": epochs, "data": str(data_path)}
    completed = subprocess.run(
        [sys.executable, "-m", "mnist_nn.bench", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
    )
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the {framework} benchmark run failed: {last_line}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _summarise(case: BenchCase, runs: dict, epochs: int) -> dict:
    timed = slice(1, None) if epochs > 1 else slice(None)  # the first epoch warms up
    summary = {**asdict(case), "name": case.name, "learning_rate": case.learning_rate}
    summary["frameworks"] = {}
    for framework, framework_runs in runs.items():
        seconds = [s for run in framework_runs for s in run["epoch_seconds"][timed]]
        median = statistics.median(seconds)
        summary["frameworks"][framework] = {
            "epoch_seconds": seconds,
            "median_epoch_seconds": median,
            "gflops": case.flops_per_sample() * framework_runs[0]["n_train"] / median / 1e9,
            "test_accuracy": [run["test_accuracy"] for run in framework_runs],
            "peak_rss_mb": max(run["peak_rss_mb"] for run in framework_runs),
            "n_params": framework_runs[0]["n_params"],
            "threads": framework_runs[0]["threads"],
        }
    if "pytorch" in runs:
        ours, theirs = (summary["frameworks"][f]["median_epoch_seconds"] for f in FRAMEWORKS)
        summary["ratio"] = ours / theirs
    return summary


def format_table(results: dict) -> str:
    """The results as a Markdown table, one row per case."""
    has_torch = any("ratio" in case for case in results["cases"])
    header = ["network, optimizer, batch"]
    if has_torch:
        header += ["PyTorch s/epoch", "mnist_nn s/epoch", "ratio"]
    else:
        header += ["mnist_nn s/epoch"]
    header += ["GEMM fraction", "peak RSS MB", "test accuracy"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in results["cases"]:
        ours = case["frameworks"]["mnist_nn"]
        cells = [case["name"]]
        accuracy = f"{statistics.median(ours['test_accuracy']):.4f}"
        rss = f"{ours['peak_rss_mb']:.0f}"
        fraction = f"{ours['gemm_fraction']:.0%}"
        if has_torch:
            torch_result = case["frameworks"]["pytorch"]
            cells += [
                f"{torch_result['median_epoch_seconds']:.3f}",
                f"{ours['median_epoch_seconds']:.3f}",
                f"{case['ratio']:.2f}",
            ]
            fraction += f" ({torch_result['gemm_fraction']:.0%})"
            rss += f" ({torch_result['peak_rss_mb']:.0f})"
            accuracy += f" ({statistics.median(torch_result['test_accuracy']):.4f})"
        else:
            cells.append(f"{ours['median_epoch_seconds']:.3f}")
        cells += [fraction, rss, accuracy]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"GEMM peak {results['gemm_peak_gflops']:.0f} GFLOP/s; "
        f"medians of {results['repeats']} runs x {results['epochs_per_run']} epochs"
    )
    if has_torch:
        note += "; PyTorch's figures in parentheses"
    return "\n".join(lines) + "\n" + note


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _train_mnist_nn(case: BenchCase, epochs: int, data) -> dict:
    from mnist_nn.model import build_cnn, build_mlp
    from mnist_nn.train import fit

    X_train, y_train, X_test, y_test = data
    if case.model == "cnn":
        model = build_cnn(
            (1, IMAGE_SIDE, IMAGE_SIDE),
            n_filters=case.widths,
            kernel_size=CNN_KERNEL_SIZE,
            padding=CNN_PADDING,
            n_classes=N_CLASSES,
            seed=0,
        )
    else:
        model = build_mlp([IMAGE_SIDE**2, *case.widths, N_CLASSES], seed=0)
    history = fit(
        model,
        X_train,
        y_train,
        epochs=epochs,
        batch_size=case.batch_size,
        optimizer=case.optimizer,
        learning_rate=case.learning_rate,
        seed=0,
        progress=False,
    )
    from threadpoolctl import threadpool_info

    return {
        "epoch_seconds": history["seconds"],
        "test_accuracy": model.evaluate(X_test, y_test).accuracy,
        "threads": [pool["num_threads"] for pool in threadpool_info()],
        "n_params": model.n_params,
    }


def _torch_model(case: BenchCase, torch):
    """The layers of build_mlp or build_cnn in PyTorch (its default initialisation)."""
    layers = []
    if case.model == "cnn":
        side, n_channels = IMAGE_SIDE, 1
        for n_filters in case.widths:
            layers += [
                torch.nn.Conv2d(n_channels, n_filters, CNN_KERNEL_SIZE, padding=CNN_PADDING),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2),
            ]
            side = conv_output_size(side, CNN_KERNEL_SIZE, stride=1, padding=CNN_PADDING) // 2
            n_channels = n_filters
        layers += [torch.nn.Flatten(), torch.nn.Linear(side * side * n_channels, N_CLASSES)]
        return torch.nn.Sequential(*layers)
    sizes = (IMAGE_SIDE**2, *case.widths, N_CLASSES)
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _train_pytorch(case: BenchCase, epochs: int, data) -> dict:
    """The usual eager PyTorch loop over in-memory tensors and shuffled index batches."""
    import torch

    torch.manual_seed(0)
    X_train, y_train, X_test, y_test = (torch.from_numpy(array) for array in data)
    # Per-sample shape: (784,) for the mlp, (1, 28, 28) for the cnn (channels first).
    sample_shape = (1, IMAGE_SIDE, IMAGE_SIDE) if case.model == "cnn" else (IMAGE_SIDE**2,)
    X_train = X_train.reshape(len(X_train), *sample_shape)
    X_test = X_test.reshape(len(X_test), *sample_shape)
    y_train, y_test = y_train.long(), y_test.long()
    model = _torch_model(case, torch)
    if case.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=case.learning_rate)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=case.learning_rate, momentum=0.9)
    loss_function = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    epoch_seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        loss_sum = 0.0
        order = torch.randperm(len(X_train), generator=generator)
        for first in range(0, len(X_train), case.batch_size):
            index = order[first : first + case.batch_size]
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
    case = BenchCase(**{**spec["case"], "widths": tuple(spec["case"]["widths"])})
    train = _train_mnist_nn if spec["framework"] == "mnist_nn" else _train_pytorch
    result = train(case, spec["epochs"], data)
    result.update(n_train=len(data[0]), peak_rss_mb=_peak_rss_mb())
    return result


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
